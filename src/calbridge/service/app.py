"""The ASGI application shared by the REST API, the push endpoints and the admin UI.

Contract for the routers mounted here:
- ``app.state.store``: the opened :class:`calbridge.store.db.Store`;
- ``app.state.jobs``: the job queue front (:class:`calbridge.service.jobs.Jobs`), which
  schedules "sync this calendar" and "push this booking" work on whichever transport runs.
"""

from __future__ import annotations

from fastapi import FastAPI

from calbridge.store.db import Store


def create_app(store: Store) -> FastAPI:
    """The application on an opened store (the serve command owns its lifecycle)."""
    from calbridge.service.api import router as api_router
    from calbridge.web import router as web_router

    app = FastAPI(title="calbridge", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.store = store
    app.include_router(api_router, prefix="/api")
    app.include_router(web_router)
    return app
