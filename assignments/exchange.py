"""Hand out, collect and return assignments through nbgrader's exchange (a class on JupyterHub).

    python assignments/exchange.py release a1_perceptron_activations --due "2026-12-04 17:00 UTC"
    python assignments/exchange.py collect a1_perceptron_activations
    (python assignments/course.py grade: grades what collect wrote to submitted/)
    python assignments/exchange.py late                 # who submitted after the due date
    python assignments/exchange.py return a1_perceptron_activations

What `make release`, `make collect`, `make late` and `make return-feedback` run. Each step is
one plain nbgrader command, printed as it runs: `release_assignment` (release/<assignment>/ to
the exchange's outbound folder, where the students' `fetch_assignment` finds it), `collect`
(each student's latest submission from the exchange's inbound folder to
submitted/<student>/<assignment>/, with nbgrader's timestamp.txt), `release_feedback`
(feedback/<student>/<assignment>/*.html back to the exchange, where the students'
`fetch_feedback` finds it). The exchange folder and the course id are nbgrader settings
(`Exchange.root`, `CourseDirectory.course_id` in assignments/nbgrader_config.py; the students'
copy is assignments/student-config/nbgrader_config.py); `--exchange DIR` overrides the
folder.

Late work is nbgrader's own notion: `submit` stamps each submission, `collect` copies the stamp,
`autograde` records it in the gradebook, and the gradebook compares it with the assignment's due
date (`--due`, stored with `nbgrader db assignment add`) and any extension. `late` reads that
back after grading.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def run_nbgrader(root: Path, *args: str, exchange: Path | None = None) -> None:
    """Run `nbgrader ARGS` on the course directory `root`; stop on failure."""
    settings = [f"--CourseDirectory.root={root}"]
    if exchange is not None:
        settings.append(f"--Exchange.root={exchange}")
    print("$ nbgrader " + " ".join(args), flush=True)
    # nbgrader starts the `alembic` program (gradebook set-up): it lives next to this Python.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    status = subprocess.run([sys.executable, "-m", "nbgrader", *args, *settings], cwd=root,
                            env=env).returncode
    if status != 0:
        raise SystemExit(f"nbgrader {args[0]} failed (exit status {status}): see above")


def release(root: Path, assignment: str, due: str | None = None,
            exchange: Path | None = None) -> None:
    """Put release/<assignment>/ in the exchange for the students; record its due date."""
    if not (root / "release" / assignment).is_dir():
        raise SystemExit(f"no {root / 'release' / assignment}: `make assignments` writes it, "
                         f"from source/{assignment}/")
    if due is not None:
        run_nbgrader(root, "db", "assignment", "add", assignment, f"--duedate={due}")
    run_nbgrader(root, "release_assignment", assignment, "--force", exchange=exchange)


def collect(root: Path, assignment: str, exchange: Path | None = None) -> None:
    """Copy each student's latest submission from the exchange to submitted/."""
    run_nbgrader(root, "collect", assignment, "--update", exchange=exchange)


def return_feedback(root: Path, assignment: str, exchange: Path | None = None) -> None:
    """Put feedback/<student>/<assignment>/ in the exchange, each student's for them only."""
    if not any((root / "feedback").glob(f"*/{assignment}/*.html")):
        raise SystemExit(f"no feedback for {assignment} in {root / 'feedback'}: grade first "
                         "(`make grade`)")
    run_nbgrader(root, "release_feedback", assignment, exchange=exchange)


def gradebook_url(root: Path) -> str:
    """The gradebook nbgrader uses for `root`: `CourseDirectory.db_url` of its config."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    return CourseDirectory(config=config, root=str(root)).db_url


def late(root: Path) -> list[dict]:
    """Every graded submission's timestamp against its due date, from nbgrader's gradebook.

    Writes late.csv (student, assignment, timestamp, duedate, seconds_late) and prints the late
    ones. `seconds_late` is nbgrader's `total_seconds_late`: after the due date plus the
    student's extension; 0 when on time or when the assignment has no due date.
    """
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(gradebook_url(root)) as gradebook:
        for assignment in gradebook.assignments:
            for submission in assignment.submissions:
                rows.append({
                    "student": submission.student.id,
                    "assignment": assignment.name,
                    "timestamp": submission.timestamp or "",
                    "duedate": submission.duedate or "",
                    "seconds_late": f"{submission.total_seconds_late:.0f}",
                })
    rows.sort(key=lambda row: (row["assignment"], row["student"]))
    path = root / "late.csv"
    scratch = path.with_suffix(".csv.tmp")
    with open(scratch, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["student", "assignment", "timestamp",
                                                  "duedate", "seconds_late"])
        writer.writeheader()
        writer.writerows(rows)
    scratch.replace(path)
    late_rows = [row for row in rows if float(row["seconds_late"]) > 0]
    for row in late_rows:
        print(f"LATE {row['student']:>16} {row['assignment']:<28} submitted {row['timestamp']}"
              f", due {row['duedate']} ({row['seconds_late']} s late)")
    print(f"{len(late_rows)} of {len(rows)} graded submissions late; wrote {path}")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["release", "collect", "late", "return"])
    parser.add_argument("assignment", nargs="?", help="the assignment's id, e.g. "
                        "a1_perceptron_activations (every command but `late` needs it)")
    parser.add_argument("--due", help="release: the due date, e.g. '2026-12-04 17:00 UTC'")
    parser.add_argument("--exchange", type=Path, default=None,
                        help="the exchange folder (default: Exchange.root of nbgrader_config.py)")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the course directory (default: this file's folder)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.command == "late":
        late(root)
        return
    if not args.assignment:
        parser.error(f"{args.command} needs the assignment's id, e.g. "
                     "a1_perceptron_activations (make ... ASSIGNMENT=a1_perceptron_activations)")
    if args.command == "release":
        release(root, args.assignment, args.due, args.exchange)
    elif args.command == "collect":
        collect(root, args.assignment, args.exchange)
    else:
        return_feedback(root, args.assignment, args.exchange)


if __name__ == "__main__":
    main()
