"""The ``narhub`` command line (placeholder until the CLI module lands)."""


def main() -> None:
    """Entry point."""
