"""SMART Backend Services: an OAuth 2.0 access token for the region's FHIR server, obtained
with a signed JWT client assertion.

As SMART App Launch 2.x "Backend Services" (hl7.org/fhir/smart-app-launch/backend-services.html)
describes it:

- the client's public key is registered with the authorization server as a JWK Set
  (``narhub region smart-key init`` writes the key and ``jwks.json``); the private key
  signs with ES384 (ECDSA P-384, SHA-384) or RS384 (RSASSA-PKCS1-v1_5, SHA-384), the two
  algorithms the specification's "Signature Verification" asks servers to support;
- "Obtaining an access token": a POST to the token endpoint (``token_endpoint`` of
  ``{fhir base}/.well-known/smart-configuration`` unless configured) with
  ``grant_type=client_credentials``, ``scope``, ``client_assertion_type=
  urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and ``client_assertion``: a JWT
  (RFC 7523 section 2.2) whose header has ``alg``, ``kid`` and ``typ: JWT`` and whose claims
  are ``iss`` = ``sub`` = the client id, ``aud`` = the token endpoint URL, ``exp`` at most
  five minutes ahead and a unique ``jti``;
- the answer has ``access_token``, ``token_type: bearer`` and ``expires_in`` (all required):
  the token is cached until shortly before it expires and fetched again then, or at once
  when the FHIR server answers 401 (it may end a token early).

Secrets stay out of logs: neither the assertion nor the token is logged.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ALGORITHMS = ("ES384", "RS384")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Backend Services: "exp ... no more than five minutes in the future".
ASSERTION_LIFETIME_S = 300
#: A token is renewed this long before its stated expiry (or at 90 % of a short lifetime).
REFRESH_MARGIN_S = 30.0
DEFAULT_SCOPE = "system/Observation.cs system/Device.cs system/Patient.cs"
_P384_BYTES = 48


class SmartClientError(ValueError):
    """The client configuration is unusable: ``where`` names the file or key, ``reason`` why."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class SmartAuthError(RuntimeError):
    """No token: ``status`` (0: no HTTP answer), ``error`` the OAuth error code if any."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        self.status = status
        self.error = error
        self.reason = reason
        super().__init__(f"token endpoint: {status or 'no answer'} {error} {reason}".strip())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SmartClient:
    """A registered backend client: its id, key, algorithm and key id, and what it asks for."""

    client_id: str
    key_pem: bytes
    alg: str
    kid: str
    scope: str = DEFAULT_SCOPE
    #: ``None``: discovered from the FHIR server's ``.well-known/smart-configuration``.
    token_url: str | None = None

    def __post_init__(self) -> None:
        if self.alg not in ALGORITHMS:
            raise SmartClientError("alg", f"{self.alg!r} is not one of {', '.join(ALGORITHMS)}")
        key = self._key()
        if self.alg == "ES384" and not (
            isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
        ):
            raise SmartClientError("key", "ES384 needs an EC P-384 private key")
        if self.alg == "RS384" and not (
            isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048
        ):
            raise SmartClientError("key", "RS384 needs an RSA private key of 2048 bits or more")

    def _key(self) -> Any:
        try:
            return serialization.load_pem_private_key(self.key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise SmartClientError("key", f"not an unencrypted PEM private key ({exc})") from None

    def assertion(self, audience: str, now_s: float, jti: str | None = None) -> str:
        """The signed client assertion JWT (RFC 7519 compact form, RFC 7515 signature)."""
        header = {"alg": self.alg, "kid": self.kid, "typ": "JWT"}
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "exp": int(now_s) + ASSERTION_LIFETIME_S,
            "jti": jti or secrets.token_urlsafe(24),
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        return f"{signing_input}.{_b64url(self._sign(signing_input.encode('ascii')))}"

    def _sign(self, data: bytes) -> bytes:
        key = self._key()
        if self.alg == "RS384":
            signature: bytes = key.sign(data, padding.PKCS1v15(), hashes.SHA384())
            return signature
        # JWS ECDSA signatures are R || S, each as long as the curve's order (RFC 7518 3.4).
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA384())))
        return r.to_bytes(_P384_BYTES, "big") + s.to_bytes(_P384_BYTES, "big")

    def public_jwks(self) -> dict[str, Any]:
        """The JWK Set to register with the authorization server (RFC 7517 section 5)."""
        public = self._key().public_key()
        jwk: dict[str, Any] = {"kid": self.kid, "alg": self.alg, "key_ops": ["verify"]}
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            jwk |= {
                "kty": "EC",
                "crv": "P-384",
                "x": _b64url(numbers.x.to_bytes(_P384_BYTES, "big")),
                "y": _b64url(numbers.y.to_bytes(_P384_BYTES, "big")),
            }
        else:
            numbers = public.public_numbers()
            jwk |= {
                "kty": "RSA",
                "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                "e": _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            }
        return {"keys": [jwk]}


def new_client_key(alg: str) -> bytes:
    """A new private key for ``alg`` (PKCS#8 PEM)."""
    if alg == "ES384":
        key: Any = ec.generate_private_key(ec.SECP384R1())
    elif alg == "RS384":
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        raise SmartClientError("alg", f"{alg!r} is not one of {', '.join(ALGORITHMS)}")
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem


def load_smart_client(path: Path) -> SmartClient:
    """A client from TOML: ``client_id``, ``key_file`` (relative to the file), ``alg``,
    ``kid``, optional ``scope`` and ``token_url``."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SmartClientError(str(path), str(exc)) from None
    for name in ("client_id", "key_file", "kid"):
        if not isinstance(table.get(name), str) or not table[name]:
            raise SmartClientError(f"{path}: {name}", "missing (a non-empty string)")
    key_file = path.parent / table["key_file"]
    try:
        key_pem = key_file.read_bytes()
    except OSError as exc:
        raise SmartClientError(f"{path}: key_file", f"cannot read {key_file}: {exc}") from None
    return SmartClient(
        client_id=table["client_id"],
        key_pem=key_pem,
        alg=str(table.get("alg", "ES384")),
        kid=table["kid"],
        scope=str(table.get("scope", DEFAULT_SCOPE)),
        token_url=table.get("token_url"),
    )


def _post_form(url: str, fields: dict[str, str], timeout_s: float) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the operator's configured URL
        url,
        data=urllib.parse.urlencode(fields).encode("ascii"),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    return _json_answer(request, timeout_s)


def _json_answer(request: urllib.request.Request, timeout_s: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
            body = answer.read()
    except urllib.error.HTTPError as exc:
        error = ""
        with contextlib.suppress(ValueError, AttributeError):
            error = str(json.loads(exc.read()).get("error", ""))
        raise SmartAuthError(exc.code, error, str(exc.reason)) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise SmartAuthError(0, "", str(getattr(exc, "reason", exc))) from None
    try:
        parsed = json.loads(body)
    except ValueError:
        raise SmartAuthError(200, "", "the answer is not JSON") from None
    if not isinstance(parsed, dict):
        raise SmartAuthError(200, "", "the answer is not a JSON object")
    return parsed


class SmartAuth:
    """Access tokens for one client, cached until they expire; thread-safe (the poster asks
    from a worker thread)."""

    def __init__(
        self,
        client: SmartClient,
        fhir_base: str,
        *,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 30.0,
    ) -> None:
        self.client = client
        self._fhir_base = fhir_base.rstrip("/")
        self._clock = clock
        self._timeout_s = timeout_s
        self._token_url = client.token_url
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()
        #: Tokens obtained so far (for tests and statistics).
        self.tokens_fetched = 0

    def token_url(self) -> str:
        """The token endpoint: configured, or ``token_endpoint`` from the server's
        ``.well-known/smart-configuration`` (SMART App Launch 2.x, "Conformance")."""
        if self._token_url is None:
            request = urllib.request.Request(  # noqa: S310 - the configured FHIR base
                f"{self._fhir_base}/.well-known/smart-configuration",
                headers={"Accept": "application/json"},
            )
            endpoint = _json_answer(request, self._timeout_s).get("token_endpoint")
            if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
                raise SmartAuthError(200, "", "smart-configuration has no token_endpoint URL")
            self._token_url = endpoint
        return self._token_url

    def authorization(self) -> str:
        """The ``Authorization`` header value, ``Bearer {token}``, fetching a token if needed."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._fetch()
            assert self._token is not None
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        """Forget the token (the FHIR server answered 401): the next request gets a new one."""
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        url = self.token_url()
        now = self._clock()
        answer = _post_form(
            url,
            {
                "grant_type": "client_credentials",
                "scope": self.client.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.client.assertion(url, now),
            },
            self._timeout_s,
        )
        token = answer.get("access_token")
        token_type = answer.get("token_type")
        expires_in = answer.get("expires_in")
        if not isinstance(token, str) or not token:
            raise SmartAuthError(200, "", "the token response has no access_token")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise SmartAuthError(200, "", f"token_type {token_type!r} is not bearer")
        if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
            raise SmartAuthError(200, "", "the token response has no positive expires_in")
        self._token = token
        self._renew_at = now + expires_in - min(REFRESH_MARGIN_S, expires_in * 0.1)
        self.tokens_fetched += 1
