"""Who is asking: the worklist trusts an authentication in front of it, never a form of its own.

Two ways, chosen when the worklist starts (docs/worklist.md):

* **An OIDC login at a reverse proxy** (oauth2-proxy, or the region's own gateway): the
  proxy signs the user in and passes who it is in a header. oauth2-proxy sets
  ``X-Auth-Request-Email``/``X-Auth-Request-User`` (with ``--set-xauthrequest``) and
  ``X-Forwarded-Email``/``X-Forwarded-User`` (with ``--pass-user-headers``, its default for
  the upstream proxy mode) (oauth2-proxy documentation, "Configuration: Overview", header
  options). The header is trusted **only** from the configured proxy addresses: from any
  other peer a request is refused whatever it carries, so a user who reaches the worklist
  around the proxy cannot name themselves.
* **A client certificate**: uvicorn requires one (``ssl_cert_reqs`` =
  ``ssl.CERT_REQUIRED``, the region CA as ``ssl_ca_certs``) and
  :mod:`region.worklist.serve` hands the verified certificate's subject CN to the
  application as the ASGI TLS extension's ``client_cn``; the CN is the user.

Pure: it reads the ASGI scope's client address, headers and extensions.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

#: The headers a proxy passes the user in, the most specific first.
USER_HEADERS = (
    "x-auth-request-email",
    "x-forwarded-email",
    "x-auth-request-user",
    "x-forwarded-user",
)
_MAX_USER = 254

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AuthConfig:
    """``mode``: ``proxy`` (a header from ``trusted_proxies``) or ``client-cert``."""

    mode: Literal["proxy", "client-cert"]
    trusted_proxies: tuple[Network, ...] = field(default_factory=tuple)
    user_headers: tuple[str, ...] = USER_HEADERS


def networks(values: Sequence[str]) -> tuple[Network, ...]:
    """Addresses or networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``); ValueError names one
    that is not."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return tuple(out)


def _clean(user: str) -> str | None:
    text = user.strip()
    if not text or len(text) > _MAX_USER or any(ord(c) < 32 for c in text):
        return None
    return text


def user_of(config: AuthConfig, scope: Mapping[str, Any]) -> str | None:
    """The authenticated user of a request, or None (refuse it)."""
    if config.mode == "client-cert":
        tls = scope.get("extensions", {}).get("tls", {})
        cn = tls.get("client_cn")
        return _clean(cn) if isinstance(cn, str) else None
    client = scope.get("client")
    if not client:
        return None
    try:
        peer = ipaddress.ip_address(client[0])
    except ValueError:
        return None
    if not any(peer in network for network in config.trusted_proxies):
        return None
    headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
    for name in config.user_headers:
        value = headers.get(name)
        if value is not None:
            return _clean(value.decode("utf-8", "replace"))
    return None
