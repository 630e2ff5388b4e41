"""The shared vector file, checked on CPython (protocols/) and on MicroPython (firmware/)."""

from __future__ import annotations

import json
from typing import Any

import cbor2
import pytest
from sensorlink_rig import FIRMWARE, VECTORS, run_micropython

from protocols import sensorlink as sl
from protocols.sensorlink.codec import decode_payload, encode_payload
from protocols.sensorlink.framing import crc32_of, encode_frame

DOC: dict[str, Any] = json.loads(VECTORS.read_text())


def from_meaning(m: dict[str, Any]) -> object:
    t = m["type"]
    if t == "HELLO" and "board_id" in m:
        sensors = tuple(sl.SensorRef(k, i) for k, i in m["sensors"])
        fields = {k: v for k, v in m.items() if k not in ("type", "sensors")}
        return sl.Hello(sensors=sensors, **fields)
    if t == "HELLO":
        return sl.HubHello(m["version"])
    if t == "READINGS":
        rs = tuple(sl.ReadingRow(**r) for r in m["readings"])
        return sl.Readings(m["boot_id"], m["first_seq"], m["base_seq"], rs)
    if t == "CONFIG":
        return sl.Config(
            tuple(tuple(p) for p in m["intervals_ms"]), tuple(tuple(p) for p in m["thresholds"])
        )
    simple = {
        "ACK": sl.Ack,
        "TIME": sl.Time,
        "PING": sl.Ping,
        "PONG": sl.Pong,
        "REBOOT": sl.Reboot,
        "ERROR": sl.Error,
    }
    if t in simple:
        return simple[t](**{k: v for k, v in m.items() if k != "type"})
    return sl.UnknownMessage(t)


def test_vector_file_is_shipped_in_the_package() -> None:
    assert VECTORS.is_relative_to(FIRMWARE.parent / "protocols")
    assert DOC["version"] == 1
    assert DOC["max_frame_bytes"] == 512


@pytest.mark.parametrize("v", DOC["crc"]["vectors"], ids=lambda v: v["data_hex"][:12] or "empty")
def test_crc_vectors(v: dict[str, str]) -> None:
    assert f"{crc32_of(bytes.fromhex(v['data_hex'])):08x}" == v["crc"]


@pytest.mark.parametrize("v", DOC["cobs"], ids=lambda v: v["decoded_hex"][:12])
def test_cobs_vectors(v: dict[str, str]) -> None:
    dec, enc = bytes.fromhex(v["decoded_hex"]), bytes.fromhex(v["encoded_hex"])
    assert sl.cobs.encode(dec) == enc
    assert sl.cobs.decode(enc) == dec


def from_json(v: Any) -> Any:
    if isinstance(v, dict):
        if "bytes" in v:
            return bytes.fromhex(v["bytes"])
        return {from_json(k): from_json(x) for k, x in v["map"]}
    if isinstance(v, list):
        return [from_json(x) for x in v]
    return v


@pytest.mark.parametrize("v", DOC["cbor"], ids=lambda v: v["hex"][:16])
def test_cbor_vectors_are_rfc8949_appendix_a(v: dict[str, Any]) -> None:
    assert cbor2.dumps(from_json(v["value"]), canonical=True).hex() == v["hex"]
    assert cbor2.loads(bytes.fromhex(v["hex"])) == from_json(v["value"])


@pytest.mark.parametrize("v", DOC["messages"], ids=lambda v: v["name"])
def test_message_vectors(v: dict[str, Any]) -> None:
    msg = from_meaning(v["meaning"])
    payload = bytes.fromhex(v["payload_hex"])
    assert decode_payload(payload) == msg
    if not v.get("decode_only"):
        assert not isinstance(msg, sl.UnknownMessage)
        assert encode_payload(msg) == payload  # type: ignore[arg-type]
        assert encode_frame(payload).hex() == v["frame_hex"]
    receiver = sl.Role.HUB if v["direction"] == "board-to-hub" else sl.Role.BOARD
    conn = sl.SensorLinkConnection(receiver)
    wire = bytes.fromhex(v["frame_hex"])
    assert conn.receive_data(wire) == [msg]
    # byte at a time gives the same events
    conn2 = sl.SensorLinkConnection(receiver)
    assert [e for b in wire for e in conn2.receive_data(bytes([b]))] == [msg]
    assert conn.counters.unknown_messages == (1 if isinstance(msg, sl.UnknownMessage) else 0)


@pytest.mark.parametrize("v", DOC["bad_streams"], ids=lambda v: v["name"])
def test_bad_stream_vectors(v: dict[str, Any]) -> None:
    conn = sl.SensorLinkConnection(sl.Role.BOARD)
    events = conn.receive_data(bytes.fromhex(v["stream_hex"]))
    bad = [e for e in events if isinstance(e, sl.BadFrame)]
    assert [b.reason for b in bad] == [sl.BadFrameReason(v["reason"])]
    assert conn.counters.bad_frames == v["bad_frames"]
    assert events[-1] == sl.Ping(v["then"]["nonce"])


@pytest.mark.micropython
def test_same_vectors_pass_on_micropython() -> None:
    output = run_micropython(FIRMWARE / "tests" / "check_vectors.py", str(VECTORS))
    assert output.strip().startswith("PASS")
    assert int(output.split()[-1]) > 100  # every section ran
