"""Forward the receiver's Observations to a FHIR server as transaction Bundles.

``narhub region ingest --fhir-url URL``: besides the NDJSON file, each batch's new Observations
are POSTed to ``URL`` (the server's base) as a FHIR R4 ``transaction`` Bundle (FHIR R4
3.1.0.11 "Transactions"), with the Patients, Devices and coincident time stamps they
reference, whose entries are *conditional creates* on each resource's first identifier
(``ifNoneExist: identifier=system|value``, FHIR R4 3.1.0.8 "conditional create": the PHD IG's
identifier of an Observation, a Device's Bluetooth address or hub id, a Patient's pseudonym),
so a Bundle posted twice creates each resource once; references between entries go by
``fullUrl`` (a ``urn:uuid:``), which the server replaces by the id it created, or by the
existing resource's id when the conditional create matched one (FHIR R4 3.1.0.11.2
"Transaction Processing Rules"): every Observation's ``subject`` is the region's one Patient
of that pseudonym, which keeps its identifier beside the reference. The region's findings
(Task, DetectedIssue: :mod:`region.findings.fhir`) change over their lifecycle, so their
entries are *conditional updates* on the same identifier (``PUT Task?identifier=system|value``,
FHIR R4 3.1.0.4.3 "conditional update"): the first creates the resource, each later one
replaces it with the finding's state then (a closed finding's Task ``completed``), and a
Bundle posted twice leaves the same resource. A reference by the region's own logical id
(``Device/phd-..``) to a resource outside the Bundle that also carries an identifier is sent
as that identifier alone (FHIR R4 Reference.identifier, a logical reference): the server gave
the Device its own id when it was created.

Authentication (``--smart CLIENT.toml``): SMART Backend Services bearer tokens
(:mod:`region.smart_auth`), cached until they expire and renewed at once on a 401.

Durability: the Bundle's lines are queued in the receiver's state database in the same
transaction that records the batch (:mod:`region.state` with ``fhir_queue``), so a receiver that
dies, or a FHIR server that is down for a day, loses nothing: :class:`FhirPoster` posts the
queue in order, retries with capped, jittered exponential backoff on network errors, timeouts,
408, 429 and 5xx, and deletes a Bundle only when the server answered every entry with a 2xx. A
Bundle the server refuses (another 4xx) is kept, marked with the status, logged and counted
(never dropped): an operator fixes the cause and runs ``narhub region ingest`` again, which
retries refused Bundles at start.

HTTP is the standard library's (``urllib``) in a worker thread: one request at a time per
receiver, which keeps the order of the queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from common.backoff import Backoff
from protocols.fhir import dumps_exact
from region.smart_auth import SmartAuth, SmartAuthError
from region.state import FhirQueue

logger = logging.getLogger(__name__)

#: HTTP statuses worth trying again (the request may succeed later).
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: The FHIR JSON media type (FHIR R4 3.1.0.1.10).
FHIR_JSON = "application/fhir+json"
#: Namespace of the Bundle entries' ``fullUrl`` (a UUIDv5 of the resource's type and id).
_BUNDLE_NAMESPACE = uuid.UUID("8f0f2b5e-1d0b-5c43-9e0e-6e6172687562")
#: Resource types the region writes again as they change: conditional updates.
UPDATED_TYPES = frozenset({"Task", "DetectedIssue"})


class FhirPostError(RuntimeError):
    """A POST that did not succeed: ``status`` (0: no HTTP answer), ``retry`` whether to."""

    def __init__(self, status: int, reason: str, *, retry: bool) -> None:
        self.status = status
        self.reason = reason
        self.retry = retry
        super().__init__(f"FHIR server: {status or 'no answer'} {reason}")


def _rewrite_references(value: Any, full_urls: dict[str, str]) -> Any:
    """``value`` with every ``{"reference": "Type/id"}`` to a resource of the Bundle replaced
    by that entry's ``fullUrl`` (FHIR R4 3.1.0.11.2: the server resolves it to the id it
    assigns, or to the existing resource a conditional create matched)."""
    if isinstance(value, dict):
        out = {k: _rewrite_references(v, full_urls) for k, v in value.items()}
        target = out.get("reference")
        if isinstance(target, str) and target in full_urls:
            out["reference"] = full_urls[target]
        elif isinstance(target, str) and "identifier" in out and "/" in target:
            del out["reference"]  # the region's id, unknown to the server: by identifier
        return out
    if isinstance(value, list):
        return [_rewrite_references(v, full_urls) for v in value]
    return value


def _condition(resource: dict[str, Any]) -> str:
    """``ifNoneExist``: the resource's first identifier, as a token search (FHIR R4 3.1.0.8;
    system and value percent-encoded)."""
    identifier = resource["identifier"][0]
    system, value = (urllib.parse.quote(str(identifier[k]), safe=":/") for k in ("system", "value"))
    return f"identifier={system}|{value}"


def transaction_bundle(lines: list[str]) -> bytes:
    """A transaction Bundle of conditional creates for NDJSON resource lines (conditional
    updates for :data:`UPDATED_TYPES`): the Devices and coincident time stamps the
    Observations reference, then the Observations, references
    within the Bundle by ``fullUrl`` (exact decimals kept: each value is re-written from its
    text)."""
    resources: list[dict[str, Any]] = [json.loads(line, parse_float=Decimal) for line in lines]
    keys = [f"{r['resourceType']}/{r['id']}" for r in resources]
    full_urls = {key: f"urn:uuid:{uuid.uuid5(_BUNDLE_NAMESPACE, key)}" for key in keys}
    entries = []
    for resource in resources:
        kind = str(resource["resourceType"])
        full_url = full_urls[f"{kind}/{resource['id']}"]
        body = _rewrite_references({k: v for k, v in resource.items() if k != "id"}, full_urls)
        if kind in UPDATED_TYPES:
            request = {"method": "PUT", "url": f"{kind}?{_condition(resource)}"}
        else:
            request = {"method": "POST", "url": kind, "ifNoneExist": _condition(resource)}
        entries.append({"fullUrl": full_url, "resource": body, "request": request})
    return dumps_exact({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode()


def _check_response(body: bytes, expected: int) -> None:
    try:
        bundle = json.loads(body)
        statuses = [str(e["response"]["status"]) for e in bundle["entry"]]
    except (ValueError, KeyError, TypeError):
        raise FhirPostError(
            200, "the answer is not a transaction-response Bundle", retry=True
        ) from None
    if len(statuses) != expected or not all(s.startswith("2") for s in statuses):
        bad = next((s for s in statuses if not s.startswith("2")), f"{len(statuses)} entries")
        raise FhirPostError(200, f"an entry was not created: {bad}", retry=False)


def post_bundle(
    url: str,
    bundle: bytes,
    *,
    entries: int,
    timeout_s: float = 30.0,
    authorization: str | None = None,
) -> None:
    """POST one transaction Bundle to the server base ``url``; raises :class:`FhirPostError`.
    ``authorization``: the ``Authorization`` header (a SMART Backend Services bearer token)."""
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if authorization is not None:
        headers["Authorization"] = authorization
    request = urllib.request.Request(  # noqa: S310 - the operator's configured https/http URL
        url.rstrip("/"), data=bundle, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
            body = answer.read()
    except urllib.error.HTTPError as exc:
        exc.close()  # the error answer's connection (left open, it leaks a socket)
        raise FhirPostError(exc.code, str(exc.reason), retry=exc.code in RETRY_STATUSES) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FhirPostError(0, str(reason), retry=True) from None
    _check_response(body, entries)


@dataclass
class PosterStats:
    """What the poster did."""

    bundles: int = 0
    observations: int = 0
    retries: int = 0
    refused: int = 0
    #: 401 answers (each drops the cached token).
    unauthorized: int = 0


class FhirPoster:
    """Posts the receiver's queued Bundles to a FHIR server, in order, until cancelled."""

    def __init__(
        self,
        queue: FhirQueue,
        url: str,
        *,
        auth: SmartAuth | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        """``queue``: the state's FHIR queue (:func:`region.state_open.open_fhir_queue`);
        ``auth``: SMART Backend Services tokens (:mod:`region.smart_auth`), or none."""
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"FHIR server URL {url!r}: must start with https:// or http://")
        self._queue = queue
        self._auth = auth
        self._url = url
        self._timeout_s = timeout_s
        self.stats = PosterStats()
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()

    def retry_refused(self) -> int:
        """Put refused Bundles back in the queue (at start: the operator fixed the cause)."""
        return self._queue.retry_refused()

    def pending(self) -> int:
        """Bundles waiting (refused ones not counted)."""
        return self._queue.pending()

    async def run(self) -> None:
        """Post the queue; wait for :attr:`wake` (or 5 s) when it is empty (:attr:`idle` is
        set then, and cleared at the start of a run)."""
        self.idle.clear()
        backoff = Backoff(initial_s=1.0, cap_s=300.0)
        while True:
            item = await asyncio.to_thread(self._queue.claim)
            if item is None:
                self.idle.set()
                self.wake.clear()
                try:
                    async with asyncio.timeout(5.0):
                        await self.wake.wait()
                except TimeoutError:
                    pass
                continue
            self.idle.clear()
            row_id, lines = item
            try:
                await self._post(lines)
            except (FhirPostError, SmartAuthError) as exc:
                if not isinstance(exc, FhirPostError) or exc.retry:
                    self.stats.retries += 1
                    delay = backoff.next_delay_s()
                    logger.warning("FHIR server: %s; retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                self.stats.refused += 1
                logger.error("FHIR server refused a Bundle (%s); kept, not retried", exc)
                await asyncio.to_thread(self._queue.done, row_id, f"{exc.status} {exc.reason}")
                continue
            backoff.reset()
            await asyncio.to_thread(self._queue.done, row_id, None)
            self.stats.bundles += 1
            self.stats.observations += len(lines)

    async def _post(self, lines: list[str]) -> None:
        """POST one Bundle; a 401 gets one more try at once with a new token (the server
        may end a token before its ``expires_in``), then counts as a retryable failure."""
        bundle = transaction_bundle(lines)
        for attempt in (1, 2):
            authorization = None
            if self._auth is not None:
                authorization = await asyncio.to_thread(self._auth.authorization)
            try:
                await asyncio.to_thread(
                    post_bundle,
                    self._url,
                    bundle,
                    entries=len(lines),
                    timeout_s=self._timeout_s,
                    authorization=authorization,
                )
            except FhirPostError as exc:
                if exc.status != 401 or self._auth is None:
                    raise
                self._auth.invalidate()
                self.stats.unauthorized += 1
                if attempt == 2:
                    raise FhirPostError(401, exc.reason, retry=True) from None
                continue
            return
