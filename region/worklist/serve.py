"""Serving the worklist with uvicorn (the one module that imports it).

Plain HTTP on an address behind the region's reverse proxy (the OIDC login in front), or
HTTPS with client certificates: ``ssl_cert_reqs=CERT_REQUIRED`` and the region CA as
``ssl_ca_certs``, so that the TLS handshake fails without a certificate the CA issued.

uvicorn gives the application no access to the client's certificate (it does not implement
the ASGI TLS extension). :class:`_ClientCertProtocol` fills the gap in the one place it can:
the HTTP protocol uvicorn creates per connection (``uvicorn.protocols.http.h11_impl.
H11Protocol``, selected by ``Config(http=...)``) reads the verified peer certificate's subject
CN when the connection is made and wraps its ``app`` so that every request of the connection
carries ``scope["extensions"]["tls"]["client_cn"]``. tests/findings/test_worklist_http.py
fails if uvicorn stops calling ``connection_made`` first or renames ``app``.

Access logs are off: a worklist path names a patient's pseudonym, which never goes to a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

ASGIApp = Any


@dataclass(frozen=True)
class ServerTls:
    """HTTPS with client certificates issued by ``client_ca``."""

    cert_file: Path
    key_file: Path
    client_ca: Path


def _common_name(certificate: dict[str, Any] | None) -> str | None:
    """The subject CN of a certificate as :meth:`ssl.SSLSocket.getpeercert` gives it."""
    for rdn in (certificate or {}).get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


def _with_client_cn(app: ASGIApp, cn: str | None) -> ASGIApp:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in {"http", "websocket"} and cn is not None:
            extensions = dict(scope.get("extensions") or {})
            extensions["tls"] = {**extensions.get("tls", {}), "client_cn": cn}
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return wrapped


class _ClientCertProtocol(H11Protocol):
    """uvicorn's h11 protocol, telling the application the client certificate's CN."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Read the verified peer certificate, then let uvicorn set the connection up."""
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        peer = ssl_object.getpeercert() if ssl_object is not None else None
        self.app = _with_client_cn(self.app, _common_name(peer))


def config(app: ASGIApp, host: str, port: int, tls: ServerTls | None = None) -> uvicorn.Config:
    """The uvicorn configuration (HTTPS with required client certificates when ``tls``)."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "lifespan": "on",
        "access_log": False,
        "log_level": "warning",
        "ws": "none",
        "http": _ClientCertProtocol if tls is not None else "h11",
    }
    if tls is not None:
        options.update(
            ssl_certfile=str(tls.cert_file),
            ssl_keyfile=str(tls.key_file),
            ssl_ca_certs=str(tls.client_ca),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )
    return uvicorn.Config(app, **options)


@contextlib.asynccontextmanager
async def running(
    app: ASGIApp, host: str, port: int, tls: ServerTls | None = None
) -> AsyncIterator[str]:
    """Serve in this event loop; yields the base URL (the port bound when ``port`` is 0)."""
    server = uvicorn.Server(config(app, host, port, tls))
    task = asyncio.create_task(server.serve(), name="worklist-http")
    try:
        while not server.started:
            if task.done():
                await task  # raises why it could not start
                raise RuntimeError("the worklist's server stopped before it started")
            await asyncio.sleep(0.02)
        bound = server.servers[0].sockets[0].getsockname()
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://{host}:{bound[1]}"
    finally:
        server.should_exit = True
        await task


def serve(app: ASGIApp, host: str, port: int, tls: ServerTls | None = None) -> None:
    """Serve until interrupted (``narhub region worklist``)."""
    uvicorn.Server(config(app, host, port, tls)).run()
