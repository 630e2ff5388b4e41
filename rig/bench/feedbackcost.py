"""What the patient's feedback costs (``narhub bench footprint --feedback``).

Two figures. The footprint bench runs ``narhub run`` with and without a ``[feedback]``
section (:func:`feedback_config`: the light and button on gpiozero's mock pins, the display
drawn with Pillow into a PNG in the runtime directory, the voice through espeak-ng into a
null player) and reports the RSS and CPU it adds. Its replay's readings come from a sensor
board, which the feedback does not announce, so that run measures the component at rest
(imports, tasks, the probe every 2 s, the first frame). :func:`cycle_cost` measures the rest
in this process: the CPU time of one reading's cycle (stored: two blue pulses and a new
frame; acknowledged: the batch read back, two seconds of green, a new frame).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from common.pki import new_private_key_pem
from common.signing import PemBatchSigner
from gateway.config import DisplayConfig, FeedbackConfig, LightConfig, VoiceConfig
from gateway.feedback.component import Feedback
from gateway.feedback.events import BatchAcknowledged, ReadingStored
from protocols.uplink import BatchHeader, Priority, WireReading, encode_body


def _cuff(i: int) -> str:
    """A cuff per cycle: the spot-reading rule pulses once a minute per device."""
    return f"C0:FF:EE:00:{i // 256:02X}:{i % 256:02X}"


_HUB = "hub-feedback-bench"


OUTPUTS = frozenset({"light", "button", "display", "voice"})


def feedback_config(runtime_dir: Path, outputs: frozenset[str] = OUTPUTS) -> FeedbackConfig:
    """The ``outputs`` on (default all), none needing hardware (the code paths of a Pi)."""
    unknown = outputs - OUTPUTS
    if unknown:
        raise ValueError(f"unknown feedback outputs {sorted(unknown)}; known: {sorted(OUTPUTS)}")
    png = runtime_dir / "feedback-frame.png"
    return FeedbackConfig(
        quiet_from="00:00",
        quiet_until="00:00",
        button_pin=26 if "button" in outputs else None,
        light=LightConfig(pin_factory="mock") if "light" in outputs else None,
        display=DisplayConfig(driver="png", png_file=png) if "display" in outputs else None,
        voice=VoiceConfig(player=["sh", "-c", "cat >/dev/null"]) if "voice" in outputs else None,
    )


def _batch(signer: PemBatchSigner, device: str, t_ms: int, n: int) -> bytes:
    readings = [
        WireReading("bp", 0x4A04 + i % 3, "mm[Hg]", t_ms, None, "nan", frozenset(), device)
        for i in range(n)
    ]
    header = BatchHeader(_HUB, "b" * 16, 1, t_ms, Priority.CLINICAL, n)
    return signer.sign(encode_body(header, readings))


async def _cycles(cycles: int, readings_per_batch: int) -> dict[str, Any]:
    signer = PemBatchSigner(_HUB, new_private_key_pem())
    noon = dt.datetime.now().astimezone().replace(hour=12)
    with tempfile.TemporaryDirectory(prefix="nh-fb-") as tmp:
        config = feedback_config(Path(tmp)).model_copy(update={"voice": None})
        feedback = Feedback(
            config,
            hub_id=_HUB,
            devices={_cuff(i): "blood_pressure" for i in range(cycles)},
            local_now=lambda: noon,
        )
        async with feedback:
            while "light" not in feedback.opened or "display" not in feedback.opened:
                feedback.changed.clear()
                await feedback.changed.wait()
            cpu0, wall0 = time.process_time(), time.monotonic()
            for i in range(cycles):
                t_ms = 1_772_000_000_000 + i * 120_000
                played = feedback.stats.patterns_played
                message = _batch(signer, _cuff(i), t_ms, readings_per_batch)
                feedback.notify(ReadingStored(_cuff(i), t_ms))
                feedback.notify(BatchAcknowledged(message, 0))
                while feedback.stats.patterns_played < played + 2:
                    feedback.changed.clear()
                    await feedback.changed.wait()
            cpu = time.process_time() - cpu0
            wall = time.monotonic() - wall0
            frames = feedback.stats.frames_shown
    return {
        "cycles": cycles,
        "readings_per_batch": readings_per_batch,
        "cpu_ms_per_cycle": round(cpu / cycles * 1000, 2),
        "wall_s_per_cycle": round(wall / cycles, 2),
        "frames": frames,
        "process_max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def cycle_cost(cycles: int = 5, readings_per_batch: int = 4) -> dict[str, Any]:
    """CPU per reading's cycle (stored, then acknowledged), the patterns' time included."""
    return asyncio.run(_cycles(cycles, readings_per_batch))


def added_by_feedback(off: dict[str, Any], on: dict[str, Any]) -> dict[str, float]:
    """What the run with feedback used beyond the run without."""
    return {
        "rss_idle_mib": round(on["rss_mib"]["idle"] - off["rss_mib"]["idle"], 1),
        "cpu_startup_and_settle_seconds": round(
            on["cpu"]["startup_seconds"]
            + on["cpu"]["settle_seconds"]
            - off["cpu"]["startup_seconds"]
            - off["cpu"]["settle_seconds"],
            2,
        ),
        "rss_hwm_mib": round(on["rss_mib"]["hwm"] - off["rss_mib"]["hwm"], 1),
        "cpu_seconds_per_day_hour": round(
            on["cpu"]["seconds_per_day_hour"] - off["cpu"]["seconds_per_day_hour"], 2
        ),
        "cpu_idle_seconds_per_real_hour": round(
            on["cpu"]["idle_seconds_per_real_hour"] - off["cpu"]["idle_seconds_per_real_hour"], 1
        ),
    }
