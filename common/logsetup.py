"""Logging for the service: to the journal with syslog priorities, or plain on a terminal.

Under systemd, stderr is a journal stream (``$JOURNAL_STREAM`` is set): each line starts with a
``<N>`` syslog priority (sd-daemon(3)) so ``journalctl -p warning`` works, and carries no time
stamp (the journal adds it). Personal data policy: no patient ids, MAC addresses or values at
INFO and above; modules log those only at DEBUG (tests grep the logs to hold this).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message`` lines for the journal."""

    def format(self, record: logging.LogRecord) -> str:
        """Prefix the syslog priority of the record's level."""
        priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{record.name}: {super().format(record)}"


def configure_logging(environ: Mapping[str, str], *, level: int = logging.INFO) -> None:
    """Journal format under systemd, timestamps on a terminal; bumble's chatter kept at ERROR."""
    handler = logging.StreamHandler(sys.stderr)
    if environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("bumble").setLevel(logging.ERROR)
