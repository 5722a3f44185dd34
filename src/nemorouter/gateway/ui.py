"""/ui: the dashboard's pages, sign-in and sign-out (DESIGN §2.3).

Pages are static shells; their scripts fetch the admin API's JSON with the session
cookie, so every number on screen is the number the API answers with.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import lru_cache
from html import escape
from importlib import resources
from string import Template
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from nemorouter.gateway.bodies import LOGIN_FORM_BYTES, bounded_body
from nemorouter.gateway.ui_session import (
    COOKIE,
    clear_session,
    has_session,
    refuse_foreign,
    sessions_for,
    set_session,
    sign_out,
)
from nemorouter.gateway.ui_throttle import LoginThrottle
from nemorouter.wiring import Services

PAGES = {  # page name → (title, nav label)
    "overview": "Overview",
    "jobs": "Jobs",
    "job": "Job",
    "keys": "Keys and teams",
    "events": "Fallbacks and errors",
}
HEADERS = {
    # Scripts and styles come only from /ui/static: injected markup cannot run.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "cache-control": "no-store",
    "referrer-policy": "same-origin",  # not no-referrer: chromium would send Origin: null
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


@lru_cache(maxsize=8)
def _template(name: str) -> Template:
    files = resources.files("nemorouter.dashboard").joinpath("templates", name)
    return Template(files.read_text(encoding="utf-8"))


def _html(name: str, status: int = 200, **values: str) -> HTMLResponse:
    body = _template(name).substitute({k: escape(v) for k, v in values.items()})
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _safe_next(value: str | None) -> str:
    """Only a path inside /ui: the sign-in form must not redirect anywhere else."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui"


def ui_routes(services: Services) -> list[BaseRoute]:
    sessions = sessions_for(services)
    throttle = LoginThrottle()

    def page(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def show(request: Request) -> Response:
            if not has_session(services, request):
                target = quote(request.url.path, safe="/")
                return RedirectResponse(f"/ui/login?next={target}", status_code=303)
            job_id = request.path_params.get("job_id", "")
            return _html("page.html", page=name, title=PAGES[name], job_id=job_id)

        return show

    async def login_form(request: Request) -> Response:
        if has_session(services, request):
            return RedirectResponse(_safe_next(request.query_params.get("next")), 303)
        return _html("login.html", next=_safe_next(request.query_params.get("next")), error="")

    async def login(request: Request) -> Response:
        refuse_foreign(request)
        address = request.client.host if request.client else "unknown"
        throttle.check(address)  # before the key is even looked at
        body = await bounded_body(request, LOGIN_FORM_BYTES, "the sign-in form")
        form = parse_qs(body.decode("utf-8", "replace"))
        key = (form.get("key") or [""])[0].strip()
        target = _safe_next((form.get("next") or [None])[0])
        if not key or not sessions.master_matches(key):
            throttle.failed(address)
            return _html("login.html", 401, next=target, error="That is not the master key.")
        throttle.succeeded(address)
        response = RedirectResponse(target, status_code=303)
        set_session(response, sessions.issue(), secure=request.url.scheme == "https")
        return response

    async def logout(request: Request) -> Response:
        refuse_foreign(request)
        await sign_out(services, request.cookies.get(COOKIE))
        response = RedirectResponse("/ui/login", status_code=303)
        clear_session(response, secure=request.url.scheme == "https")
        return response

    static = StaticFiles(packages=[("nemorouter.dashboard", "static")])
    return [
        Mount("/ui/static", app=static, name="ui-static"),
        Route("/ui/login", login_form, methods=["GET"]),
        Route("/ui/login", login, methods=["POST"]),
        Route("/ui/logout", logout, methods=["POST"]),
        Route("/ui", page("overview"), methods=["GET"]),
        Route("/ui/jobs", page("jobs"), methods=["GET"]),
        Route("/ui/jobs/{job_id:path}", page("job"), methods=["GET"]),
        Route("/ui/keys", page("keys"), methods=["GET"]),
        Route("/ui/events", page("events"), methods=["GET"]),
    ]
