"""``calbridge serve`` / ``calbridge worker``: the always-on calendar assistant.

``app.create_app`` builds the one ASGI application: the REST API under ``/api``
(:mod:`calbridge.service.api`), the push endpoints under ``/hooks``, health and metrics, and
the admin UI at ``/`` (:mod:`calbridge.web`). Jobs (sync a calendar, push a booking) go
through ``app.state.jobs``; the transport is procrastinate on PostgreSQL and an in-process
queue on SQLite, behind the same job functions.
"""
