"""The course's grading on top of nbgrader, used by `assignments/course.py grade`.

Modules, in the order a submission goes through them:

- `submissions`: find `submitted/<student>/<assignment>/` (nbgrader's layout, what its
  `collect` writes), read each notebook without running it, and name what is wrong with it
  (unreadable, renamed, grade ids repeated);
- `scan`: what an instructor should look at in a submission (tampering), read without running;
- `worker`: autograde one submission with nbgrader's preprocessors in a long-lived process;
- `feedback`: the student's HTML feedback: hidden tests' errors as a message only, figures
  kept, pending written answers marked, math rendered without a network;
- `records`: nbgrader's gradebook (`CourseDirectory.db_url`) and the grades CSV files.
"""
