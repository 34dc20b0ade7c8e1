"""JupyterHub settings for a class taking this course: students and instructors apart.

Load it from the hub's configuration. The Littlest JupyterHub reads every file in
/opt/tljh/config/jupyterhub_config.d/: copy it there and `sudo tljh-config reload hub`. Elsewhere
add `load_subconfig("/path/to/jupyterhub_classroom.py")` to jupyterhub_config.py.
tests/classroom/ (`make test-classroom`) runs a hub with this file.

- Students' servers read the students' Jupyter settings (assignments/student-config/, copied
  somewhere every user can read): nbgrader's exchange and course id, and no authoring tools
  (formgrader, Create Assignment, course list are off).
- Instructors' servers start in the course directory (assignments/ of the instructor's private
  copy of the course) and read its nbgrader_config.py, so formgrader finds the course, its
  gradebook and the exchange. Nothing of the course directory is readable by students: keep
  it in the instructor's home (mode 700).

Three settings, from the hub's environment, with the defaults shown:
    DLCOURSE_INSTRUCTORS     instructor          user names, separated by spaces
    DLCOURSE_COURSE_DIR      /home/instructor/course/assignments
    DLCOURSE_STUDENT_CONFIG  /srv/nbgrader/student-config
(The Littlest JupyterHub's user names are jupyter-<name>; DLCOURSE_INSTRUCTORS lists the hub's
names, e.g. `instructor`.)
"""

import os

c = get_config()  # noqa: F821 (JupyterHub defines get_config when it reads this file)

INSTRUCTORS = set(os.environ.get("DLCOURSE_INSTRUCTORS", "instructor").split())
COURSE_DIR = os.environ.get("DLCOURSE_COURSE_DIR", "/home/instructor/course/assignments")
STUDENT_CONFIG = os.environ.get("DLCOURSE_STUDENT_CONFIG", "/srv/nbgrader/student-config")


def classroom_pre_spawn_hook(spawner):
    """Give each server its role's settings (see the module docstring)."""
    if spawner.user.name in INSTRUCTORS:
        spawner.notebook_dir = COURSE_DIR
        # nbgrader (formgrader, the Assignments panel) reads the course's nbgrader_config.py
        # from a Jupyter config folder, or from the server's working folder, the home.
        spawner.environment = {**spawner.environment, "JUPYTER_CONFIG_PATH": COURSE_DIR}
    else:
        # Read before the environment's own settings: switches nbgrader's authoring tools off.
        spawner.environment = {**spawner.environment, "JUPYTER_CONFIG_PATH": STUDENT_CONFIG}


c.Spawner.pre_spawn_hook = classroom_pre_spawn_hook
c.Spawner.default_url = "/lab"
