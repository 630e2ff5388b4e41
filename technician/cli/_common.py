"""The technician's CLI pieces: the configuration option, loading and saving it.

Output and exit codes are shared by every command group: :mod:`common.cli`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from common.cli import EXIT_CONFIG, EXIT_FAILED, JsonFlag, console, emit, refused
from gateway.config import (
    ConfigError,
    HubConfig,
    load_config,
    render_config,
    resolve_config_path,
)

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "ConfigOption",
    "JsonFlag",
    "config_path",
    "console",
    "emit",
    "load",
    "refused",
    "save",
]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Hub configuration (default: $NARHUB_CONFIG or /etc/narhub/narhub.toml).",
    ),
]


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
