"""nbgrader settings for the students of a class run on JupyterHub (a template).

Students fetch and submit assignments through nbgrader's exchange: JupyterLab's Assignments
panel, or the `nbgrader fetch_assignment` / `submit` / `fetch_feedback` commands. Both need to
know the course and where the exchange is. The hub's administrator installs this file for every
user, e.g. as /etc/jupyter/nbgrader_config.py (The Littlest JupyterHub: in
/opt/tljh/user/etc/jupyter/); a student on a shared machine can put it in ~/.jupyter/ instead.

The two settings must be the instructor's (assignments/nbgrader_config.py): the same
course_id and the same exchange folder. Nothing here points at the course directory: students
never see assignments/source/, the hidden tests or the gradebook.
"""

c = get_config()  # noqa: F821 (nbgrader defines get_config when it reads this file)

c.CourseDirectory.course_id = "intro-deep-learning"
# A folder shared by the instructor and every student (the administrator creates it:
# `mkdir -p /srv/nbgrader/exchange && chmod 777 /srv/nbgrader/exchange`).
c.Exchange.root = "/srv/nbgrader/exchange"
