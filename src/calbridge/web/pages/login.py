"""Signing in and out. The sign-in form has no session yet, so its CSRF token is a
double-submit cookie; failed attempts are throttled per address and per client."""

from __future__ import annotations

import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from calbridge.web.auth import (
    SESSION_HOURS,
    LoginThrottle,
    SignedIn,
    authenticate,
    end_session,
    same_token,
    start_session,
)
from calbridge.web.core import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    WebRefused,
    is_https,
    render,
    signed_form,
    store_of,
)

router = APIRouter()


def throttle_of(request: Request) -> LoginThrottle:
    throttle: LoginThrottle | None = getattr(request.app.state, "login_throttle", None)
    if throttle is None:
        throttle = request.app.state.login_throttle = LoginThrottle()
    return throttle


def _safe_next(target: str | None) -> str:
    """Only paths on this site (no ``//host`` or scheme): no open redirect after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(
    request: Request, error: str | None, email: str, next_: str, status: int
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"error": error, "email": email, "next": next_, "login_csrf": token},
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=is_https(request)
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, None, "", _safe_next(next), 200)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    next_ = _safe_next(next)
    if not same_token(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token or "\0"):
        raise WebRefused(
            "the sign-in form was refused: its security token (CSRF) is missing or out of "
            "date. Reload the sign-in page and try again."
        )
    client = request.client.host if request.client else "unknown"
    throttle = throttle_of(request)
    with store_of(request).session() as s:
        wait = throttle.retry_after(s, email, client)
    if wait is not None:
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        return _login_page(
            request,
            f"Too many failed sign-ins for this address or from this computer. "
            f"Try again in {minutes} min.",
            email,
            next_,
            429,
        )
    with store_of(request).session() as s:
        admin = authenticate(s, email, password)
        token = start_session(s, admin) if admin is not None else None
        if token is None:
            throttle.failed(s, email, client)
    if token is None:
        return _login_page(
            request,
            "Wrong email or password. (Accounts are created with `calbridge admin create EMAIL`.)",
            email,
            next_,
            401,
        )
    response = RedirectResponse(next_, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, who: Annotated[SignedIn, Depends(signed_form)]) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with store_of(request).session() as s:
            end_session(s, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
