"""Spoken sentences through espeak-ng (Debian package ``espeak-ng``; its ``sv`` voice is in
``espeak-ng-data``): the text is spoken into a WAV on stdout (``espeak-ng --stdout``) and
played by a player reading it on stdin (``aplay -q`` by default), or written to a file.

Options used (espeak-ng(1)): ``-v`` voice, ``-a`` amplitude 0-200 (100 is espeak-ng's
default), ``-s`` words per minute, ``--stdout``, ``-w`` file.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path

from drivers.feedback import OutputUnavailableError

ESPEAK = "espeak-ng"
#: A sentence longer than this to speak is a hung player: it is stopped.
SAY_TIMEOUT_S = 30.0


def amplitude(volume_percent: int) -> int:
    """espeak-ng's ``-a`` (0-200) for a volume of 0-100 %."""
    return max(0, min(200, volume_percent * 2))


class EspeakVoice:
    """One voice, volume and pace; :meth:`say` plays, :meth:`to_wav` writes a file."""

    def __init__(
        self,
        voice: str,
        *,
        volume_percent: int = 60,
        words_per_minute: int = 140,
        player: Sequence[str] = ("aplay", "-q"),
    ) -> None:
        if shutil.which(ESPEAK) is None:
            raise OutputUnavailableError(
                "voice", f"{ESPEAK} not found", "apt-get install espeak-ng"
            )
        if player and shutil.which(player[0]) is None:
            raise OutputUnavailableError(
                "voice", f"player {player[0]} not found", "apt-get install alsa-utils"
            )
        self.voice = voice
        self.player = tuple(player)
        self._args = [
            "-v",
            voice,
            "-a",
            str(amplitude(volume_percent)),
            "-s",
            str(words_per_minute),
        ]

    def command(self, text: str, *, wav: Path | None = None) -> list[str]:
        """The espeak-ng command line for ``text`` (to ``wav``, or to stdout)."""
        out = ["-w", str(wav)] if wav is not None else ["--stdout"]
        # "--" ends the options: a sentence is never read as one.
        return [ESPEAK, *self._args, *out, "--", text]

    async def to_wav(self, text: str, wav: Path) -> None:
        """Speak ``text`` into a WAV file."""
        process = await asyncio.create_subprocess_exec(
            *self.command(text, wav=wav),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        if process.returncode != 0:
            raise OutputUnavailableError(
                "voice",
                f"{ESPEAK} exited {process.returncode}: {err.decode()[-200:]}",
                "check the voice",
            )

    async def say(self, text: str) -> None:
        """Speak ``text`` through the player; bounded by :data:`SAY_TIMEOUT_S`."""
        speak = await asyncio.create_subprocess_exec(
            *self.command(text),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        processes = [speak]
        try:
            async with asyncio.timeout(SAY_TIMEOUT_S):
                wav, _ = await speak.communicate()
                if speak.returncode != 0:
                    raise OutputUnavailableError(
                        "voice",
                        f"{ESPEAK} exited {speak.returncode}",
                        f"check the voice {self.voice!r}",
                    )
                play = await asyncio.create_subprocess_exec(
                    *self.player,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                processes.append(play)
                _, err = await play.communicate(wav)
                if play.returncode != 0:
                    raise OutputUnavailableError(
                        "voice",
                        f"{self.player[0]} exited {play.returncode}: {err.decode()[-200:]}",
                        "check the speaker (`aplay -l`)",
                    )
        finally:
            for process in processes:
                if process.returncode is None:
                    process.kill()
                    await process.wait()


async def voice_available(voice: str) -> bool:
    """True when espeak-ng knows ``voice`` (``espeak-ng --voices=LANG`` lists it)."""
    if shutil.which(ESPEAK) is None:
        return False
    language = voice.split("+", maxsplit=1)[0].rsplit("/", maxsplit=1)[-1]
    process = await asyncio.create_subprocess_exec(
        ESPEAK, f"--voices={language}", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    return process.returncode == 0 and len(out.decode().splitlines()) > 1
