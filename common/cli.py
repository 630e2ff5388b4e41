"""What every ``narhub`` command group shares, whichever program it belongs to: JSON output,
the ``--json`` flag and the exit codes.

Exit codes (documented in the README): 0 success; 1 a check or an operation failed;
2 bad usage (typer); 3 the configuration is missing or invalid.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from common.errors import HintedError

EXIT_FAILED = 1
EXIT_CONFIG = 3

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def console() -> Console:
    """A console on stdout; rich turns colour and live views off when it is not a TTY."""
    return Console()


def emit(result: dict[str, Any], as_json: bool) -> None:
    """Print a result: JSON for scripts, or a readable rendering."""
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        console().print(result)


def refused(exc: HintedError, as_json: bool) -> typer.Exit:
    """Print a refusal (its reason and hint) and return the exit to raise (code 1)."""
    emit({"ok": False, "error": exc.reason, "hint": exc.hint}, as_json)
    return typer.Exit(EXIT_FAILED)
