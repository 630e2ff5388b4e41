"""The batching policy on its own (gateway/outbox/batching.py): no SQLite, no clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from gateway.config import BatchingConfig
from gateway.outbox.batching import (
    HELD_RECHECK_S,
    BatchingPolicy,
    WaitingChunk,
    after_commit,
    after_seal,
    batch_priority,
    choose,
    deadline,
    due_after,
    earliest,
)
from protocols.uplink import Priority

POLICY = BatchingPolicy()
ALERT, CLINICAL, ENVIRONMENTAL, TELEMETRY = list(Priority)


def _store_order(chunks: list[WaitingChunk]) -> list[WaitingChunk]:
    return sorted(chunks, key=lambda c: (c.priority, c.chunk_id))


waiting_chunks = st.lists(
    st.builds(
        WaitingChunk,
        st.integers(1, 10_000),
        st.sampled_from(Priority),
        st.integers(1, 4096),
    ),
    unique_by=lambda c: c.chunk_id,
    max_size=40,
).map(_store_order)


def test_each_priority_waits_as_long_as_the_policy_says() -> None:
    policy = BatchingPolicy(alert_s=1, clinical_s=2, continuous_s=3, environmental_s=4)
    assert policy.delay_s(ALERT, continuous=True) == 1
    assert policy.delay_s(CLINICAL, continuous=False) == 2
    assert policy.delay_s(CLINICAL, continuous=True) == 3
    assert policy.delay_s(ENVIRONMENTAL, continuous=False) == 4
    assert policy.delay_s(TELEMETRY, continuous=False) == 300


def test_the_policy_of_a_configuration_takes_each_of_its_batching_keys() -> None:
    # A value of its own per field: [batching] must have a key for each (unknown keys are
    # errors there), and each value must reach its own field.
    values = {f.name: n for n, f in enumerate(dataclasses.fields(BatchingPolicy), start=1)}
    policy = BatchingPolicy.from_config(BatchingConfig.model_validate(values))
    assert dataclasses.asdict(policy) == values


def test_readings_are_due_by_their_shortest_delay_counted_from_their_arrival() -> None:
    kinds = [(ENVIRONMENTAL, False), (CLINICAL, True), (CLINICAL, False)]
    assert deadline(kinds, POLICY, now_s=1000) == 1010  # the spot reading: 10 s
    assert deadline(kinds, POLICY, now_s=1000, waited_s=4) == 1006  # it waited for its commit
    assert deadline(kinds, POLICY, now_s=1000, waited_s=60) == 1000  # overdue: now, not before
    assert deadline([(ALERT, False)], POLICY, now_s=5) == 5
    assert deadline([], POLICY, now_s=5) is None  # nothing stored: no deadline


def test_a_commit_adds_its_readings_deadline_a_held_look_or_its_tombstones() -> None:
    policy = BatchingPolicy(environmental_s=100, telemetry_s=50)
    stored = [(ENVIRONMENTAL, False)]
    assert after_commit(stored, policy, now_s=1000, waited_s=30) == 1070
    assert after_commit(stored, policy, now_s=1000, held=True) == 1000 + HELD_RECHECK_S
    assert after_commit(stored, policy, now_s=1000, held=True, waited_s=60) == 1000
    assert after_commit(stored, policy, now_s=1000, evicted=True) == 1050  # tombstones: 50 s
    assert after_commit([], policy, now_s=1000, held=True) is None  # all duplicates
    assert after_commit([], policy, now_s=1000, evicted=True) == 1050
    assert after_commit([], policy, now_s=1000) is None


def test_the_earliest_deadline_wins_and_none_means_none() -> None:
    assert earliest(None, None) is None
    assert earliest(None, 3.0) == 3.0
    assert earliest(2.0, None) == 2.0
    assert earliest(2.0, 3.0) == 2.0
    assert due_after(HELD_RECHECK_S, now_s=100, waited_s=2) == 108


def test_after_a_seal_what_still_waits_stays_due_and_held_readings_are_looked_at_again() -> None:
    assert after_seal(50.0, still_waiting=True, held=True, now_s=100) == 50.0
    assert after_seal(50.0, still_waiting=False, held=False, now_s=100) is None
    assert after_seal(50.0, still_waiting=False, held=True, now_s=100) == 100 + HELD_RECHECK_S


def test_a_seal_takes_everything_most_urgent_first_up_to_the_batch_size() -> None:
    waiting = [
        WaitingChunk(7, ALERT, 10),
        WaitingChunk(2, CLINICAL, 30),
        WaitingChunk(5, CLINICAL, 30),
        WaitingChunk(1, TELEMETRY, 5),
    ]
    assert choose(waiting, max_readings=1000) == tuple(waiting)
    assert choose(waiting, max_readings=70) == tuple(waiting[:3])
    assert choose(waiting, max_readings=69) == tuple(waiting[:2])
    assert choose(waiting, max_readings=1) == (waiting[0],)  # at least one chunk
    assert choose([], max_readings=10) == ()


def test_the_newest_alert_leaves_alone_only_from_a_backlog_of_alerts() -> None:
    one = [WaitingChunk(3, ALERT, 1), WaitingChunk(1, CLINICAL, 1)]
    assert choose(one, max_readings=10, newest_alert_alone=True) is None
    backlog = [WaitingChunk(3, ALERT, 1), WaitingChunk(9, ALERT, 2), WaitingChunk(1, CLINICAL, 1)]
    assert choose(backlog, max_readings=10, newest_alert_alone=True) == (backlog[1],)


def test_a_batch_carries_its_most_urgent_priority_and_tombstones_travel_as_telemetry() -> None:
    chunks = [WaitingChunk(1, ENVIRONMENTAL, 1), WaitingChunk(2, CLINICAL, 1)]
    assert batch_priority(chunks, tombstones=True) is CLINICAL
    assert batch_priority([], tombstones=True) is TELEMETRY
    assert batch_priority([], tombstones=False) is None


@given(waiting_chunks, st.integers(1, 20_000))
def test_choose_takes_the_longest_prefix_that_fits(
    waiting: list[WaitingChunk], max_readings: int
) -> None:
    chosen = choose(iter(waiting), max_readings=max_readings)
    assert chosen is not None
    assert list(chosen) == waiting[: len(chosen)]  # store order kept, nothing skipped
    total = sum(c.readings for c in chosen)
    if waiting:
        assert chosen  # something always leaves
    if len(chosen) > 1:
        assert total <= max_readings
    if len(chosen) < len(waiting) and chosen:
        assert total + waiting[len(chosen)].readings > max_readings  # the next did not fit


@given(waiting_chunks, st.integers(1, 20_000))
def test_choose_reads_no_further_than_it_takes(
    waiting: list[WaitingChunk], max_readings: int
) -> None:
    read = []

    def tracked() -> Iterator[WaitingChunk]:
        for chunk in waiting:
            read.append(chunk)
            yield chunk

    chosen = choose(tracked(), max_readings=max_readings)
    assert chosen is not None
    assert len(read) <= len(chosen) + 1  # a backlog's cursor is not read to its end


@given(waiting_chunks)
def test_the_newest_alert_alone_is_the_last_alert_in_store_order(
    waiting: list[WaitingChunk],
) -> None:
    alerts = [c for c in waiting if c.priority is ALERT]
    chosen = choose(waiting, max_readings=1, newest_alert_alone=True)
    assert chosen == ((alerts[-1],) if len(alerts) >= 2 else None)
