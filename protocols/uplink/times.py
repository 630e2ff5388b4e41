"""Times of an uplink body: deltas, or lag residuals for periodic streams (BLE notifications
arrive late, never early; docs/protocols/uplink.md, "Times").
"""

from __future__ import annotations

from itertools import accumulate

from protocols.uplink.fields import (
    _PERIOD_CODE,
    _TIME_SAMPLE,
    F_TIME_FIRST,
    F_TIME_MODE,
    F_TIME_PERIOD,
    F_TIME_PERIOD_MS,
    F_TIME_SEQ,
    MAX_ABS_TIME_MS,
    MAX_TIME_LAG,
    PERIODS,
    TIME_WINDOW,
    TIMES_DELTA,
    _fail,
    _Reader,
    _Writer,
)
from protocols.uplink.rans import (
    MIN_CODED,
)

# -- times -----------------------------------------------------------------------------------


def _lag_residuals(times: list[int], lag: int, period: int, window: int) -> list[int]:
    """Residuals of ``times[lag:]`` against their prediction (see :func:`encode_times`)."""
    if window == 1:
        return [b - a - period for a, b in zip(times, times[lag:], strict=False)]
    residuals = [0] * (len(times) - lag)
    for phase in range(lag):
        # One phase's times, shifted by the period: the earliest of the previous ``window``.
        shifted = [t - period * j for j, t in enumerate(times[phase::lag])]
        if len(shifted) < 2:
            continue
        head = list(accumulate(shifted[: min(window, len(shifted) - 1)], min))
        tail = list(map(min, *(shifted[i + 1 : len(shifted) - window + i] for i in range(window))))
        earliest = head + tail
        residuals[phase::lag] = list(map(int.__sub__, shifted[1:], earliest))
    return residuals


def encode_times(times: list[int], base_ms: int, out: _Writer) -> None:
    """Fields ``mode, first - base`` (and ``P`` with a lag), then the column of deltas
    (``mode`` 0) or, for a lag ``L`` > 0, residuals ``r``.

    Mode ``L`` in 1..8: ``t(k) = t(k-1) + P // L + r(k)`` for ``k < L`` and
    ``t(k) = t(k-L) + P + r(k)`` after: lag 1 is a regular sampling period (as Gorilla's
    delta of delta, without accumulating the jitter twice); a larger lag catches the pattern
    a periodic BLE notification makes on the connection-event grid (1000 ms samples on a
    30 ms grid repeat every 3 samples). Mode ``8 + L`` predicts from the earliest of the last
    :data:`TIME_WINDOW` periods instead, ``t(k) = min(t(k-mL) + mP, m = 1..8) + r(k)``: a
    notification is received at a connection event plus a host delay that is never negative,
    so the earliest arrival is the best estimate of the event grid, and the residual is one
    delay instead of the difference of two. ``P`` is the median lag-L difference; the mode
    with the smallest residuals on the first :data:`_TIME_SAMPLE` times is kept.
    """
    first = times[0] - base_ms
    deltas = list(map(int.__sub__, times[1:], times[:-1]))
    sample = times[:_TIME_SAMPLE]
    longest = min(MAX_TIME_LAG, len(sample) // 2)
    # Every mode is scored on the same times of the sample: those from index ``longest`` on.
    mode, period, best_cost = TIMES_DELTA, 0, sum(map(abs, deltas[longest - 1 : _TIME_SAMPLE]))
    for lag in range(1, longest + 1):
        seasonal = list(map(int.__sub__, sample[lag:], sample[:-lag]))
        guess = sorted(seasonal)[len(seasonal) // 2]
        cost = sum(map(abs, map(guess.__rsub__, seasonal[longest - lag :])))
        if cost < best_cost:
            mode, period, best_cost = lag, guess, cost
    sequence = deltas
    if mode:
        lag = mode
        window = 1
        if len(times) >= MIN_CODED:  # a window needs periods to look back on
            windowed = _lag_residuals(sample, lag, period, TIME_WINDOW)
            if sum(map(abs, windowed[longest - lag :])) < best_cost:
                window = TIME_WINDOW
                mode += MAX_TIME_LAG
        # The first L-1 deltas are each about a sampling interval, P/L.
        step = period // lag
        sequence = [d - step for d in deltas[: lag - 1]]
        sequence += _lag_residuals(times, lag, period, window)
    out.field(F_TIME_MODE, mode)
    out.field(F_TIME_FIRST, first)
    if mode:
        # Periods are near whole seconds: seconds and the rest in ms code cheaper than ms.
        seconds = (period + 500) // 1000
        code = _PERIOD_CODE.get(seconds)
        if code is None:
            code = seconds + len(PERIODS) if seconds >= 0 else seconds
        out.field(F_TIME_PERIOD, code)
        out.field(F_TIME_PERIOD_MS, period - 1000 * seconds)
    out.seq(F_TIME_SEQ, sequence)


def decode_times(source: _Reader, count: int, base_ms: int, where: str) -> list[int]:
    """The ``count`` times of one stream."""
    where = f"{where} times"
    mode = source.field(F_TIME_MODE, where)
    if not 0 <= mode <= 2 * MAX_TIME_LAG:
        raise _fail(where, f"mode {mode!r} is not in 0..{2 * MAX_TIME_LAG}")
    lag = mode - MAX_TIME_LAG if mode > MAX_TIME_LAG else mode
    window = TIME_WINDOW if mode > MAX_TIME_LAG else 1
    first = source.field(F_TIME_FIRST, where)
    if lag and 2 * lag > count:
        raise _fail(where, f"lag {lag} is too long for {count} times")
    period = 0
    if lag:
        code = source.field(F_TIME_PERIOD, where)
        if code < 0:
            seconds = code
        elif code < len(PERIODS):
            seconds = PERIODS[code]
        else:
            seconds = code - len(PERIODS)
        period = 1000 * seconds + source.field(F_TIME_PERIOD_MS, where)
    sequence = source.seq(F_TIME_SEQ, count - 1, where)
    start = first + base_ms
    if abs(start) > MAX_ABS_TIME_MS or abs(period) > MAX_ABS_TIME_MS:
        raise _fail(where, "a time is beyond signed 64-bit milliseconds")
    if not lag:
        times = list(accumulate(sequence, initial=start))
    else:
        step = period // lag
        shifted = list(accumulate((d + step for d in sequence[: lag - 1]), initial=start))
        if window == 1:
            for residual in sequence[lag - 1 :]:
                shifted.append(shifted[-lag] + residual)
        else:
            span = lag * window
            for k in range(lag, count):
                shifted.append(sequence[k - 1] + min(shifted[max(k - span, k % lag) : k : lag]))
        times = [v + period * (k // lag) for k, v in enumerate(shifted)]
    if max(times) > MAX_ABS_TIME_MS or min(times) < -MAX_ABS_TIME_MS:
        raise _fail(where, "a time is beyond signed 64-bit milliseconds")
    return times
