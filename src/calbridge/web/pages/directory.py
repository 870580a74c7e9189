"""The directory: users, contacts and companies with their addresses (searchable), importing
a directory file — every validation error shown at its JSON path and nothing written —,
exporting it, and the Event System Settings with validation. All through
:mod:`calbridge.ops.directory`, like the CLI and the API."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from calbridge.errors import CalbridgeError, ValidationFailed
from calbridge.ops.directory import (
    export_directory,
    get_settings,
    import_directory,
    search,
    update_settings,
)
from calbridge.web.auth import SignedIn
from calbridge.web.core import done, reader, render, store_of, writer

router = APIRouter()
MAX_IMPORT_BYTES = 50 * 1024 * 1024


def _page(
    request: Request, q: str, problems: dict[str, object] | None, code: int = 200
) -> Response:
    with store_of(request).session() as s:
        found = search(s, q, limit=50)
        settings = get_settings(s)
    return render(
        request,
        "directory.html",
        {"page": "directory", "q": q, "found": found, "settings": settings, "outcome": problems},
        status_code=code,
    )


@router.get("/directory", response_class=HTMLResponse)
def directory(request: Request, who: Annotated[SignedIn, Depends(reader)], q: str = "") -> Response:
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "found":
        with store_of(request).session() as s:
            found = search(s, q, limit=50)
        return render(request, "_directory_found.html", {"found": found, "q": q})
    return _page(request, q, None)


@router.post("/directory/import", response_class=HTMLResponse)
async def import_file(request: Request, who: Annotated[SignedIn, Depends(writer)]) -> Response:
    form = await request.form()
    upload = form.get("file")
    text = ""
    if isinstance(upload, UploadFile) or hasattr(upload, "read"):
        raw = await upload.read(MAX_IMPORT_BYTES + 1)  # type: ignore[union-attr]
        if len(raw) > MAX_IMPORT_BYTES:
            return _page(
                request, "", {"message": "the file is larger than 50 MiB", "problems": []}, 413
            )
        text = raw.decode("utf-8", errors="replace")
    pasted = form.get("text")
    if not text.strip() and isinstance(pasted, str):
        text = pasted
    if not text.strip():
        return _page(
            request,
            "",
            {"message": "choose a directory file (JSON) or paste one", "problems": []},
            422,
        )
    try:
        with store_of(request).session() as s:
            report = import_directory(s, text, actor=who.email)
            summary = report.as_dict()
    except ValidationFailed as exc:
        return _page(request, "", {"message": str(exc), "problems": exc.problems}, 422)
    except CalbridgeError as exc:
        return _page(request, "", {"message": str(exc), "problems": []}, 422)
    parts = ", ".join(
        f"{k.replace('_', ' ')}: {v}"
        for k, v in summary.items()
        if v not in (0, [], {}, False, None)
    )
    return done(request, "/directory", f"Directory imported ({parts or 'nothing changed'}).")


@router.get("/directory/export")
def export(request: Request, who: Annotated[SignedIn, Depends(reader)]) -> Response:
    with store_of(request).session() as s:
        data = export_directory(s)
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="directory.json"'},
    )


@router.post("/directory/settings", response_class=HTMLResponse)
async def settings(request: Request, who: Annotated[SignedIn, Depends(writer)]) -> Response:
    form = await request.form()
    changes: dict[str, object] = {}
    for key in (
        "default_account",
        "default_event_manager",
        "virtual_assistant_user",
        "venue_timezone",
    ):
        value = form.get(key)
        changes[key] = value.strip() or None if isinstance(value, str) else None
    changes["auto_assign_event_manager"] = form.get("auto_assign_event_manager") == "on"
    try:
        with store_of(request).session() as s:
            update_settings(s, changes, actor=who.email)
    except ValidationFailed as exc:
        return _page(request, "", {"message": str(exc), "problems": exc.problems}, 422)
    except CalbridgeError as exc:
        return _page(request, "", {"message": str(exc), "problems": []}, 422)
    return done(request, "/directory", "Settings saved.")
