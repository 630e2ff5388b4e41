"""A technician's visit through the CLI, against a real TLS broker: init, keys, doctor, uplink."""

from __future__ import annotations

import json
import socket
import stat
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import technician.doctor
from common.pki import CertificateAuthority, build_csr, new_private_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from rig.broker import MosquittoBroker, RigPki
from technician.cli import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, [*args, "--json"])
    try:
        payload = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON (exit {result.exit_code}): {result.output}") from None
    return result.exit_code, payload


def _init(rig_pki: RigPki, hub_id: str, config: Path, *more: str) -> list[str]:
    """`narhub init` of ``hub_id`` trusting the rig's CA, writing ``config`` (``more``: its
    other options)."""
    return [
        "init",
        "--hub-id",
        hub_id,
        "--ca-file",
        str(rig_pki.ca_file),
        "--config",
        str(config),
        *more,
    ]


@pytest.fixture
def synced_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """This sandbox has no NTP; the doctor's clock probe is a named seam."""
    monkeypatch.setattr(technician.doctor, "kernel_clock_synchronised", lambda: True)


def _enrol(tmp_path: Path, broker: MosquittoBroker, rig_pki: RigPki, hub_id: str) -> Path:
    config = tmp_path / "etc" / "narhub.toml"
    code, out = _run(
        *_init(rig_pki, hub_id, config),
        *("--broker", f"mqtts://{broker.host}:{broker.port}", "--patient", "P-0042"),
        *("--data-dir", str(tmp_path / "data"), "--ble-backend", "sim"),
    )
    assert (code, out["ok"]) == (0, True)
    code, out = _run("keys", "create", "--config", str(config))
    assert code == 0
    key = Path(str(out["key_file"]))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    csr = tmp_path / "hub.csr"
    assert _run("keys", "csr", "--config", str(config), "--out", str(csr))[0] == 0
    signed = tmp_path / "signed.crt"
    signed.write_bytes(rig_pki.ca.sign_csr(csr.read_bytes()))
    code, out = _run("keys", "install-cert", str(signed), "--config", str(config))
    assert code == 0, out
    assert out["subject"] == hub_id
    assert int(str(out["days_left"])) > 700
    return config


@pytest.mark.usefixtures("synced_clock")
def test_full_visit_then_doctor_passes_and_uplink_test_is_acknowledged(
    tmp_path: Path, broker: MosquittoBroker, rig_pki: RigPki
) -> None:
    config = _enrol(tmp_path, broker, rig_pki, "hub-visit-1")
    code, out = _run("doctor", "--config", str(config))
    checks = {c["name"]: c for c in out["checks"]}  # type: ignore[attr-defined]
    assert code == 0, [c for c in checks.values() if not c["ok"]]
    assert checks["broker"]["ok"]
    assert "own-topic publish accepted" in checks["broker"]["detail"]
    assert set(checks) >= {"config", "key", "certificate", "clock", "broker", "disk", "store"}

    code, out = _run("uplink", "test", "--config", str(config))
    assert (code, out["ok"]) == (0, True)
    # 0x10 "No matching subscribers" is a success code: no receiver runs in this test.
    assert int(str(out["reason_code"])) in {0x00, 0x10}

    broker.stop()
    code, out = _run("doctor", "--config", str(config))
    assert code == 1
    broker_check = next(c for c in out["checks"] if c["name"] == "broker")  # type: ignore[attr-defined]
    assert not broker_check["ok"]
    assert "network" in broker_check["hint"]
    code, out = _run("uplink", "test", "--config", str(config), "--timeout", "3")
    assert code == 1
    assert out["hint"] == "run `narhub doctor`"


@pytest.mark.usefixtures("synced_clock")
def test_doctor_reaches_every_recipient_and_names_the_one_it_cannot(
    tmp_path: Path, broker: MosquittoBroker, rig_pki: RigPki
) -> None:
    """Issue 21's visit: the doctor checks each recipient's broker (TLS and an own-topic
    publish), not only the home one, and names the recipient it cannot reach."""
    config = _enrol(tmp_path, broker, rig_pki, "hub-visit-4")
    uplink = tomllib.loads(config.read_text())["uplink"]
    with socket.socket() as probe:  # a port nothing listens on: the municipality is down
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    files = {k: uplink[k] for k in ("ca_file", "cert_file", "key_file")}
    recipients = [
        {"name": "region", "host": uplink["host"], "port": uplink["port"], **files},
        {"name": "municipality", "host": "127.0.0.1", "port": closed, **files},
    ]
    text = config.read_text().replace("recipients = []\n", "")  # init writes none
    with config.open("w") as toml:
        toml.write(text)
        for r in recipients:
            toml.write("\n[[recipients]]\n")
            toml.writelines(f"{k} = {json.dumps(v)}\n" for k, v in r.items())
    code, out = _run("doctor", "--config", str(config))
    assert code != 3, out
    checks = out["checks"]
    assert isinstance(checks, list)
    assert code == 1
    by_name = {c["name"]: c for c in checks}
    assert by_name["broker"]["ok"], by_name["broker"]
    far = by_name["recipient-broker"]
    assert not far["ok"]
    assert far["detail"].startswith(f"municipality 127.0.0.1:{closed}: "), far
    assert "network" in far["hint"]


def test_init_refuses_to_overwrite_and_rejects_bad_urls(tmp_path: Path, rig_pki: RigPki) -> None:
    config = tmp_path / "narhub.toml"
    args = [*_init(rig_pki, "hub-a1", config), "--data-dir", str(tmp_path / "d")]
    assert _run(*args, "--broker", "mqtts://broker.example")[0] == 0
    code, out = _run(*args, "--broker", "mqtts://broker.example")
    assert code == 1
    assert "--force" in str(out["hint"])
    code, out = _run(*args, "--broker", "mqtt://plain.example", "--force")
    assert code == 1
    assert "mqtts://" in str(out["error"])


def test_wrong_certificates_are_refused_with_the_reason(
    tmp_path: Path, broker: MosquittoBroker, rig_pki: RigPki
) -> None:
    config = _enrol(tmp_path, broker, rig_pki, "hub-visit-2")
    other_key = new_private_key_pem()
    for_other_key = tmp_path / "other-key.crt"
    for_other_key.write_bytes(rig_pki.ca.sign_csr(build_csr(other_key, "hub-visit-2")))
    code, out = _run("keys", "install-cert", str(for_other_key), "--config", str(config))
    assert code == 1
    assert "another key" in str(out["error"])

    key = (tmp_path / "etc" / "hub.key").read_bytes()
    rogue = tmp_path / "rogue.crt"
    rogue.write_bytes(CertificateAuthority.create("rogue").sign_csr(build_csr(key, "hub-visit-2")))
    code, out = _run("keys", "install-cert", str(rogue), "--config", str(config))
    assert code == 1
    assert "not issued by the pinned region CA" in str(out["error"])


@pytest.mark.usefixtures("synced_clock")
def test_a_hub_publishing_as_someone_else_is_refused(
    tmp_path: Path, broker: MosquittoBroker, rig_pki: RigPki
) -> None:
    config = _enrol(tmp_path, broker, rig_pki, "hub-visit-3")
    # The technician typed another hub's id into the configuration.
    text = config.read_text().replace('hub_id = "hub-visit-3"', 'hub_id = "hub-visit-9"')
    config.write_text(text)
    code, out = _run("doctor", "--config", str(config))
    assert code == 1
    cert = next(c for c in out["checks"] if c["name"] == "certificate")  # type: ignore[attr-defined]
    assert "names 'hub-visit-3'" in cert["detail"]
    code, out = _run("uplink", "test", "--config", str(config))
    assert code == 1
    # The region's broker refuses the client id at CONNECT (it is not the certificate's
    # name: region/broker_plugin.py), before any publish: CONNACK 0x87 Not authorized.
    assert "not authorized" in str(out["error"]).lower(), out


def test_invalid_init_option_names_the_key_and_value(tmp_path: Path, rig_pki: RigPki) -> None:
    code, out = _run(
        *_init(rig_pki, "Hub A", tmp_path / "c.toml"),
        *("--broker", "mqtts://b.example", "--ble-backend", "radio"),
    )
    assert code == 3
    problems = out["problems"]
    assert any(p.startswith("hub_id:") and "'Hub A'" in p for p in problems)  # type: ignore[attr-defined]
    assert any(p.startswith("ble.backend:") and "'bluez' or 'sim'" in p for p in problems)  # type: ignore[attr-defined]


def test_missing_config_exits_3_with_a_hint(tmp_path: Path) -> None:
    code, out = _run("queue", "stats", "--config", str(tmp_path / "nope.toml"))
    assert code == 3
    assert out["hint"] == "run `narhub init`"


def test_queue_stats_and_export(tmp_path: Path, rig_pki: RigPki) -> None:
    from decimal import Decimal

    from common.pki import public_key_pem
    from gateway.outbox import Outbox
    from gateway.reading import Reading
    from protocols.uplink import Priority

    config = tmp_path / "narhub.toml"
    init = _init(rig_pki, "hub-q1", config, "--broker", "mqtts://b.example")
    assert _run(*init, "--data-dir", str(tmp_path / "d"))[0] == 0
    assert _run("keys", "create", "--config", str(config))[0] == 0
    key = (tmp_path / "hub.key").read_bytes()
    outbox = Outbox(tmp_path / "d" / "outbox.sqlite3")
    outbox.add(
        [Reading("s", "d", 150364, "Cel", Decimal("37.1"), None, 1, 1, priority=Priority.ALERT)]
    )
    batch = outbox.seal(PemBatchSigner("hub-q1", key), now_ms=2)
    assert batch is not None
    outbox.close()
    code, out = _run("queue", "stats", "--config", str(config))
    assert code == 0
    assert out["pending_batches_by_priority"] == {
        "alert": 1,
        "clinical": 0,
        "environmental": 0,
        "telemetry": 0,
    }
    export = tmp_path / "export.jsonl"
    code, out = _run("queue", "export", "--out", str(export), "--config", str(config))
    assert (code, out["batches"]) == (0, 1)
    import base64

    line = json.loads(export.read_text())
    verified = PemBatchVerifier({"hub-q1": public_key_pem(key)}).verify(
        base64.b64decode(line["cose_sign1_b64"])
    )
    assert str(verified.readings[0].value) == "37.1"


@pytest.mark.usefixtures("synced_clock")
def test_a_certificate_swapped_by_hand_fails_doctor_and_uplink_test(
    tmp_path: Path, broker: MosquittoBroker, rig_pki: RigPki
) -> None:
    config = _enrol(tmp_path, broker, rig_pki, "hub-visit-4")
    # Someone copied a certificate from another CA over the installed one (install-cert
    # would have refused it): the key still matches, the chain does not.
    key = (tmp_path / "etc" / "hub.key").read_bytes()
    rogue = CertificateAuthority.create("rogue").sign_csr(build_csr(key, "hub-visit-4"))
    (tmp_path / "etc" / "hub.crt").write_bytes(rogue)
    code, out = _run("doctor", "--config", str(config))
    assert code == 1
    checks = {c["name"]: c for c in out["checks"]}  # type: ignore[attr-defined]
    assert not checks["certificate"]["ok"]
    assert "not issued by the pinned region CA" in checks["certificate"]["detail"]
    assert checks["certificate"]["hint"]
    code, out = _run("uplink", "test", "--config", str(config), "--timeout", "1.5")
    assert code == 1  # the broker drops the connection: the client certificate is unknown
    assert out["ok"] is False
    assert out["hint"] == "run `narhub doctor`"
