"""What the hub says and writes to the patient, in Swedish and English (docs/feedback.md).

Status only: that a reading was saved, that it reached the care centre, what needs a look.
Never a value and never a judgement of one ("your blood pressure is high" is the care team's
to say: docs/clinical-boundary.md). Every sentence is built here and nowhere else, so that the
docs' list and the tests cover all of them.
"""

from __future__ import annotations

import enum
from typing import Literal

Language = Literal["sv", "en"]


class Attention(enum.Enum):
    """What may need a look, most actionable first (the display shows the first that holds)."""

    BATTERY_LOW = "battery_low"
    DEVICE_SILENT = "device_silent"
    NO_CONNECTION = "no_connection"
    CLOCK_UNTRUSTED = "clock_untrusted"


#: Per device kind: the measurement with its possessive ("Ditt blodtryck", gender agrees),
#: the device's name with its article, and a short label for the display.
_KINDS: dict[str, dict[Language, tuple[str, str, str]]] = {
    "blood_pressure": {
        "sv": ("Ditt blodtryck", "blodtrycksmätaren", "Blodtryck"),
        "en": ("Your blood pressure", "the blood pressure monitor", "Blood pressure"),
    },
    "scale": {
        "sv": ("Din vikt", "vågen", "Vikt"),
        "en": ("Your weight", "the scale", "Weight"),
    },
    "thermometer": {
        "sv": ("Din temperatur", "termometern", "Temperatur"),
        "en": ("Your temperature", "the thermometer", "Temperature"),
    },
    "pulse_oximeter": {
        "sv": ("Din syremättnad", "pulsoximetern", "Syremättnad"),
        "en": ("Your oxygen level", "the pulse oximeter", "Oxygen"),
    },
    "glucose": {
        "sv": ("Ditt blodsocker", "blodsockermätaren", "Blodsocker"),
        "en": ("Your blood sugar", "the glucose meter", "Blood sugar"),
    },
    "heart_rate": {
        "sv": ("Din puls", "pulsmätaren", "Puls"),
        "en": ("Your pulse", "the heart rate monitor", "Pulse"),
    },
}

KINDS = tuple(_KINDS)

_FIXED: dict[str, dict[Language, str]] = {
    "stored": {
        "sv": "Mätningen är sparad i hubben.",
        "en": "The reading is saved on the hub.",
    },
    "all_well": {"sv": "Allt fungerar.", "en": "Everything is working."},
    "no_connection": {
        "sv": "Hubben har ingen kontakt med vården just nu. Dina mätningar sparas och skickas "
        "senare.",
        "en": "The hub has no connection to the care team right now. Your readings are kept "
        "and sent later.",
    },
    "clock_untrusted": {
        "sv": "Hubben väntar på rätt tid. Dina mätningar sparas.",
        "en": "The hub is waiting for the right time. Your readings are kept.",
    },
    "no_readings": {"sv": "Inga mätningar ännu", "en": "No readings yet"},
    "sent": {"sv": "skickat", "en": "sent"},
    "waiting": {"sv": "väntar på nätet", "en": "waiting for network"},
    "yesterday": {"sv": "igår", "en": "yesterday"},
}


def _kind(kind: str, language: Language) -> tuple[str, str, str]:
    forms = _KINDS.get(kind)
    if forms is None:  # a kind added to the configuration before it got its words
        return (
            ("Din mätning", "mätaren", "Mätning")
            if language == "sv"
            else ("Your reading", "the device", "Reading")
        )
    return forms[language]


def fixed(key: str, language: Language) -> str:
    """One of the sentences and words that name no device (``stored``, ``all_well`` ...)."""
    return _FIXED[key][language]


def delivered(kind: str, language: Language) -> str:
    """'Ditt blodtryck har kommit fram till vårdcentralen.'"""
    measurement = _kind(kind, language)[0]
    if language == "sv":
        return f"{measurement} har kommit fram till vårdcentralen."
    return f"{measurement} reached the care centre."


def label(kind: str, language: Language) -> str:
    """The display's short name for a device's readings ('Blodtryck')."""
    return _kind(kind, language)[2]


def attention(item: Attention, kind: str | None, language: Language) -> str:
    """The sentence for what needs a look (``kind``: the device it concerns, if one)."""
    if item is Attention.NO_CONNECTION:
        return fixed("no_connection", language)
    if item is Attention.CLOCK_UNTRUSTED:
        return fixed("clock_untrusted", language)
    device = _kind(kind or "", language)[1]
    if item is Attention.BATTERY_LOW:
        if language == "sv":
            return f"Byt batteri i {device}."
        return f"Replace the battery in {device}."
    if language == "sv":
        return f"{device[0].upper()}{device[1:]} har inte hörts av på länge. Gör en mätning."
    return f"{device[0].upper()}{device[1:]} has not been heard from for a while. Take a reading."


def attention_short(item: Attention, kind: str | None, language: Language) -> str:
    """The display's shorter form of :func:`attention` (two lines of large type)."""
    if item is Attention.NO_CONNECTION:
        return (
            "Ingen kontakt med vården. Mätningarna sparas."
            if language == "sv"
            else "No connection. Readings are kept."
        )
    if item is Attention.CLOCK_UNTRUSTED:
        return (
            "Väntar på rätt tid. Mätningarna sparas."
            if language == "sv"
            else "Waiting for the right time. Readings are kept."
        )
    if item is Attention.BATTERY_LOW:
        return attention(item, kind, language)
    device = _kind(kind or "", language)[1]
    device = f"{device[0].upper()}{device[1:]}"
    if language == "sv":
        return f"{device} har inte hörts av. Gör en mätning."
    return f"{device} has not been heard from. Take a reading."


def every_screen_text(language: Language) -> list[tuple[str, str]]:
    """(name, text) for every attention line the display shows."""
    out = [(f"battery_low:{k}", attention_short(Attention.BATTERY_LOW, k, language)) for k in KINDS]
    out += [
        (f"device_silent:{k}", attention_short(Attention.DEVICE_SILENT, k, language)) for k in KINDS
    ]
    out.append(("no_connection", attention_short(Attention.NO_CONNECTION, None, language)))
    out.append(("clock_untrusted", attention_short(Attention.CLOCK_UNTRUSTED, None, language)))
    return out


def every_sentence(language: Language) -> list[tuple[str, str]]:
    """(name, sentence) for every spoken sentence, in the order ``narhub feedback test``
    says them and docs/feedback.md lists them."""
    out = [("stored", fixed("stored", language)), ("all_well", fixed("all_well", language))]
    out += [(f"delivered:{k}", delivered(k, language)) for k in KINDS]
    out += [(f"battery_low:{k}", attention(Attention.BATTERY_LOW, k, language)) for k in KINDS]
    out += [(f"device_silent:{k}", attention(Attention.DEVICE_SILENT, k, language)) for k in KINDS]
    out.append(("no_connection", attention(Attention.NO_CONNECTION, None, language)))
    out.append(("clock_untrusted", attention(Attention.CLOCK_UNTRUSTED, None, language)))
    return out
