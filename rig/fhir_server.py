"""A FHIR R4 server fake at the region's delivery seam: the transaction interaction and the
SMART Backend Services token endpoint, in memory, over real HTTP on loopback.

No real FHIR server installs from the registries this project can reach (HAPI FHIR JPA
needs Maven Central; Medplum's server is not published to npm), so the receivers' FHIR
delivery (:mod:`region.fhir_post`, :mod:`region.smart_auth`) is tested against this fake,
which follows the specifications' documented rules and refuses what they forbid:

FHIR R4 RESTful API (hl7.org/fhir/R4/http.html):

- 3.1.0.11 "Batch/Transaction": ``POST [base]`` with a Bundle of ``type`` ``transaction``
  (anything else: 400); every entry has ``request.method`` and ``request.url``; a POST entry
  has a resource whose type is the url's; ``fullUrl`` values are unique (Bundle invariant
  bdl-7).
- 3.1.0.11.2 "Transaction Processing Rules": the entries succeed or fail together (on any
  failure nothing is stored and the answer is an OperationOutcome with the failure's
  status); references to another entry's ``fullUrl`` are replaced by the identity the
  server gave (or found for) that entry; a ``urn:uuid:`` reference that names no entry
  fails the transaction; the answer is a ``transaction-response`` Bundle with one entry per
  request entry, in order, with ``response.status`` and ``response.location``.
- 3.1.0.8 "Conditional create" (``ifNoneExist``): no match creates (201), one match creates
  nothing and answers 200 with the match, more than one match is 412 Precondition Failed.
  Search parameters this fake does not know are refused (400) rather than ignored: a server
  that ignores one matches every resource of the type and answers 412 (as reported against
  the Spark server, FirelyTeam/spark issue 520).
- 3.1.0.4.3 "Conditional update" (``PUT [type]?[search]``): no match creates (201), one
  match replaces that resource as its next version (200; a body ``id`` naming another
  resource is 400), more than one is 412. In a transaction the POSTs are processed before
  the PUTs (3.1.0.11.2), and two entries resolving to the same resource fail it (400).
- Transactions run one at a time (serializable): two receivers that race with the same
  conditional create get one resource, which is what the region relies on.

SMART App Launch 2.x, "Backend Services" (hl7.org/fhir/smart-app-launch/backend-services.html):
``.well-known/smart-configuration`` names the token endpoint; the token endpoint takes
``grant_type=client_credentials`` with a ``private_key_jwt`` client assertion (RFC 7523
section 2.2: ``iss`` = ``sub`` = the client id, ``aud`` = the token endpoint, ``exp`` no more
than five minutes ahead, a ``jti`` never used before, signed ES384 or RS384 with a key of the
client's registered JWK Set, ``kid`` naming it) and answers ``invalid_client`` (RFC 6749
section 5.2) otherwise; the FHIR endpoint then wants ``Authorization: Bearer`` with a token
that has not expired (401 otherwise, RFC 6750 section 3).
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from rig.processes import Service

FHIR_JSON = "application/fhir+json"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: The search parameters this fake evaluates (FHIR R4 search.html 3.1.1.5.5 token, _id).
SEARCH_PARAMETERS = frozenset({"identifier", "_id"})


class FhirServerError(Exception):
    """A refused interaction: the HTTP ``status`` and an OperationOutcome ``code``."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        super().__init__(f"{status} {code}: {diagnostics}")

    def outcome(self) -> dict[str, Any]:
        """The OperationOutcome the server answers with (FHIR R4 operationoutcome.html)."""
        issue = {"severity": "error", "code": self.code, "diagnostics": self.diagnostics}
        return {"resourceType": "OperationOutcome", "issue": [issue]}


def _type_of(url: str) -> str:
    return url.split("?", 1)[0].strip("/").split("/", 1)[0]


def _token_matches(identifiers: list[dict[str, Any]], value: str) -> bool:
    """Token search on Identifier (search.html 3.1.1.5.5): ``system|value``, ``|value``
    (no system) or ``value`` (any system)."""
    if "|" in value:
        system, _, code = value.partition("|")
        return any(
            i.get("value") == code and (i.get("system") or "") == system for i in identifiers
        )
    return any(i.get("value") == value for i in identifiers)


def _identifier_keys(resource_type: str, resource: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (resource_type, str(i.get("system") or ""), str(i.get("value")))
        for i in resource.get("identifier", [])
        if isinstance(i, dict) and "value" in i
    ]


@dataclass
class FhirStore:
    """Resources by type and id, with an identifier index; transactions are atomic (their
    creations are staged and committed together) and serialized (one at a time)."""

    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: (type, identifier system, identifier value) -> ids: token search without a scan.
    index: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Transactions processed (accepted or refused).
    transactions: int = 0

    def search(
        self, resource_type: str, query: str, staged: dict[str, dict[str, Any]] | None = None
    ) -> list[str]:
        """Ids of ``resource_type`` matching ``query`` (``a=b&c=d``: every one must hold),
        among the stored resources and those ``staged`` by the running transaction."""
        params = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        for name, _ in params:
            if name not in SEARCH_PARAMETERS:
                raise FhirServerError(400, "not-supported", f"search parameter {name!r}")
        pool = self.resources.get(resource_type, {})
        pending = {
            rid: r for rid, r in (staged or {}).items() if r["resourceType"] == resource_type
        }
        candidates: set[str] | None = None
        for name, value in params:
            if name == "identifier" and "|" in value:
                system, _, code = value.partition("|")
                found = set(self.index.get((resource_type, system, code), set()))
                found |= {
                    rid
                    for rid, r in pending.items()
                    if (resource_type, system, code) in _identifier_keys(resource_type, r)
                }
            elif name == "identifier":
                found = {
                    rid
                    for rid, r in [*pool.items(), *pending.items()]
                    if _token_matches(r.get("identifier", []), value)
                }
            else:
                found = {value} & (set(pool) | set(pending))
            candidates = found if candidates is None else candidates & found
        return sorted(candidates if candidates is not None else set(pool) | set(pending))

    def count(self, resource_type: str) -> int:
        """How many resources of the type are stored."""
        return len(self.resources.get(resource_type, {}))

    def transaction(self, bundle: Any) -> dict[str, Any]:
        """Process a transaction Bundle (all or nothing); the transaction-response Bundle."""
        with self.lock:
            self.transactions += 1
            entries = _entries(bundle)
            staged: dict[str, dict[str, Any]] = {}  # id -> resource, committed at the end
            resolved: dict[str, str] = {}  # fullUrl -> Type/id
            answers: dict[int, dict[str, Any]] = {}
            for i, e in enumerate(entries):  # POSTs, then PUTs (3.1.0.11.2)
                if e["request"]["method"] == "POST":
                    answers[i] = self._create(i, e, resolved, staged)
            touched: set[str] = set()
            for i, e in enumerate(entries):
                if e["request"]["method"] == "PUT":
                    answers[i] = self._update(i, e, resolved, staged, touched)
            for resource in staged.values():
                self._resolve_references(resource, resolved, staged)
            for rid, resource in staged.items():
                resource_type = resource["resourceType"]
                old = self.resources.get(resource_type, {}).get(rid)
                for key in _identifier_keys(resource_type, old or {}):
                    self.index[key].discard(rid)
                self.resources.setdefault(resource_type, {})[rid] = resource
                for key in _identifier_keys(resource_type, resource):
                    self.index.setdefault(key, set()).add(rid)
            entry = [answers[i] for i in range(len(entries))]
            return {"resourceType": "Bundle", "type": "transaction-response", "entry": entry}

    def _update(
        self,
        index: int,
        entry: dict[str, Any],
        resolved: dict[str, str],
        staged: dict[str, dict[str, Any]],
        touched: set[str],
    ) -> dict[str, Any]:
        """A conditional update (3.1.0.4.3)."""
        resource = entry["resource"]
        resource_type = resource["resourceType"]
        matches = self.search(resource_type, str(entry["request"]["url"]).split("?", 1)[1], staged)
        if len(matches) > 1:
            raise FhirServerError(412, "duplicate", f"entry {index}: {len(matches)} matches")
        rid = matches[0] if matches else str(uuid.uuid4())
        if resource.get("id", rid) != rid:
            raise FhirServerError(400, "invalid", f"entry {index}: id names another resource")
        if rid in touched:
            raise FhirServerError(400, "invalid", f"entry {index}: a resource updated twice")
        touched.add(rid)
        current = staged.get(rid) or self.resources.get(resource_type, {}).get(rid)
        version = 1 if current is None else int(current["meta"]["versionId"]) + 1
        staged[rid] = {**copy.deepcopy(resource), "id": rid, "meta": {"versionId": str(version)}}
        if "fullUrl" in entry:
            resolved[entry["fullUrl"]] = f"{resource_type}/{rid}"
        status = "201 Created" if current is None else "200 OK"
        location = f"{resource_type}/{rid}/_history/{version}"
        return {"response": {"status": status, "location": location, "etag": f'W/"{version}"'}}

    def _create(
        self,
        index: int,
        entry: dict[str, Any],
        resolved: dict[str, str],
        staged: dict[str, dict[str, Any]],
    ) -> dict[str, Any]:
        request = entry["request"]
        resource = entry["resource"]
        resource_type = resource["resourceType"]
        condition = request.get("ifNoneExist")
        if condition is not None:
            query = str(condition).split("?", 1)[1] if "?" in condition else str(condition)
            if "?" in condition and _type_of(condition) != resource_type:
                reason = f"entry {index}: ifNoneExist names another type"
                raise FhirServerError(400, "invalid", reason)
            matches = self.search(resource_type, query, staged)
            if len(matches) > 1:
                reason = f"entry {index}: ifNoneExist {condition!r} matches {len(matches)}"
                raise FhirServerError(412, "duplicate", reason)
            if matches:
                location = f"{resource_type}/{matches[0]}"
                if "fullUrl" in entry:
                    resolved[entry["fullUrl"]] = location
                return {"response": {"status": "200 OK", "location": location}}
        rid = str(uuid.uuid4())
        staged[rid] = {**copy.deepcopy(resource), "id": rid, "meta": {"versionId": "1"}}
        if "fullUrl" in entry:
            resolved[entry["fullUrl"]] = f"{resource_type}/{rid}"
        location = f"{resource_type}/{rid}/_history/1"
        return {"response": {"status": "201 Created", "location": location, "etag": 'W/"1"'}}

    def _resolve_references(
        self, node: Any, resolved: dict[str, str], staged: dict[str, dict[str, Any]]
    ) -> None:
        """Replace ``reference`` values naming a bundle entry (3.1.0.11.2); check the rest."""
        for item in _walk(node):
            reference = item.get("reference")
            if not isinstance(reference, str):
                continue
            if reference in resolved:
                item["reference"] = resolved[reference]
            elif reference.startswith(("urn:uuid:", "urn:oid:")):
                raise FhirServerError(400, "not-found", f"reference {reference} names no entry")
            elif "?" in reference:
                resource_type = _type_of(reference)
                matches = self.search(resource_type, reference.split("?", 1)[1], staged)
                if len(matches) != 1:
                    raise FhirServerError(412, "duplicate", f"{reference}: {len(matches)} matches")
                item["reference"] = f"{resource_type}/{matches[0]}"
            elif "/" in reference and not reference.startswith(("http://", "https://", "#")):
                resource_type, _, rid = reference.partition("/")
                if rid not in self.resources.get(resource_type, {}) and rid not in staged:
                    raise FhirServerError(404, "not-found", f"reference {reference} not found")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _entries(bundle: Any) -> list[dict[str, Any]]:
    """The checks of 3.1.0.11 and bdl-7 before anything is processed."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirServerError(400, "invalid", "the body is not a Bundle")
    if bundle.get("type") != "transaction":
        raise FhirServerError(
            400, "invalid", f"Bundle.type {bundle.get('type')!r}, not transaction"
        )
    entries = bundle.get("entry", [])
    full_urls = [e.get("fullUrl") for e in entries if isinstance(e, dict) and "fullUrl" in e]
    if len(full_urls) != len(set(full_urls)):
        raise FhirServerError(400, "invalid", "fullUrl values are not unique (bdl-7)")
    for index, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or "method" not in request or "url" not in request:
            raise FhirServerError(400, "required", f"entry {index}: request.method and url")
        method, url = request["method"], str(request["url"])
        if method not in ("POST", "PUT") or (method == "PUT" and "?" not in url):
            raise FhirServerError(405, "not-supported", f"entry {index}: {method} {url}")
        resource = entry.get("resource")
        if not isinstance(resource, dict) or resource.get("resourceType") != _type_of(
            str(request["url"])
        ):
            raise FhirServerError(
                400, "invalid", f"entry {index}: resource is not a {request['url']}"
            )
    return list(entries)


# -- SMART Backend Services ---------------------------------------------------------------


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public_key(jwk: dict[str, Any]) -> Any:
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-384":
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(_b64url_decode(jwk["x"]), "big"),
            int.from_bytes(_b64url_decode(jwk["y"]), "big"),
            ec.SECP384R1(),
        )
        return numbers.public_key()
    if jwk.get("kty") == "RSA":
        return rsa.RSAPublicNumbers(
            int.from_bytes(_b64url_decode(jwk["e"]), "big"),
            int.from_bytes(_b64url_decode(jwk["n"]), "big"),
        ).public_key()
    raise FhirServerError(400, "invalid_client", "unsupported key in the JWK Set")


def _signature_ok(alg: str, key: Any, data: bytes, signature: bytes) -> bool:
    """JWS signature check: ES384 as R || S (RFC 7518 3.4), RS384 PKCS#1 v1.5 (3.3)."""
    try:
        if alg == "ES384" and isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 96:
            r, s = int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA384()))
            return True
        if alg == "RS384" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA384())
            return True
    except InvalidSignature:
        return False
    return False


def _parse(content_type: str, body: bytes) -> Any:
    """A FHIR JSON body (FHIR R4 http.html 3.1.0.1.10: application/fhir+json)."""
    if content_type.split(";", maxsplit=1)[0].strip() != FHIR_JSON:
        raise FhirServerError(415, "not-supported", f"Content-Type {content_type!r}")
    try:
        return json.loads(body, parse_float=Decimal)
    except ValueError:
        raise FhirServerError(400, "structure", "the body is not JSON") from None


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(f"{error}: {description}")


@dataclass
class SmartAuthority:
    """Registered backend clients (id -> JWK Set) and the tokens issued to them."""

    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_lifetime_s: int = 300
    clock: Callable[[], float] = time.time
    tokens: dict[str, float] = field(default_factory=dict)
    used_jti: set[str] = field(default_factory=set)
    tokens_issued: int = 0
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, form: dict[str, str], token_url: str) -> dict[str, Any]:
        """The token endpoint ("Obtaining an access token")."""
        with self.lock:
            try:
                client_id = self._check(form, token_url)
            except OAuthError as exc:
                self.refused.append(exc.description)
                raise
            token = secrets.token_urlsafe(32)
            self.tokens[token] = self.clock() + self.token_lifetime_s
            self.tokens_issued += 1
            del client_id
            return {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_lifetime_s,
                "scope": form["scope"],
            }

    def _check(self, form: dict[str, str], token_url: str) -> str:
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", f"grant_type {form.get('grant_type')!r}")
        if form.get("client_assertion_type") != JWT_BEARER:
            raise OAuthError("invalid_client", "client_assertion_type is not jwt-bearer")
        if not form.get("scope"):
            raise OAuthError("invalid_scope", "no scope")
        parts = form.get("client_assertion", "").split(".")
        if len(parts) != 3:
            raise OAuthError("invalid_client", "client_assertion is not a compact JWS")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except ValueError:
            raise OAuthError("invalid_client", "client_assertion does not decode") from None
        client_id = claims.get("iss")
        if client_id not in self.clients or claims.get("sub") != client_id:
            raise OAuthError("invalid_client", "iss/sub is not a registered client")
        if header.get("typ") != "JWT" or header.get("alg") not in ("ES384", "RS384"):
            raise OAuthError("invalid_client", f"header {header!r}")
        keys = [k for k in self.clients[client_id]["keys"] if k.get("kid") == header.get("kid")]
        if not keys:
            raise OAuthError("invalid_client", "kid names no registered key")
        self._verify(header["alg"], keys[0], f"{parts[0]}.{parts[1]}".encode(), signature)
        if claims.get("aud") != token_url:
            raise OAuthError("invalid_client", f"aud {claims.get('aud')!r} is not {token_url}")
        now = self.clock()
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now or exp > now + 300 + 5:
            raise OAuthError("invalid_client", "exp is past or more than five minutes ahead")
        jti = claims.get("jti")
        if not isinstance(jti, str) or jti in self.used_jti:
            raise OAuthError("invalid_client", "jti missing or used before")
        self.used_jti.add(jti)
        return str(client_id)

    @staticmethod
    def _verify(alg: str, jwk: dict[str, Any], data: bytes, signature: bytes) -> None:
        if not _signature_ok(alg, _public_key(jwk), data, signature):
            raise OAuthError("invalid_client", "the assertion's signature does not verify")

    def valid(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries a live token (RFC 6750 section 2.1)."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        with self.lock:
            expiry = self.tokens.get(authorization.removeprefix("Bearer "))
            return expiry is not None and self.clock() < expiry

    def revoke_all(self) -> None:
        """End every token early (a server may: the client must then get a new one)."""
        with self.lock:
            self.tokens.clear()


class FakeFhirServer(Service):
    """The store and (optionally) the SMART authority behind a loopback HTTP server.

    ``faults``: scripted failures of the next transaction POSTs, one per request:
    ``down`` (503), ``answer-lost`` (processed, connection closed without an answer).
    """

    def __init__(self, *, smart: SmartAuthority | None = None) -> None:
        self.store = FhirStore()
        self.smart = smart
        self.faults: list[str] = []
        #: (HTTP status, OperationOutcome code or "") of every transaction POST, in order.
        self.answers: list[tuple[int, str]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fhir", daemon=True)

    @property
    def base_url(self) -> str:
        """The FHIR base URL."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/fhir"

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/auth/token"

    def start(self) -> None:
        """Serve (in a daemon thread)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any], media: str = FHIR_JSON,
                      headers: dict[str, str] | None = None) -> None:  # fmt: skip
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                if path == "/fhir/.well-known/smart-configuration":
                    self._send(200, server.smart_configuration(), "application/json")
                    return
                self._send(404, FhirServerError(404, "not-found", path).outcome())

            def do_POST(self) -> None:
                body = self._body()
                path = urllib.parse.urlsplit(self.path).path
                if path == "/auth/token":
                    self._token(body)
                elif path == "/fhir":
                    self._transaction(body)
                else:
                    self._send(404, FhirServerError(404, "not-found", path).outcome())

            def _token(self, body: bytes) -> None:
                if server.smart is None:
                    self._send(404, {"error": "invalid_request"}, "application/json")
                    return
                form = dict(urllib.parse.parse_qsl(body.decode("ascii", "replace")))
                try:
                    answer = server.smart.issue(form, server.token_url)
                except OAuthError as exc:
                    error = {"error": exc.error, "error_description": exc.description}
                    self._send(exc.status, error, "application/json")
                    return
                self._send(200, answer, "application/json", {"Cache-Control": "no-store"})

            def _transaction(self, body: bytes) -> None:
                if server.smart is not None and not server.smart.valid(
                    self.headers.get("Authorization")
                ):
                    server.answers.append((401, "login"))
                    outcome = FhirServerError(401, "login", "no valid bearer token").outcome()
                    self._send(
                        401, outcome, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
                    )
                    return
                fault = server.faults.pop(0) if server.faults else ""
                if fault == "down":
                    server.answers.append((503, "transient"))
                    self._send(503, FhirServerError(503, "transient", "down").outcome())
                    return
                try:
                    bundle = _parse(self.headers.get("Content-Type", ""), body)
                    answer = server.store.transaction(bundle)
                except FhirServerError as exc:
                    server.answers.append((exc.status, exc.code))
                    self._send(exc.status, exc.outcome())
                    return
                server.answers.append((200, ""))
                if fault == "answer-lost":
                    self.close_connection = True
                    return
                self._send(200, answer)

        return Handler

    def smart_configuration(self) -> dict[str, Any]:
        """``.well-known/smart-configuration`` (SMART App Launch 2.x, "Conformance")."""
        return {
            "token_endpoint": self.token_url,
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES384", "RS384"],
            "scopes_supported": ["system/*.cs"],
            "capabilities": ["client-confidential-asymmetric"],
        }
