"""The codec benchmark runs quickly and returns JSON-serialisable figures."""

from __future__ import annotations

import json

from rig.bench import codecs


def test_run_returns_json_serialisable_rates() -> None:
    result = codecs.run(duration_s=0.05)
    text = json.dumps(result)
    assert "blood_pressure_measurement_all_fields" in text
    characteristics = result["characteristics"]
    assert isinstance(characteristics, dict)
    assert len(characteristics) == len(codecs.PAYLOADS)
    assert all(entry["decodes_per_s"] > 0 for entry in characteristics.values())
    mix = result["mix"]
    assert isinstance(mix, dict)
    assert mix["decodes_per_s"] > 0
    assert set(codecs.DAY_WEIGHTS) <= {label for label, _, _ in codecs.PAYLOADS}
    assert result["target_decodes_per_s"] == 200_000


def test_bench_payloads_decode_to_their_characteristics() -> None:
    from protocols import gatt

    for _label, characteristic, payload in codecs.PAYLOADS:
        assert gatt.encode(gatt.decode(characteristic, payload)) == payload
