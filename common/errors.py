"""The refusal every program reports the same way: what went wrong and what to do about it."""

from __future__ import annotations


class HintedError(Exception):
    """A refusal: ``reason`` says what went wrong, ``hint`` what to do; the message is
    ``"{reason}. {hint}"``. Mixed in before the matching builtin
    (``class SendError(HintedError, RuntimeError)``), so the error stays that builtin."""

    def __init__(self, reason: str, hint: str) -> None:
        self.reason = reason
        self.hint = hint
        super().__init__(f"{reason}. {hint}")
