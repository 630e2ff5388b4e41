"""Board entry point: ``board.py`` (copied from boards/<name>/) selects the hardware."""

import sys

import board

from sensorfw.app import run

try:
    run(board)
except Exception as e:  # noqa: BLE001 - last resort: report on stderr, then reset
    sys.print_exception(e, sys.stderr)
    board.reset()
