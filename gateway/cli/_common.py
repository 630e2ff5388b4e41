"""Shared pieces of the CLI: JSON output, exit codes, the configuration option.

Exit codes (documented in the README): 0 success; 1 a check or an operation failed;
2 bad usage (typer); 3 the configuration is missing or invalid.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from gateway.config import (
    ConfigError,
    HubConfig,
    load_config,
    render_config,
    resolve_config_path,
)

EXIT_FAILED = 1
EXIT_CONFIG = 3

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Hub configuration (default: $NARHUB_CONFIG or /etc/narhub/narhub.toml).",
    ),
]


def console() -> Console:
    """A console on stdout; rich turns colour and live views off when it is not a TTY."""
    return Console()


def emit(result: dict[str, Any], as_json: bool) -> None:
    """Print a result: JSON for scripts, or a readable rendering."""
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        console().print(result)


def config_path(option: Path | None) -> Path:
    """Where the configuration is, from --config, $NARHUB_CONFIG or the default."""
    return resolve_config_path(option, dict(os.environ))


def load(option: Path | None, as_json: bool) -> HubConfig:
    """Load the configuration or exit 3 naming each wrong key and what to do."""
    path = config_path(option)
    try:
        return load_config(path)
    except ConfigError as exc:
        hint = "run `narhub init`" if not path.exists() else f"fix {path}"
        emit({"ok": False, "config": str(path), "problems": exc.problems, "hint": hint}, as_json)
        raise typer.Exit(EXIT_CONFIG) from None


def save(hub: HubConfig, option: Path | None) -> None:
    """Replace the configuration file atomically (pairing, sensor boards)."""
    path = config_path(option)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_config(hub), encoding="utf-8")
    tmp.replace(path)
