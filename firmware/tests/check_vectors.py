"""Check the firmware codec against the shared sensor-link vectors (run on the unix port).

    MICROPYPATH=.frozen:firmware micropython firmware/tests/check_vectors.py VECTORS.json

Prints one ``FAIL <what>`` line per failure and ``PASS <n>`` at the end; exits 1 on failure.
"""

import json
import sys
from binascii import hexlify, unhexlify

from sensorfw import cbor, frame, proto

_TYPES = {
    "HELLO": proto.HELLO,
    "READINGS": proto.READINGS,
    "ACK": proto.ACK,
    "TIME": proto.TIME,
    "CONFIG": proto.CONFIG,
    "PING": proto.PING,
    "PONG": proto.PONG,
    "REBOOT": proto.REBOOT,
    "ERROR": proto.ERROR,
}

failures: list[str] = []
checked = 0


def check(ok: bool, what: str) -> None:
    global checked
    checked += 1
    if not ok:
        failures.append(what)
        print("FAIL", what)


def h(b: bytes | bytearray) -> str:
    return hexlify(bytes(b)).decode()


def from_json(v: object) -> object:
    if isinstance(v, dict):
        if "bytes" in v:
            return unhexlify(v["bytes"])
        return {from_json(k): from_json(x) for k, x in v["map"]}
    if isinstance(v, list):
        return [from_json(x) for x in v]
    return v


def encode_board(m: dict) -> bytes:
    t = m["type"]
    if t == "HELLO":
        return proto.encode_hello(
            m["board_id"], m["boot_id"], m["firmware"], m["sensors"], m["capabilities"],
            m["max_frame"], m["selftest"],
        )
    if t == "READINGS":
        rows = []
        for r in m["readings"]:
            row = [r["kind"], r["index"], r["mono_ms"], r["value"]]
            if "wall_ms" in r:
                row.append(r["wall_ms"])
            rows.append(row)
        return proto.encode_readings(m["boot_id"], m["first_seq"], m["base_seq"], rows)
    if t == "CONFIG":
        return proto.encode_config(dict(m["intervals_ms"]), dict(m["thresholds"]))
    if t == "PONG":
        return proto.encode_pong(m["nonce"], m["pending"], m["dropped"], m["bad_frames"], m["unknown"])
    if t == "ERROR":
        return proto.encode_error(m["code"], m["about"])
    raise ValueError(t)


def expected_fields(m: dict) -> object:
    f = {k: v for k, v in m.items() if k != "type"}
    if m["type"] == "CONFIG":
        f = {"intervals_ms": dict(m["intervals_ms"]), "thresholds": dict(m["thresholds"])}
    return f


def main(path: str) -> None:
    with open(path) as fp:
        doc = json.load(fp)
    for v in doc["crc"]["vectors"]:
        check("%08x" % frame.crc32(unhexlify(v["data_hex"])) == v["crc"], "crc " + v["data_hex"])
    for v in doc["cobs"]:
        dec, enc = unhexlify(v["decoded_hex"]), unhexlify(v["encoded_hex"])
        check(bytes(frame.cobs_encode(dec)) == enc, "cobs encode " + v["decoded_hex"][:16])
        check(bytes(frame.cobs_decode(enc)) == dec, "cobs decode " + v["encoded_hex"][:16])
    for v in doc["cbor"]:
        value = from_json(v["value"])
        check(h(cbor.encode(value)) == v["hex"], "cbor encode " + v["hex"])
        check(cbor.decode(unhexlify(v["hex"])) == value, "cbor decode " + v["hex"])
    for v in doc["cbor_invalid"]:
        try:
            cbor.decode(unhexlify(v["hex"]))
            check(False, "cbor must reject " + v["hex"])
        except ValueError:
            check(True, "")
    for v in doc["messages"]:
        payload = unhexlify(v["payload_hex"])
        wire = unhexlify(v["frame_hex"])
        m = v["meaning"]
        if v["direction"] == "board-to-hub":
            check(h(encode_board(m)) == v["payload_hex"], "encode " + v["name"])
            check(h(frame.encode_frame(encode_board(m))) == v["frame_hex"], "frame " + v["name"])
            continue
        reader = frame.FrameReader()
        got = reader.feed(wire)
        check(got == [payload] and reader.bad_frames == 0, "deframe " + v["name"])
        t, fields = proto.decode(payload)
        if m["type"] in _TYPES:
            check(t == _TYPES[m["type"]] and fields == expected_fields(m), "decode " + v["name"])
        else:
            check(t == m["type"] and fields is None, "unknown type " + v["name"])
    for v in doc["bad_streams"]:
        reader = frame.FrameReader()
        good = []
        bad = 0
        for payload in reader.feed(unhexlify(v["stream_hex"])):
            try:
                good.append(proto.decode(payload))
            except ValueError:
                bad += 1
        bad += reader.bad_frames
        check(bad == v["bad_frames"], "bad-frame count " + v["name"])
        check(good == [(proto.PING, {"nonce": v["then"]["nonce"]})], "resync " + v["name"])
    print("PASS" if not failures else "FAILED", checked)
    if failures:
        sys.exit(1)


main(sys.argv[1])
