"""Starting the hub service from the plain options of ``narhub run`` (the systemd path).

Kept apart from the technician's CLI so that ``narhub run`` loads neither typer nor rich
(:mod:`technician.entry`).
"""

from __future__ import annotations

from pathlib import Path


def run_service_fast(
    config: Path | None, *, shutdown_timeout_s: float = 10.0, debug: bool = False
) -> bool:
    """Start the service; False when the configuration needs the CLI's error report."""
    import asyncio  # noqa: PLC0415 - only on this path
    import logging  # noqa: PLC0415
    import os  # noqa: PLC0415

    from gateway.config import ConfigError, load_config, resolve_config_path  # noqa: PLC0415

    path = resolve_config_path(config, dict(os.environ))
    try:
        hub = load_config(path)
    except ConfigError:
        return False
    from common.logsetup import configure_logging  # noqa: PLC0415
    from gateway.service import run_service  # noqa: PLC0415

    configure_logging(os.environ, level=logging.DEBUG if debug else logging.INFO)
    asyncio.run(
        run_service(
            hub, environ=os.environ, shutdown_timeout_s=shutdown_timeout_s, config_path=path
        )
    )
    return True
