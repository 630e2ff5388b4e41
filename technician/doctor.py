"""``narhub doctor``: every check a technician needs before leaving the home, with fixes.

Each check gives one line: what was checked, what was found and, when it fails, what to do.
The exit code is 0 only when every check passes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

from drivers.mqtt import REASON_FAILURE_THRESHOLD, MqttError, MqttLink, TlsFiles
from gateway.clock import kernel_clock_synchronised
from gateway.config import ConfigError, HubConfig, RecipientConfig, load_config
from gateway.consents import ConsentFileError, consent_path, read_ledger
from gateway.identity import ProvisionError, check_certificate
from gateway.outbox import Outbox, StoreBusyError
from protocols.consent import allowed_now
from technician.check import Check
from technician.feedbackcheck import feedback_checks
from technician.status_view import StatusError, collect_status

MIN_FREE_BYTES = 256 * 1024 * 1024
MIN_FREE_FRACTION = 0.05
CERT_WARN_DAYS = 30
CERT_FAIL_DAYS = 7
#: A paired device at or below this battery level fails the doctor.
LOW_BATTERY_PERCENT = 15

__all__ = ["Check", "run_checks"]


def bluetooth_adapter_names(sys_class: Path = Path("/sys/class/bluetooth")) -> list[str]:
    with contextlib.suppress(OSError):
        return sorted(p.name for p in sys_class.iterdir() if p.name.startswith("hci"))
    return []


async def _broker_check(config: HubConfig, recipient: RecipientConfig | None = None) -> Check:
    """The recipient's broker reached: TLS handshake with its pinned CA and this hub's client
    certificate, and a QoS 1 publish on the hub's own status topic in its tree accepted
    (MQTT 5.0 section 3.4.2.1: a PUBACK reason below 0x80). ``None``: the home recipient
    (``[uplink]``), check ``broker``; another: check ``recipient-broker``, named."""
    up = config.uplink if recipient is None else recipient
    name = "broker" if recipient is None else "recipient-broker"
    where = f"{up.host}:{up.port}" if recipient is None else f"{recipient.name} {up.host}:{up.port}"
    shared = (up.host, up.port) == (config.uplink.host, config.uplink.port)
    client_id = (
        f"{config.hub_id}-{recipient.name}" if recipient is not None and shared else config.hub_id
    )
    root = config.home().topics_root() if recipient is None else recipient.topics_root()
    link = MqttLink(
        up.host,
        up.port,
        client_id=client_id,
        tls=TlsFiles(up.ca_file, up.cert_file, up.key_file, up.tls_min_version),
        timeout_s=10,
    )
    started = time.monotonic()
    try:
        async with link:
            reason = await link.publish(f"{root}/{config.hub_id}/status", b'{"state":"doctor"}')
    except MqttError as exc:
        return Check(
            name,
            False,
            f"{where}: {exc}",
            "check the network, the broker address and the certificate",
        )
    except OSError as exc:
        return Check(name, False, f"{where}: {exc}", "check the TLS files")
    rtt_ms = (time.monotonic() - started) * 1000
    if reason >= REASON_FAILURE_THRESHOLD:
        return Check(
            name,
            False,
            f"{where}: own-topic publish refused (reason 0x{reason:02X})",
            "the recipient's ACL does not know this hub id: ask the recipient",
        )
    prefix = "" if recipient is None else f"{where}: "
    return Check(
        name, True, f"{prefix}TLS handshake and own-topic publish accepted ({rtt_ms:.0f} ms)"
    )


async def _broker_checks(config: HubConfig) -> list[Check]:
    """The home recipient's broker, then every other recipient's."""
    home = config.home_recipient()
    others = [r for r in config.all_recipients() if r.name != home]
    return [await _broker_check(config)] + [await _broker_check(config, r) for r in others]


async def run_checks(
    config_path: Path,
    *,
    now: dt.datetime,
    clock_synchronised: Callable[[], bool | None] | None = None,
    bluetooth_adapters: Callable[[], list[str]] | None = None,
) -> list[Check]:
    """Every check, in the order a technician fixes things.

    The clock and adapter probes are named seams (module functions, looked up at call time)
    so that tests can stand in for a synchronised clock or a missing adapter.
    """
    clock_synchronised = clock_synchronised or kernel_clock_synchronised
    bluetooth_adapters = bluetooth_adapters or bluetooth_adapter_names
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return [
            Check(
                "config", False, "; ".join(exc.problems), f"fix {config_path} or run `narhub init`"
            )
        ]
    checks = [Check("config", True, f"{config_path} is valid (hub {config.hub_id})")]

    key = config.uplink.key_file
    if not key.exists():
        checks.append(Check("key", False, f"no key at {key}", "run `narhub keys create`"))
    elif key.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        checks.append(Check("key", False, f"{key} is readable by others", f"chmod 600 {key}"))
    else:
        checks.append(Check("key", True, f"{key} present, mode 0600"))

    try:
        cert = check_certificate(config, config.uplink.cert_file.read_bytes(), now=now)
    except OSError:
        checks.append(
            Check(
                "certificate",
                False,
                f"no certificate at {config.uplink.cert_file}",
                "run `narhub keys csr`, get it signed, `narhub keys install-cert`",
            )
        )
    except ProvisionError as exc:
        checks.append(Check("certificate", False, exc.reason, exc.hint))
    else:
        ok = cert.days_left >= CERT_FAIL_DAYS
        hint = None if cert.days_left >= CERT_WARN_DAYS else "renew the certificate soon"
        checks.append(
            Check(
                "certificate",
                ok,
                f"matches the key, chains to the region CA, valid {cert.days_left} more days",
                hint,
            )
        )

    synced = clock_synchronised()
    if synced is None:
        checks.append(
            Check(
                "clock",
                False,
                "cannot ask the kernel whether the clock is synced",
                "check `timedatectl`",
            )
        )
    else:
        checks.append(
            Check(
                "clock",
                synced,
                "synchronised" if synced else "not synchronised (NTP has not answered)",
                None
                if synced
                else "check the network and `timedatectl`; readings are held "
                "until it syncs, then get their times back-filled",
            )
        )

    if checks[-2].ok and checks[1].ok:
        checks.extend(await _broker_checks(config))
    else:
        checks.append(
            Check(
                "broker",
                False,
                "not tried: key or certificate missing",
                "fix the checks above first",
            )
        )

    data_dir = config.data_dir
    try:
        usage = shutil.disk_usage(data_dir)
    except OSError:
        checks.append(
            Check("disk", False, f"data directory {data_dir} missing", "run `narhub init`")
        )
    else:
        free_ok = usage.free >= MIN_FREE_BYTES and usage.free >= usage.total * MIN_FREE_FRACTION
        checks.append(
            Check(
                "disk",
                free_ok,
                f"{usage.free // 2**20} MiB free of {usage.total // 2**20} MiB",
                None if free_ok else "free disk space",
            )
        )
        checks.append(_store_check(data_dir / "outbox.sqlite3", now))

    if config.ble.backend == "sim":
        checks.append(Check("bluetooth", True, "sim backend (virtual rig)"))
    else:
        adapters = bluetooth_adapters()
        checks.append(
            Check(
                "bluetooth",
                bool(adapters),
                ", ".join(adapters) if adapters else "no Bluetooth adapter",
                None if adapters else "check `rfkill list` and `bluetoothctl show`",
            )
        )
    checks.extend(device_checks(config, now) + feedback_checks(config))
    checks.extend(consent_checks(config, now))
    return checks


def consent_checks(config: HubConfig, now: dt.datetime) -> list[Check]:
    """One ``recipient`` check per recipient: its broker and what it may receive now
    (docs/consent.md). No consent file: everything goes to the home recipient, as before,
    and nothing to the others."""
    try:
        ledger = read_ledger(consent_path(config.data_dir))
    except ConsentFileError as exc:
        return [Check("consent", False, str(exc), "fix or restore the consent file")]
    now_ms = int(now.timestamp() * 1000)
    home = config.home_recipient()
    checks = []
    for recipient in config.all_recipients():
        where = f"{recipient.name} ({recipient.host}:{recipient.port})"
        if ledger.stamp is None:
            detail = (
                f"{where}: no consent recorded, everything goes to {home} as before"
                if recipient.name == home
                else f"{where}: no consent recorded, nothing goes to {recipient.name}"
            )
            checks.append(
                Check("recipient", True, detail, "record consent: `narhub consent grant ...`")
            )
            continue
        may = sorted(c.value for c in allowed_now(ledger.records, recipient.name, now_ms))
        detail = f"{where}: may receive {', '.join(may) if may else 'nothing'}"
        checks.append(Check("recipient", True, detail))
    return checks


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def device_checks(config: HubConfig, now: dt.datetime) -> list[Check]:
    """Each paired device: seen by the running hub (its activity file, gateway/activity.py) and
    its battery. A device never seen fails: take a measurement near the hub while it runs."""
    try:
        snapshot = collect_status(config, now_ms=int(now.timestamp() * 1000))
    except StatusError:
        return []  # the store check above reports a damaged outbox
    checks = []
    resets = snapshot.ble.get("adapter_resets", 0)
    failed = snapshot.ble.get("adapter_reset_failures", 0)
    timeouts = snapshot.ble.get("adapter_call_timeouts", 0)
    if resets or failed or timeouts:
        why = f"{timeouts} D-Bus call(s) to it timed out" if timeouts else "it stopped answering"
        checks.append(
            Check(
                "adapter",
                failed == 0,
                f"the hub power-cycled the Bluetooth adapter {resets} time(s) since it started "
                f"({why}){f', {failed} power cycle(s) failed' if failed else ''}",
                "if it recurs: check the adapter's power supply and `journalctl -u bluetooth`"
                if not failed
                else "restart bluetooth (`systemctl restart bluetooth`) or replug the adapter",
            )
        )
    for d in snapshot.devices:
        name = f"{d.kind} {d.address}"
        age = snapshot.age_s(d.last_seen_ms)
        if age is None:
            checks.append(
                Check(
                    "device",
                    False,
                    f"{name}: not seen by the hub yet",
                    "start narhub (`systemctl restart narhub`) and take a measurement near it",
                )
            )
            continue
        battery = d.battery_percent
        low = battery is not None and battery <= LOW_BATTERY_PERCENT
        checks.append(
            Check(
                "device",
                not low,
                f"{name}: last seen {_ago(age)}, battery "
                + ("unknown" if battery is None else f"{battery} %"),
                "replace or charge the device's batteries" if low else None,
            )
        )
    return checks


def _store_check(path: Path, now: dt.datetime) -> Check:
    if not path.exists():
        return Check("store", True, "empty (no readings yet)")
    try:
        outbox = Outbox(path, busy_timeout_s=1.0)
    except StoreBusyError:
        return Check("store", True, "held by the running hub (queue: `narhub status`)")
    except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
        return Check(
            "store",
            False,
            f"cannot open: {type(exc).__name__}",
            "the hub moves a damaged store aside at start: restart narhub",
        )
    try:
        integrity = outbox.quick_check()
        counts = outbox.counts()
        oldest = outbox.oldest_unsent_ms()
    finally:
        outbox.close()
    if integrity != "ok":
        return Check("store", False, f"integrity: {integrity}", "restart narhub")
    age = (
        ""
        if oldest is None
        else (f", oldest unsent {(now.timestamp() * 1000 - oldest) / 3_600_000:.1f} h old")
    )
    detail = (
        f"integrity ok, {counts['unbatched_readings']} readings and "
        f"{counts['pending_batches']} batches queued, {counts['rejected_batches']} rejected{age}"
    )
    held = counts.get("held_readings", 0)
    if held:
        detail += f", {held} held until the clock is trusted"
    ok = counts["rejected_batches"] == 0
    hint = None if ok else "the broker refused batches: run `narhub queue stats`"
    if held and hint is None:
        hint = "readings wait for NTP: see the clock line"
    return Check("store", ok, detail, hint)
