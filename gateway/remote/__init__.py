"""Remote management: signed region commands executed by the hub (docs/remote-management.md).

The hub subscribes ``narhub/v1/{hub_id}/cmd/#``, verifies every command with
:mod:`protocols.commands` against the region command keys pinned in ``[remote]``, persists the
highest sequence accepted, runs the command's applier and reports the result on
``narhub/v1/{hub_id}/up/cmd/result``. The region side (``narhub region send``) lives in
:mod:`region.command_sender`.
"""

from gateway.remote.handler import CommandHandler, CommandRefusedError, RemoteError
from protocols.command_results import CommandResult, Status
from protocols.command_topics import cmd_filter, cmd_topic, result_topic

__all__ = [
    "CommandHandler",
    "CommandRefusedError",
    "CommandResult",
    "RemoteError",
    "Status",
    "cmd_filter",
    "cmd_topic",
    "result_topic",
]
