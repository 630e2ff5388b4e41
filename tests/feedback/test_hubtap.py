"""The hub's side: callbacks that never raise into the hub, and the probe over its parts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gateway.config import parse_config
from gateway.feedback.hubtap import FeedbackTap, hub_probe
from gateway.reading import Reading

CUFF = "C0:FF:EE:00:00:01"


def _hub(tmp_path: Path, feedback: dict[str, Any] | None) -> Any:
    data: dict[str, Any] = {
        "hub_id": "hub-fb-1",
        "data_dir": str(tmp_path),
        "ble": {"devices": [{"address": CUFF, "kind": "blood_pressure"}]},
        "uplink": {"host": "h", "ca_file": "a", "cert_file": "b", "key_file": "c"},
    }
    if feedback is not None:
        data["feedback"] = feedback
    return parse_config(data, path=tmp_path / "narhub.toml")


async def test_without_feedback_the_tap_does_nothing(tmp_path: Path) -> None:
    tap = FeedbackTap(_hub(tmp_path, None))
    async with tap.running() as feedback:
        assert feedback is None
        tap.readings_stored([Reading("s", CUFF, 1, "u", None, "nan", 5, 0)])
        tap.batch_answered(SimpleNamespace(message=b""), 0)
    assert tap.errors == 0


async def test_callbacks_feed_the_component_and_never_raise(tmp_path: Path) -> None:
    tap = FeedbackTap(_hub(tmp_path, {"quiet_from": "00:00", "quiet_until": "00:00"}))
    async with tap.running() as feedback:
        assert feedback is not None
        tap.readings_stored([Reading("s", CUFF.lower(), 1, "u", None, "nan", 5, 0)])
        tap.batch_answered(SimpleNamespace(message=b"m"), 0)
        assert feedback.stats.received == 2  # the reading of the paired cuff, the PUBACK
        tap.readings_stored([object()])  # type: ignore[list-item]  # a broken reading
        tap.batch_answered(object(), 0)  # type: ignore[arg-type]
    assert tap.errors == 2
    assert tap.feedback is None  # after the run, callbacks are no-ops again


def test_the_probe_reads_the_hub_and_tolerates_its_shape() -> None:
    hub = SimpleNamespace(
        central=SimpleNamespace(status={CUFF: SimpleNamespace(battery_percent=9)}),
        uplink=SimpleNamespace(connected=True),
        clock_source=SimpleNamespace(sample=lambda: SimpleNamespace(trusted=False)),
    )
    probe = hub_probe(hub)
    assert probe.batteries() == {CUFF: 9}
    assert probe.uplink_connected() is True
    assert probe.clock_trusted() is False
    empty = hub_probe(SimpleNamespace(central=None, uplink=None, clock_source=None))
    assert empty.batteries() == {}
    assert empty.uplink_connected() is None
    assert empty.clock_trusted() is None


async def test_the_probe_notifies_changes_only() -> None:
    import asyncio

    from gateway.feedback.events import BatteryLevel, ClockTrust, UplinkConnection
    from gateway.feedback.probe import HubProbe, watch

    polls = [
        ({CUFF: None}, None, True),
        ({CUFF: 40}, True, True),
        ({CUFF: 40}, True, True),
        ({CUFF: 9}, False, False),
    ]
    at = [0]
    seen: list[object] = []
    done = asyncio.Event()

    def trusted() -> bool | None:  # read last in a poll: the next poll reads the next state
        value = polls[at[0]][2]
        at[0] += 1
        if at[0] == len(polls):
            done.set()
            at[0] -= 1
        return value

    watched = HubProbe(
        batteries=lambda: polls[at[0]][0],
        uplink_connected=lambda: polls[at[0]][1],
        clock_trusted=trusted,
    )
    task = asyncio.create_task(watch(watched, seen.append, interval_s=0))
    await done.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert seen == [
        ClockTrust(True),
        BatteryLevel(CUFF, 40),
        UplinkConnection(True),
        BatteryLevel(CUFF, 9),
        UplinkConnection(False),
        ClockTrust(False),
    ]
