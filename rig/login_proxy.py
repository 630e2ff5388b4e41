"""A stand-in for oauth2-proxy in front of the worklist, for the browser test and the demo.

It follows the parts of oauth2-proxy's documented behaviour the worklist relies on
(oauth2-proxy documentation, "Configuration: Overview" and "Endpoints"): a request without a
session is sent to ``/oauth2/sign_in?rd=PATH``; after the sign-in the session is a cookie
(``_oauth2_proxy``) and every request is passed to the upstream with the user in
``X-Forwarded-User`` and ``X-Forwarded-Email`` (``--pass-user-headers``), any such header
the browser sent being replaced; ``/oauth2/sign_out`` ends the session. Where oauth2-proxy
sends the browser to the OIDC provider, this stand-in asks for an e-mail address on its
own sign-in page: a rig has no identity provider. Never for production.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import os
from html import escape
from urllib.parse import quote, unquote, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

COOKIE = "_oauth2_proxy"
_DROP = frozenset(
    {
        "host",
        "connection",
        "content-length",
        "transfer-encoding",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-auth-request-user",
        "x-auth-request-email",
        "cookie",
    }
)
_SIGN_IN = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in</title></head>
<body><main><h1>Sign in (rig login proxy)</h1>
<form method="post" action="/oauth2/sign_in">
<input type="hidden" name="rd" value="{rd}">
<label for="email">E-mail</label> <input id="email" name="email" type="email" required>
<button type="submit" id="sign-in">Sign in</button></form></main></body></html>"""


def _safe_path(text: str) -> str:
    return text if text.startswith("/") and not text.startswith("//") else "/"


def login_proxy(upstream: str, *, secret: bytes | None = None) -> Starlette:
    """The proxy's application, forwarding to ``upstream`` (``http://host:port``)."""
    key = secret or os.urandom(32)
    target = urlsplit(upstream)

    def sign(email: str) -> str:
        mac = hmac.new(key, email.encode(), hashlib.sha256).hexdigest()
        return f"{quote(email)}|{mac}"

    def user(request: Request) -> str | None:
        quoted, _, mac = request.cookies.get(COOKIE, "").rpartition("|")
        email = unquote(quoted)
        good = hmac.new(key, email.encode(), hashlib.sha256).hexdigest()
        return email if email and hmac.compare_digest(mac, good) else None

    async def sign_in(request: Request) -> Response:
        if request.method == "POST":
            form = await request.form()
            email = str(form.get("email", "")).strip()
            back = _safe_path(str(form.get("rd", "/")))
            if not email:
                return RedirectResponse(f"/oauth2/sign_in?rd={quote(back)}", status_code=303)
            response = RedirectResponse(back, status_code=303)
            response.set_cookie(COOKIE, sign(email), httponly=True, samesite="lax")
            return response
        rd = _safe_path(request.query_params.get("rd", "/"))
        return HTMLResponse(_SIGN_IN.format(rd=escape(rd)))

    async def sign_out(_request: Request) -> Response:
        response = RedirectResponse("/oauth2/sign_in", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    def forward(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(
            target.hostname or "127.0.0.1", target.port or 80, timeout=30
        )
        try:
            connection.request(method, path, body=body or None, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.getheaders(), answer.read()
        finally:
            connection.close()

    async def proxy(request: Request) -> Response:
        email = user(request)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if email is None:
            return RedirectResponse(f"/oauth2/sign_in?rd={quote(path)}", status_code=302)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        headers["Host"] = request.headers.get("host", "")
        headers["X-Forwarded-User"] = email
        headers["X-Forwarded-Email"] = email
        body = await request.body()
        status, answer_headers, content = await asyncio.to_thread(
            forward, request.method, path, headers, body
        )
        response = Response(content, status_code=status)
        for name, value in answer_headers:
            if name.lower() not in {
                "content-length",
                "transfer-encoding",
                "connection",
                "date",
                "server",
            }:
                response.headers.append(name, value)
        return response

    return Starlette(
        routes=[
            Route("/oauth2/sign_in", sign_in, methods=["GET", "POST"]),
            Route("/oauth2/sign_out", sign_out),
            Route("/{path:path}", proxy, methods=["GET", "POST"]),
        ]
    )
