"""The ASGI application shared by the REST API, the push endpoints and the admin UI.

Contract for the routers mounted here:
- ``app.state.store``: the opened :class:`calbridge.store.db.Store`;
- ``app.state.settings``: the :class:`calbridge.service.settings.ServiceSettings`;
- ``app.state.jobs``: the job queue front (:class:`calbridge.service.jobs.Jobs`), which
  schedules "sync this calendar" and "push this booking" work on whichever transport runs;
- ``app.state.metrics``: :class:`calbridge.service.metrics.ServiceMetrics` (the push
  endpoints count notifications received / refused through it).

Mounted: ``/healthz``, ``/readyz``, ``/metrics`` (:mod:`calbridge.service.health`,
:mod:`calbridge.service.metrics`), the REST API at ``/api``, the push endpoints at ``/hooks``
(:mod:`calbridge.service.hooks`, when present) and the admin UI at ``/`` (:mod:`calbridge.web`,
whose ``mount(app)`` adds its static files).
"""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from calbridge.service.jobs import Jobs
from calbridge.service.metrics import ServiceMetrics
from calbridge.service.settings import ServiceSettings
from calbridge.store.db import Store


def create_app(
    store: Store,
    settings: ServiceSettings | None = None,
    jobs: Jobs | None = None,
    *,
    metrics: ServiceMetrics | None = None,
) -> FastAPI:
    """The application on an opened store (the serve command owns the store's lifecycle and
    the jobs' workers). Without ``jobs``, an in-process queue with no worker takes the jobs
    (they wait; useful for tests of the web side alone)."""
    from calbridge.service import health
    from calbridge.service.api import router as api_router
    from calbridge.web import router as web_router

    settings = settings or ServiceSettings()
    metrics = metrics or ServiceMetrics()
    if jobs is None:
        jobs = _idle_jobs(store, settings, metrics)
    app = FastAPI(title="calbridge", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.store = store
    app.state.settings = settings
    app.state.jobs = jobs
    app.state.metrics = metrics
    depth = getattr(jobs, "depth", None)
    metrics.watch_store(store, depth if callable(depth) else lambda: None)

    app.include_router(health.router)

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api_router, prefix="/api")
    hooks = _optional("calbridge.service.hooks")
    if hooks is not None and hasattr(hooks, "router"):
        app.include_router(hooks.router, prefix="/hooks")
    web = importlib.import_module("calbridge.web")
    mount = getattr(web, "mount", None)
    if callable(mount):
        mount(app)
    app.include_router(web_router)
    return app


def _idle_jobs(store: Store, settings: ServiceSettings, metrics: ServiceMetrics) -> Jobs:
    from calbridge.service.jobs import JobContext
    from calbridge.service.queue_local import LocalJobs

    def no_provider(calendar: Any) -> Any:
        raise RuntimeError("this application was created without sync workers")

    return LocalJobs(JobContext(store, no_provider, settings, metrics=metrics), workers=0)


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
