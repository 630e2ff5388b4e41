"""Reading the hub's own acknowledged batch back (gateway/feedback/batches.py), and the policy
under arbitrary event sequences: hypothesis properties."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from common.pki import new_private_key_pem
from common.signing import PemBatchSigner
from gateway.feedback.batches import UnreadableBatchError, newest_by_device
from gateway.feedback.events import (
    BatteryLevel,
    ClockTrust,
    DeviceSeen,
    ReadingStored,
    StatusRequested,
    UplinkConnection,
)
from gateway.feedback.policy import FeedbackPolicy, Settings
from protocols.uplink import BatchHeader, Priority, WireReading, encode_body

HUB = "hub-fb-1"
DEVICES = ["C0:FF:EE:00:00:01", "C0:FF:EE:00:00:02", "AA:BB:CC:DD:EE:FF"]
SIGNER = PemBatchSigner(HUB, new_private_key_pem())
ZONE = dt.timezone(dt.timedelta(hours=1))

readings = st.lists(
    st.tuples(st.sampled_from(DEVICES), st.integers(1_600_000_000_000, 1_900_000_000_000)),
    min_size=1,
    max_size=20,
)


@settings(max_examples=50)
@given(readings)
def test_the_newest_reading_of_each_paired_device(rows: list[tuple[str, int]]) -> None:
    wire = [
        WireReading("s", 0x4A04, "mm[Hg]", t, None, "nan", frozenset(), d.lower()) for d, t in rows
    ]
    body = encode_body(
        BatchHeader(HUB, "b" * 16, 1, rows[0][1], Priority.CLINICAL, len(wire)), wire
    )
    paired = set(DEVICES[:2])
    found = newest_by_device(SIGNER.sign(body), HUB, paired)
    want: dict[str, int] = {}
    for device, t in rows:
        if device in paired:
            want[device] = max(want.get(device, t), t)
    assert found == want


@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_unreadable_or_a_batch(data: bytes) -> None:
    found: object
    try:
        found = newest_by_device(data, HUB, set(DEVICES))
    except UnreadableBatchError as exc:
        found = exc.reason
    assert isinstance(found, dict) or (isinstance(found, str) and found)


events = st.one_of(
    st.builds(
        ReadingStored,
        st.sampled_from(DEVICES),
        st.integers(1_700_000_000_000, 1_800_000_000_000),
        st.booleans(),
    ),
    st.builds(BatteryLevel, st.sampled_from(DEVICES), st.integers(0, 100)),
    st.builds(UplinkConnection, st.booleans()),
    st.builds(ClockTrust, st.booleans()),
    st.builds(DeviceSeen, st.sampled_from(DEVICES)),
    st.just(StatusRequested()),
)


@settings(max_examples=100)
@given(
    st.lists(st.tuples(events, st.floats(0, 7200), st.booleans()), max_size=40),
    st.sampled_from(["sv", "en"]),
)
def test_no_event_sequence_says_a_number_or_lights_at_night(
    steps: list[tuple[object, float, bool]], language: str
) -> None:
    policy = FeedbackPolicy(
        Settings(devices=dict.fromkeys(DEVICES[:2], "blood_pressure"), language=language),  # type: ignore[arg-type]
        started_s=0.0,
    )
    now = 0.0
    for event, gap_s, delivered in steps:
        now += gap_s
        local = dt.datetime(2026, 3, 2, 12, tzinfo=ZONE) + dt.timedelta(seconds=now)
        effects = policy.handle(event, now, local)  # type: ignore[arg-type]
        if delivered and isinstance(event, ReadingStored):
            effects = policy.delivered({event.device.upper(): event.taken_ms}, now, local)
        for sentence in effects.sentences:
            assert not re.search(r"\d", sentence), sentence
        if policy.quiet(now, local):
            assert effects.patterns == ()
            assert policy.screen(now, local) is None
        screen = policy.screen(now, local)
        if screen is not None and screen.attention:
            assert not re.search(r"\d", screen.attention)
