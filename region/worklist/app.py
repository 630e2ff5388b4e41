"""The worklist's Starlette application: routes, authentication, CSRF, language, headers.

Routes: ``GET /`` (the worklist, ``?page=N``), ``GET /patient/{pseudonym}`` (``?system=``
when not the default pseudonym system), ``POST /findings/{id}/acknowledge`` (a form with the
CSRF token; answers 303 to the page it came from), ``/static/`` (the style sheet).

Every request must be authenticated (:mod:`region.worklist.auth`); otherwise 401 with a page
that says to sign in through the region's login. The CSRF token of a form is an HMAC of the
signed-in user under a secret of this process (a synchronizer token bound to the user: a
page of another site cannot read it), checked on every POST together with the
``Origin``/``Referer`` host when present. Answers carry a Content Security Policy without
scripts (``default-src 'self'; script-src 'none'``), ``X-Frame-Options: DENY``, no caching
of patients' pages, and ``Referrer-Policy: same-origin``.

Endpoints are coroutines: they run in the event loop's thread, which owns the stores'
SQLite connections (the findings are judged there too, every ``evaluate_every_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from region.enrolment import DEFAULT_PATIENT_SYSTEM
from region.findings.engine import FindingsEngine
from region.findings.errors import UnknownFindingError
from region.findings.service import evaluate_every
from region.worklist import i18n
from region.worklist.auth import AuthConfig, user_of
from region.worklist.views import patient_page, worklist

HERE = Path(__file__).parent
_LANG_COOKIE = "narhub-lang"
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


class _Guard(BaseHTTPMiddleware):
    """Authentication, language and the security headers, for every request."""

    def __init__(self, app: Any, auth: AuthConfig, render: Callable[..., HTMLResponse]) -> None:
        super().__init__(app)
        self._auth = auth
        self._render = render

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Refuse the unauthenticated; pick the language; add the headers."""
        language = i18n.choose(
            request.query_params.get("lang"),
            request.cookies.get(_LANG_COOKIE),
            request.headers.get("accept-language"),
        )
        request.state.language = language
        request.state.words = i18n.words(language)
        user = user_of(self._auth, request.scope)
        if user is None and not request.url.path.startswith("/static/"):
            response: Response = self._render(
                request, "error.html", status_code=401, reason="not_signed_in"
            )
        else:
            request.state.user = user
            response = await call_next(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        if request.query_params.get("lang") in i18n.LANGUAGES:
            response.set_cookie(_LANG_COOKIE, language, samesite="strict", httponly=True)
        return response


def create_app(
    engine: FindingsEngine,
    auth: AuthConfig,
    *,
    evaluate_every_s: float | None = 30.0,
    secret: bytes | None = None,
) -> Starlette:
    """The worklist on a findings engine (its clock is the page's "now")."""
    templates = _templates()
    key = secret or os.urandom(32)

    def csrf(user: str) -> str:
        return hmac.new(key, user.encode(), hashlib.sha256).hexdigest()

    def render(
        request: Request, name: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        state = request.state
        page = templates.get_template(name).render(
            t=state.words,
            lang=state.language,
            user=getattr(state, "user", None),
            csrf=csrf(state.user) if getattr(state, "user", None) else "",
            path=request.url.path,
            **context,
        )
        return HTMLResponse(page, status_code=status_code)

    async def home(request: Request) -> Response:
        try:
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            page = 1
        data = worklist(engine, request.state.words, engine.clock_ms(), page)
        return render(request, "worklist.html", data=data)

    async def patient(request: Request) -> Response:
        system = request.query_params.get("system", DEFAULT_PATIENT_SYSTEM)
        value = request.path_params["value"]
        data = patient_page(engine, system, value, request.state.words, engine.clock_ms())
        if data is None:
            return render(request, "error.html", status_code=404, reason="not_found")
        return render(request, "patient.html", p=data, default_system=DEFAULT_PATIENT_SYSTEM)

    async def acknowledge(request: Request) -> Response:
        form = await request.form()
        user = request.state.user
        token = str(form.get("csrf", ""))
        if not hmac.compare_digest(token, csrf(user)) or not _same_origin(request):
            return render(request, "error.html", status_code=403, reason="not_signed_in")
        try:
            engine.acknowledge(int(request.path_params["finding_id"]), user)
        except UnknownFindingError:
            return render(request, "error.html", status_code=404, reason="not_found")
        back = str(form.get("next", "/"))
        if not back.startswith("/") or back.startswith("//"):
            back = "/"
        return RedirectResponse(back, status_code=303)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = None
        if evaluate_every_s is not None:
            task = asyncio.create_task(
                evaluate_every(engine, evaluate_every_s), name="worklist-evaluate"
            )
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return Starlette(
        routes=[
            Route("/", home),
            Route("/patient/{value:str}", patient),
            Route("/findings/{finding_id:int}/acknowledge", acknowledge, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(_Guard, auth=auth, render=render)],
        lifespan=lifespan,
    )


def _same_origin(request: Request) -> bool:
    """An ``Origin`` (or ``Referer``) header, when the browser sent one, names this host."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source != "null"
    return urlsplit(source).netloc == request.headers.get("host", "")
