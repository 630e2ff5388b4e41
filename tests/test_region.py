"""The region tooling against a real Mosquitto: CA, CRL, TLS policy, broker config, hub keys."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

import pytest
from hub_uplink import connects_as
from typer.testing import CliRunner

from common.pki import build_crl, build_csr, certificate_serial, new_private_key_pem
from drivers.mqtt import MqttError, MqttLink, TlsFiles
from region.ca import RegionCa, hub_keys
from rig.broker import MosquittoBroker, RigPki
from technician.cli import app

runner = CliRunner()


def _cli(*args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_ca_init_sign_revoke_and_hub_keys(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    assert _cli("region", "ca", "init", "--dir", str(ca_dir))[0] == 0
    code, out = _cli("region", "ca", "init", "--dir", str(ca_dir))
    assert code == 1
    assert "--force" in str(out["hint"])
    certs = {}
    for hub in ("hub-0001", "hub-0002"):
        csr = tmp_path / f"{hub}.csr"
        csr.write_bytes(build_csr(new_private_key_pem(), hub))
        certs[hub] = tmp_path / f"{hub}.crt"
        assert (
            _cli("region", "ca", "sign", str(csr), "--dir", str(ca_dir), "--out", str(certs[hub]))[
                0
            ]
            == 0
        )
    bad = tmp_path / "bad.csr"
    bad.write_bytes(build_csr(new_private_key_pem(), "Not A Hub!"))
    code, out = _cli(
        "region", "ca", "sign", str(bad), "--dir", str(ca_dir), "--out", str(tmp_path / "x.crt")
    )
    assert code == 1
    assert "not a hub id" in str(out["error"])
    # Names whose client ids the broker's identity plugin would give to another client.
    for taken in ("hub-0001-cmd", "hub-0001-renew", "region-hub"):
        bad.write_bytes(build_csr(new_private_key_pem(), taken))
        code, out = _cli(
            "region", "ca", "sign", str(bad), "--dir", str(ca_dir), "--out", str(tmp_path / "x")
        )
        assert code == 1
        assert "would own another client's MQTT client ids" in str(out["error"]), taken
    assert set(hub_keys(RegionCa(ca_dir))) == {"hub-0001", "hub-0002"}
    code, out = _cli("region", "ca", "revoke", str(certs["hub-0002"]), "--dir", str(ca_dir))
    assert code == 0
    assert int(str(out["serial"]), 16) == certificate_serial(certs["hub-0002"].read_bytes())
    assert set(hub_keys(RegionCa(ca_dir))) == {"hub-0001"}


def test_broker_config_names_tls13_client_certs_crl_and_acl(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    RegionCa.init(ca_dir, "test CA")
    code, out = _cli(
        "region",
        "broker-config",
        "--ca-dir",
        str(ca_dir),
        "--cert",
        "/b.crt",
        "--key",
        "/b.key",
        "--out-dir",
        str(tmp_path / "broker"),
    )
    assert code == 0
    conf = Path(str(out["config"])).read_text()
    for line in (
        "require_certificate true",
        f"plugin {Path(str(out['plugin'])).resolve()}",
        "plugin_opt_suffixes -cmd -renew",
        "plugin_opt_services region-receiver region-operator",
        "tls_version tlsv1.3",
        f"crlfile {ca_dir / 'crl.pem'}",
        "allow_anonymous false",
    ):
        assert line in conf.splitlines()
    # The plugin replaces it: the CN alone as the username leaves client ids free.
    assert "use_identity_as_username true" not in conf
    acl = Path(str(out["acl"])).read_text()
    assert "pattern write narhub/v1/%u/up/#" in acl


def _link(broker: MosquittoBroker, pki: RigPki, name: str) -> MqttLink:
    return connects_as(pki, pki.client(name), name, broker, timeout_s=5)()


async def test_revoked_hub_certificate_is_refused_by_the_broker(
    broker: MosquittoBroker, rig_pki: RigPki, tmp_path: Path
) -> None:
    revoked = rig_pki.client("hub-revoked")
    crl = tmp_path / "crl.pem"
    crl.write_bytes(build_crl(rig_pki.ca, [certificate_serial(revoked.cert_file.read_bytes())]))
    broker.crl_file = crl
    broker.restart()
    tls = TlsFiles(rig_pki.ca_file, revoked.cert_file, revoked.key_file)
    with pytest.raises(MqttError):
        async with MqttLink(
            broker.host, broker.port, client_id="hub-revoked", tls=tls, timeout_s=5
        ) as link:
            await link.publish("narhub/v1/hub-revoked/up/clinical", b"x")
    async with _link(broker, rig_pki, "hub-good") as link:
        assert await link.publish("narhub/v1/hub-good/up/clinical", b"x") < 0x80


#: MQTT 3.1.1 CONNECT, clean session, keepalive 60 s, client id "x" (MQTT 3.1.1 section 3.1).
MQTT_CONNECT = bytes([0x10, 13, 0, 4, *b"MQTT", 4, 0x02, 0, 60, 0, 1, *b"x"])


def _handshake(broker: MosquittoBroker, context: ssl.SSLContext) -> bytes:
    with (
        socket.create_connection((broker.host, broker.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(MQTT_CONNECT)  # a valid CONNECT: only TLS may stop it getting a CONNACK
        return tls.recv(16)


def test_tls12_client_is_refused_where_13_is_required(
    broker: MosquittoBroker, rig_pki: RigPki
) -> None:
    identity = rig_pki.client("hub-old")
    context = ssl.create_default_context(cafile=str(rig_pki.ca_file))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(identity.cert_file), str(identity.key_file))
    with pytest.raises(ssl.SSLError):
        _handshake(broker, context)


def test_client_without_certificate_is_refused(broker: MosquittoBroker, rig_pki: RigPki) -> None:
    context = ssl.create_default_context(cafile=str(rig_pki.ca_file))
    try:
        data = _handshake(broker, context)
    except (ssl.SSLError, ConnectionResetError):
        return  # refused in the handshake or at the first record
    assert not data.startswith(b"\x20")  # never a CONNACK: closed without an MQTT word
