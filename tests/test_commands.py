"""Region commands: signed, for this hub, unexpired, not replayed; everything else refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.command_keys import PemCommandSigner, PemCommandVerifier
from common.pki import new_private_key_pem, public_key_pem
from protocols.commands import (
    Command,
    CommandError,
    ExpiredCommandError,
    MalformedCommandError,
    ReplayedCommandError,
    UnsignedCommandError,
    WrongHubError,
    decode_command,
    encode_command,
)

KEY = new_private_key_pem()
ROGUE = new_private_key_pem()
VERIFIER = PemCommandVerifier("hub-1", {"cmd-2026": public_key_pem(KEY)})


def _command(**changes: object) -> Command:
    fields: dict[str, object] = {
        "hub_id": "hub-1",
        "seq": 7,
        "issued_ms": 1_000,
        "expires_ms": 10_000,
        "kind": "config",
        "body": {"batch_window_s": 2},
    }
    fields.update(changes)
    return Command(**fields)  # type: ignore[arg-type]


def test_a_valid_command_is_accepted() -> None:
    message = PemCommandSigner("cmd-2026", KEY).sign(_command())
    assert VERIFIER.verify(message, now_ms=5_000, last_seq=6) == _command()


@pytest.mark.parametrize(
    ("message", "now_ms", "last_seq", "error"),
    [
        (PemCommandSigner("cmd-2026", ROGUE).sign(_command()), 5_000, 6, UnsignedCommandError),
        (PemCommandSigner("cmd-other", KEY).sign(_command()), 5_000, 6, UnsignedCommandError),
        (PemCommandSigner("cmd-2026", KEY).sign(_command()), 10_000, 6, ExpiredCommandError),
        (PemCommandSigner("cmd-2026", KEY).sign(_command()), 5_000, 7, ReplayedCommandError),
        (PemCommandSigner("cmd-2026", KEY).sign(_command(hub_id="hub-2")), 5_000, 6, WrongHubError),
        (encode_command(_command()), 5_000, 6, UnsignedCommandError),  # not signed at all
    ],
    ids=["rogue-key", "unknown-kid", "expired", "replayed", "other-hub", "unsigned"],
)
def test_refusals(message: bytes, now_ms: int, last_seq: int, error: type[CommandError]) -> None:
    with pytest.raises(error):
        VERIFIER.verify(message, now_ms=now_ms, last_seq=last_seq)


def test_tampered_signed_command_is_refused() -> None:
    message = bytearray(PemCommandSigner("cmd-2026", KEY).sign(_command()))
    message[20] ^= 0x40
    with pytest.raises(CommandError):
        VERIFIER.verify(bytes(message), now_ms=5_000, last_seq=None)


@given(
    st.builds(
        Command,
        hub_id=st.text(max_size=20),
        seq=st.integers(0, 2**63),
        issued_ms=st.integers(0, 2**50),
        expires_ms=st.integers(0, 2**50),
        kind=st.sampled_from(["config", "renew-cert", "firmware"]),
        body=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=5),
    )
)
def test_document_round_trip(command: Command) -> None:
    assert decode_command(encode_command(command)) == command


@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_only_typed_errors(data: bytes) -> None:
    with pytest.raises(CommandError):
        VERIFIER.verify(data, now_ms=0, last_seq=None)
    try:
        command = decode_command(data)
    except MalformedCommandError:
        return
    assert isinstance(command, Command)  # or a well-typed document
