"""Every sentence spoken by espeak-ng (Swedish and English voices) into a WAV and measured
with sox: it lasts, it is not silence, and the volume setting changes its loudness."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.feedback.speech import EspeakVoice, amplitude, voice_available
from gateway.feedback.sentences import every_sentence
from tests.feedback.conftest import measure


@pytest.mark.parametrize("language", ["sv", "en"])
async def test_every_sentence_is_spoken(language: str, espeak: str, tmp_path: Path) -> None:
    assert await voice_available(language), f"espeak-ng has no {language} voice"
    voice = EspeakVoice(language, player=())
    sentences = every_sentence(language)  # type: ignore[arg-type]
    wavs = [tmp_path / f"{i}.wav" for i in range(len(sentences))]
    await asyncio.gather(*(voice.to_wav(s, w) for (_, s), w in zip(sentences, wavs, strict=True)))
    for (name, sentence), wav in zip(sentences, wavs, strict=True):
        sound = measure(wav)
        # About 140 words a minute: a sentence of n words lasts at least n/4 seconds.
        assert sound.length_s > len(sentence.split()) / 4 * 0.5, (name, sound)
        assert sound.rms_amplitude > 0.01, (name, sound)


async def test_volume_changes_loudness(espeak: str, tmp_path: Path) -> None:
    quiet, loud = tmp_path / "quiet.wav", tmp_path / "loud.wav"
    text = "Ditt blodtryck har kommit fram till vårdcentralen."
    await EspeakVoice("sv", volume_percent=20, player=()).to_wav(text, quiet)
    await EspeakVoice("sv", volume_percent=90, player=()).to_wav(text, loud)
    assert measure(loud).rms_amplitude > 2 * measure(quiet).rms_amplitude


async def test_a_sentence_is_never_read_as_an_option(espeak: str, tmp_path: Path) -> None:
    wav = tmp_path / "dash.wav"
    await EspeakVoice("sv", player=()).to_wav("--version", wav)
    assert measure(wav).length_s > 0.3


def test_amplitude_scale() -> None:
    assert [amplitude(v) for v in (0, 50, 100)] == [0, 100, 200]
