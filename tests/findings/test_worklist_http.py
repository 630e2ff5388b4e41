"""The worklist over real HTTP (uvicorn on loopback): who may see it (a proxy header only from
a trusted address; a client certificate's CN over HTTPS), the CSRF check on acknowledging,
the two languages, the plots and the security headers."""

from __future__ import annotations

import asyncio
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest
from findings_helpers import PKEY, at, engine, ingest, reading

from region.worklist import i18n
from region.worklist.app import create_app
from region.worklist.auth import AuthConfig, networks
from region.worklist.serve import ServerTls, running
from rig.broker import RigPki

EMAIL = "nurse@example.org"


def _get(url: str, headers: Mapping[str, str] | None = None, context=None):
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _post(url: str, data: dict[str, str], headers: Mapping[str, str]):
    opener = urllib.request.build_opener(_NoRedirect)
    body = urllib.parse.urlencode(data).encode()
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with opener.open(request, timeout=10) as answer:
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def _day(tmp_path: Path):
    eng = engine(tmp_path / "s.db", enrolled_ms=at(2, 0))
    high = frozenset({"threshold-above"})
    for hour in range(12):
        flags = high if hour in {2, 11} else frozenset()
        ingest(
            eng, at(2, hour), reading(150021, at(2, hour) - 60_000, str(120 + hour), flags=flags)
        )
    eng.clock_ms = lambda: at(2, 12)
    eng.evaluate()
    return eng


async def test_a_proxy_header_counts_only_from_a_trusted_address(tmp_path: Path):
    eng = _day(tmp_path)
    trusted = create_app(eng, AuthConfig("proxy", networks(["127.0.0.1"])), evaluate_every_s=None)
    async with running(trusted, "127.0.0.1", 0) as url:
        status, body, headers = await asyncio.to_thread(_get, url + "/")
        assert status == 401
        assert "Inte inloggad" in body
        status, body, headers = await asyncio.to_thread(
            _get, url + "/", {"X-Forwarded-Email": EMAIL}
        )
        assert status == 200
        assert f'<strong id="user">{EMAIL}</strong>' in body
        assert "script-src 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert 'data-patient="pat-0001"' in body
        assert "Larmvärde" in body
        assert "Missad mätning" not in body
        status, body, _ = await asyncio.to_thread(
            _get, url + "/?lang=en", {"X-Auth-Request-Email": EMAIL}
        )
        assert "Alert reading" in body
    elsewhere = create_app(
        eng, AuthConfig("proxy", networks(["10.0.0.0/8"])), evaluate_every_s=None
    )
    async with running(elsewhere, "127.0.0.1", 0) as url:
        status, _, _ = await asyncio.to_thread(_get, url + "/", {"X-Forwarded-Email": EMAIL})
        assert status == 401
    eng.close()


async def test_acknowledging_needs_the_users_csrf_token_and_is_recorded(tmp_path: Path):
    eng = _day(tmp_path)
    app = create_app(eng, AuthConfig("proxy", networks(["127.0.0.1"])), evaluate_every_s=None)
    who = {"X-Forwarded-Email": EMAIL}
    async with running(app, "127.0.0.1", 0) as url:
        status, body, _ = await asyncio.to_thread(_get, url + "/patient/pat-0001", who)
        assert status == 200
        assert body.count("<svg") >= 2
        assert 'role="img"' in body
        finding_id = int(re.search(r'id="ack-(\d+)"', body).group(1))
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', body).group(1)
        action = f"{url}/findings/{finding_id}/acknowledge"
        status, _ = await asyncio.to_thread(
            _post, action, {"csrf": "0" * 64, "next": "/patient/pat-0001"}, who
        )
        assert status == 403
        other = {"X-Forwarded-Email": "someone@example.org"}
        status, _ = await asyncio.to_thread(_post, action, {"csrf": token, "next": "/"}, other)
        assert status == 403
        assert eng.findings.finding(finding_id).ack_by is None
        status, headers = await asyncio.to_thread(
            _post, action, {"csrf": token, "next": "/patient/pat-0001"}, who
        )
        assert (status, headers["location"]) == (303, "/patient/pat-0001")
        acked = eng.findings.finding(finding_id)
        assert (acked.ack_by, acked.patient) == (EMAIL, PKEY)
        status, body, _ = await asyncio.to_thread(_get, url + "/patient/pat-0001?lang=en", who)
        assert f"Acknowledged by {EMAIL}" in body
        status, _, _ = await asyncio.to_thread(_get, url + "/patient/nobody", who)
        assert status == 404
    eng.close()


async def test_a_client_certificate_is_the_user_over_https(tmp_path: Path):
    eng = _day(tmp_path)
    pki = RigPki.create(tmp_path / "pki")
    server = pki.broker  # a server certificate for 127.0.0.1 from the same CA
    user = pki.client("nurse-0042")
    tls = ServerTls(server.cert_file, server.key_file, pki.ca_file)
    app = create_app(eng, AuthConfig("client-cert"), evaluate_every_s=None)
    async with running(app, "127.0.0.1", 0, tls) as url:
        assert url.startswith("https://")
        with_cert = ssl.create_default_context(cafile=str(pki.ca_file))
        with_cert.load_cert_chain(str(user.cert_file), str(user.key_file))
        status, body, _ = await asyncio.to_thread(
            _get, url + "/", {"X-Forwarded-Email": "forged@example.org"}, with_cert
        )
        assert status == 200
        assert '<strong id="user">nurse-0042</strong>' in body
        without = ssl.create_default_context(cafile=str(pki.ca_file))
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            await asyncio.to_thread(_get, url + "/", None, without)
    eng.close()


def test_every_word_exists_in_both_languages():
    assert set(i18n.STRINGS["sv"]) == set(i18n.STRINGS["en"])
    assert i18n.choose(None, None, "en-GB,en;q=0.8") == "en"
    assert i18n.choose("sv", "en", "en") == "sv"
    assert i18n.choose(None, None, None) == "sv"
