"""Admin operations shared by the CLI, the REST API and the admin UI.

One function per thing an admin can do (create / update / cancel / reassign a booking, accept a
review, add / test / update / remove a calendar, import the directory…), taking a session and
plain values, returning plain results and raising :class:`calbridge.errors.CalbridgeError`
subclasses with messages a person can act on. The three front ends only parse and present.
"""
