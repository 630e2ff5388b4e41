"""The ``narhub`` console script: ``narhub run`` straight to the service, the rest to the CLI.

The service runs for years on a Raspberry Pi with a memory budget (issue: at most 60 MB RSS).
The technician CLI (typer, rich, and every command's module: benchmarks, the rig, the region
tools) costs about 4 MiB of RSS and a quarter of a second of start-up that the service never
uses, so ``narhub run`` with its plain options (``--config``, ``--shutdown-timeout``,
``--debug``) starts the service without loading it. Anything else, including ``narhub run
--help``, an unknown option and a configuration error, goes through the full CLI
(:mod:`technician.cli`), which prints the documented help, usage errors and exit codes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _service_args(argv: Sequence[str]) -> argparse.Namespace | None:
    """The options of ``narhub run`` when they are plain; None: let the CLI handle them."""
    parser = argparse.ArgumentParser(prog="narhub run", add_help=False, exit_on_error=False)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--shutdown-timeout", type=float, default=10.0)
    parser.add_argument("--debug", action="store_true")
    try:
        args, rest = parser.parse_known_args(list(argv))
    except argparse.ArgumentError:
        return None
    return None if rest else args


def main() -> None:
    """Console-script entry point."""
    from gateway.launch import run_service_fast  # noqa: PLC0415 - only for `narhub run`

    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        args = _service_args(argv[1:])
        if args is not None and run_service_fast(
            args.config, shutdown_timeout_s=args.shutdown_timeout, debug=args.debug
        ):
            return
    from technician.cli import main as cli_main  # noqa: PLC0415

    cli_main()
