"""Record docs/install-visit.md: a technician's install visit on the virtual rig, for real.

Runs every command of the visit as a subprocess (the installed ``narhub`` console script, no
TTY, so no colour and no live views) against ``narhub rig`` (docs/tools/install_visit.toml), a
Mosquitto broker with TLS 1.3 and client certificates, and the region's reference receiver,
and writes each command with its real output and exit code into the Markdown file.

    .venv/bin/python docs/tools/record_install_visit.py            # rewrites docs/install-visit.md
    .venv/bin/python docs/tools/record_install_visit.py --out F    # elsewhere

It takes about two minutes (pairing waits for the devices' test readings). Everything on the
rig is synthetic: the addresses, the pseudonym and the readings are made up, nothing is
redacted. tests/test_install_visit_doc.py checks that the commands in the doc still exist
with those options; it does not re-run the visit.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.pki import issue_identity
from region.ca import RegionCa
from region.receiver import RECEIVER_NAME
from rig.broker import MosquittoBroker, RigPki
from rig.processes import poll, read_json, stop_process

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "docs" / "tools" / "install_visit.toml"
WORKDIR = Path("/tmp/narhub-visit")  # noqa: S108 - fixed: the paths appear in the doc
NARHUB = str(Path(sys.executable).parent / "narhub")
THERMOMETER = "C0:FF:EE:00:09:01"
CUFF = "C0:FF:EE:00:09:02"
PATIENT = "P-0042"
HUB_ID = "hub-0001"
BOARD_ID = "sim-visit-01"


class Recorder:
    """Runs commands in the visit's directory and keeps them with their output."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = {
            **os.environ,
            "NARHUB_CONFIG": str(workdir / "etc" / "narhub.toml"),
            "COLUMNS": "100",
            "NO_COLOR": "1",
        }
        self.env.pop("FORCE_COLOR", None)
        self.parts: list[str] = []

    def text(self, markdown: str) -> None:
        self.parts.append(markdown.strip("\n") + "\n")

    def run(self, *args: str, expect: int = 0, timeout_s: float = 120) -> str:
        """Run ``narhub ARGS`` (shown as typed), record it, check the exit code."""
        done = subprocess.run(  # noqa: S603 - our own console script, argv from this file
            [NARHUB, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        output = done.stdout + done.stderr
        shown = "$ narhub " + shlex.join(args)
        status = "" if done.returncode == 0 else f"\n(exit code {done.returncode})"
        self.parts.append(f"```console\n{shown}\n{output.rstrip()}{status}\n```\n")
        if done.returncode != expect:
            raise SystemExit(f"{shown}: exit {done.returncode}, expected {expect}\n{output}")
        return done.stdout


#: docs/consent.md at a visit with two recipients (text, not recorded: see the call).
CONSENT_SECTION = """
## Consent: which recipient may receive what

Not part of the recording above (which has one recipient): at a home where the region and the
municipality both care for the patient, the hub configuration lists both under
`[[recipients]]`, and the technician records what the patient agreed to (docs/consent.md).
Without a consent file everything goes to the home recipient as before; once one exists,
nothing of a category leaves for a recipient without consent for it. Output of these commands
on a configuration with both recipients (abridged):

```console
$ narhub consent grant vital-signs glucose alerts -r region --by technician:anna --json
{"ok": true, "record": {...}, "may_receive": ["alerts", "glucose", "vital-signs"]}
$ narhub consent grant activity vital-signs -r municipality --by technician:anna --json
{"ok": true, "record": {...}, "may_receive": ["activity", "vital-signs"]}
$ narhub consent show --json
{"ok": true, "records": [...], "recipients": [
  {"name": "region", "broker": "broker.region.example:8883",
   "may_receive": ["alerts", "glucose", "vital-signs"]},
  {"name": "municipality", "broker": "broker.kommun.example:8883",
   "may_receive": ["activity", "vital-signs"]}]}
```

`narhub doctor` then shows, per recipient, what it may receive (a `recipient` line each) and
whether its broker answers: `broker` for the home recipient, `recipient-broker` for each other
one, each a TLS handshake with that recipient's pinned CA and client certificate and a publish
on the hub's own status topic in that recipient's tree. A recipient that cannot be reached is
named, with the hint to check the network, its address and the certificate, for example
`municipality broker.kommun.example:8883: ...` (tests/test_cli_visit.py runs this against a
real broker and a closed port). The hub forwards to each recipient over its own connection, and
one that is down holds nobody else up (docs/pipeline.md, "Recipients").
"""


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float) -> Any:
    """Poll another process's files until ``probe`` answers (bounded)."""
    value = poll(probe, timeout_s=timeout_s, poll_s=0.2)
    if value is None:
        raise SystemExit(f"timed out waiting for {what}")
    return value


INTRO = """
# An install visit, recorded on the virtual rig

A technician installs the hub at the patient's home: gives it its identity and certificate,
pairs the patient's devices, checks the sensor board, and leaves only when `narhub doctor`,
`narhub uplink test` and `narhub status` say it works. This is that visit on the virtual rig
(docs/rig.md): the commands as typed and their **real output**, recorded by
`docs/tools/record_install_visit.py` (run it again to regenerate this file). Output is what a
script or a pipe sees: no TTY, so no colour, no spinner and no live view; on a terminal,
`ble scan` shows a spinner and `status` refreshes until Ctrl-C.

Everything here is synthetic: device addresses, the patient pseudonym `P-0042` and the
readings come from the rig's scenario (`docs/tools/install_visit.toml`); nothing is redacted.
Commands exit 0 unless the block says otherwise (exit codes: README, "The CLI").
"""


def record(out: Path, workdir: Path) -> None:  # noqa: PLR0915 - one visit, in order
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    rec = Recorder(workdir)
    rec.text(INTRO)
    rig = broker = receiver = hub = None
    try:
        rec.text("""
## At the region, before the visit

The region runs a CA for its hubs (a pilot CA here; `narhub region ca`), the MQTT broker with
TLS 1.3 and client certificates, and the receiver that turns batches into FHIR. The recording
script starts the broker and the receiver (`narhub region ingest`) itself.
""")
        rec.run("region", "ca", "init", "--dir", "region-ca")
        ca = RegionCa(workdir / "region-ca")._load()
        pki_dir = workdir / "region-pki"
        pki = RigPki(
            ca,
            workdir / "region-ca" / "ca.crt",
            issue_identity(ca, pki_dir, "broker", server_names=("127.0.0.1", "localhost")),
            pki_dir,
        )
        broker = MosquittoBroker(pki, workdir / "broker")
        broker.start()
        ident = issue_identity(ca, pki_dir, RECEIVER_NAME)
        receiver_log = (workdir / "receiver.log").open("wb")
        receiver = subprocess.Popen(  # noqa: S603 - our own console script
            [
                NARHUB, "region", "ingest", "--ca-dir", str(workdir / "region-ca"),
                "--host", broker.host, "--port", str(broker.port),
                "--cert", str(ident.cert_file), "--key", str(ident.key_file),
                "--out", str(workdir / "fhir.ndjson"), "--state", str(workdir / "seen.sqlite3"),
            ],
            cwd=workdir, stdout=receiver_log, stderr=subprocess.STDOUT,
        )  # fmt: skip

        rec.text("""
## The home

On the rig the home is `narhub rig`: a thermometer and a blood-pressure cuff that the
patient uses every few seconds, and one sensor board. Its `rig.json` names the emulated
Bluetooth adapter (`hci`) that the hub's configuration points at (`--sim-transport`); on a
real hub that is `--ble-backend bluez` and the Pi's own adapter.

```console
$ narhub rig --scenario docs/tools/install_visit.toml --dir home &
```
""")
        rig_log = (workdir / "rig.log").open("wb")
        rig = subprocess.Popen(  # noqa: S603 - our own console script
            [NARHUB, "rig", "--scenario", str(SCENARIO), "--dir", str(workdir / "home")],
            cwd=workdir, stdout=rig_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        facts = wait_for(
            "rig.json", lambda: (read_json(workdir / "home" / "rig.json") or {}).get("hci"), 30
        )
        hci = str(facts)
        board_port = f"serial:{workdir}/home/boards/{BOARD_ID}/ttyBOARD"

        rec.text(f"""
## 1. Identity: configuration, key, certificate

`NARHUB_CONFIG` points at this visit's configuration (a hub uses `/etc/narhub/narhub.toml`):

```console
$ export NARHUB_CONFIG={workdir}/etc/narhub.toml
```
""")
        rec.run(
            "init", "--hub-id", HUB_ID, "--broker", f"mqtts://{broker.host}:{broker.port}",
            "--ca-file", "region-ca/ca.crt", "--patient", PATIENT,
            "--data-dir", str(workdir / "data"), "--ble-backend", "sim", "--sim-transport", hci,
        )  # fmt: skip
        rec.text("The key is generated on the hub (mode 0600) and never printed:")
        rec.run("keys", "create")
        rec.run("keys", "csr", "--out", "hub.csr")
        rec.text("The region signs the request (here on the same machine):")
        rec.run("region", "ca", "sign", "hub.csr", "--dir", "region-ca", "--out", "hub.crt")
        rec.text("The hub checks the certificate before it installs it:")
        rec.run("keys", "install-cert", "hub.crt")

        rec.text("""
## 2. The patient's devices

The patient takes a measurement so that the device wakes and advertises; the scan lists what
is in range and which health services each offers.
""")
        rec.run("ble", "scan", "--duration", "6")
        rec.text(
            "Pairing bonds, reads Device Information and the battery, checks the device clock "
            "and takes a test reading (the test reading's values are shown to the technician "
            "only, here on the console):"
        )
        rec.run("ble", "pair", CUFF, "--kind", "blood_pressure", "--patient", PATIENT)
        rec.run("ble", "pair", THERMOMETER, "--kind", "thermometer", "--json")
        rec.run("devices", "list")

        rec.text("""
## 3. The sensor board

`sensors list` finds boards by their USB IDs; the rig's board is a pty, not a USB device, so
the list is empty and the board is asked by its port. `sensors info` asks the firmware itself
(sensor link HELLO, CONFIG, PING) and acknowledges nothing, so the board keeps its readings for
the hub.
""")
        rec.run("sensors", "list")
        rec.run("sensors", "info", board_port)
        rec.run("sensors", "info", board_port, "--json")
        rec.text(
            "`sensors add` asks the board the same way and adds it to the configuration "
            "(a USB board by its serial number, `serial:usb:...`):"
        )
        rec.run("sensors", "add", board_port)
        rec.text("A port with nothing behind it is a typed error with advice (exit 1):")
        rec.run("sensors", "info", "/dev/ttyACM7", "--json", expect=1)

        rec.text("""
## 4. Checks before leaving

`doctor` runs every check, one line each with what to do. On this recording machine the
kernel clock is not NTP-synchronised, so the clock check fails and `doctor` exits 1: exactly
what a technician must see (readings are held until the clock is trusted). The devices have
not been seen by a running hub yet, so their lines fail too, until section 5.
""")
        rec.run("doctor", expect=1)
        rec.run("uplink", "test")

        # Not run: this visit has one recipient, and a consent file would gate section 5.
        rec.text(CONSENT_SECTION)

        rec.text("""
## 5. The hub running

The technician restarts the service (`systemctl restart narhub`; here `narhub run` in the
background) and watches the devices' readings arrive and leave.

```console
$ narhub run &
```
""")
        hub_log = (workdir / "hub.log").open("wb")
        hub = subprocess.Popen(  # noqa: S603 - our own console script
            [NARHUB, "run"], cwd=workdir, env=rec.env, stdout=hub_log, stderr=subprocess.STDOUT
        )
        activity = workdir / "data" / "status.json"

        def delivered() -> bool:
            data = read_json(activity) or {}
            sources = data.get("sources", {})
            both = all(sources.get(a, {}).get("count_today") for a in (CUFF, THERMOMETER))
            return both and bool(data.get("uplink", {}).get("last_puback_ms"))

        wait_for("readings from both devices and a PUBACK", delivered, 90)
        rec.run("status", "--json")
        rec.run("status")
        rec.text(
            "`queue stats` reads the store itself, which the running hub holds for itself "
            "(no WAL index file on the SD card, docs/pipeline.md): it says so (exit 1); "
            "`status` above has the queue."
        )
        rec.run("queue", "stats", expect=1)
        rec.text("And `doctor` once more, now that the hub has seen the devices:")
        rec.run("doctor", expect=1)
        rec.text("""
The visit is done when `doctor` passes (here all but the clock of the recording machine),
`uplink test` is acknowledged, and `status` shows each device seen with readings today and a
recent PUBACK. The same commands with `--json` go into a script or a support ticket.
""")
    finally:
        for process in (hub, rig, receiver):
            if process is not None:
                stop_process(process, timeout_s=30)
        if broker is not None:
            broker.stop()
    out.write_text("\n".join(rec.parts))
    print(f"wrote {out}")  # noqa: T201 - a tool's one line of output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "install-visit.md")
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    args = parser.parse_args()
    record(args.out, args.workdir)


if __name__ == "__main__":
    main()
