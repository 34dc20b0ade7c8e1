"""Run the benchmarks and write bench/RESULTS.md.

    python -m bench                 # all of them
    python -m bench training setup  # some of them; the others keep their last results

Each benchmark's section is kept in bench/results/<name>.md; RESULTS.md joins them in order.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from bench import grading, notebooks, setup, training
from bench.common import machine

BENCHMARKS = {"training": training, "notebooks": notebooks, "grading": grading, "setup": setup}
HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHMARKS)}")
    (HERE / "results").mkdir(exist_ok=True)
    for name in names or BENCHMARKS:
        print(f"running {name} ...", flush=True)
        section = f"{BENCHMARKS[name].run()}\n\n_Measured {date.today()} on {machine()}_\n"
        (HERE / "results" / f"{name}.md").write_text(section)
        print(section, flush=True)
    sections = [HERE / "results" / f"{name}.md" for name in BENCHMARKS]
    results = "\n".join(s.read_text() for s in sections if s.exists())
    (HERE / "RESULTS.md").write_text(
        "## Benchmarks\n\nSpeed ratios are measured within one run, since absolute times drift "
        "on shared machines. Re-run with `make bench`.\n\n" + results
    )
    _update_readme(results)
    print(f"wrote {HERE / 'RESULTS.md'} and the README's benchmark tables")


def _update_readme(results: str) -> None:
    """Put the results between the README's benchmark markers (one level deeper headings)."""
    readme = HERE.parent / "README.md"
    text = readme.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    readme.write_text(text[:start] + "\n" + results.replace("\n### ", "\n#### ").replace(
        "### 1.", "#### 1.", 1) + "\n" + text[end:])


README_START, README_END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


if __name__ == "__main__":
    main(sys.argv[1:])
