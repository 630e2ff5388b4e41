"""The ``config`` command: validated, atomic configuration updates with rollback.

Body (CBOR map, docs/remote-management.md "config"):

- ``{"set": {SECTION: {KEY: VALUE}}}``: replace the named keys. Remote management may change
  only what the care team and the region own: ``pipeline.thresholds``, ``pipeline.reduction``,
  ``batching.*``, ``ble.devices`` (paired devices), ``sensors.boards``. Anything else (the
  broker, the hub's identity, keys, the pinned command keys) is refused: a command must never be
  able to move a hub to another broker or trust another key.
- ``{"rollback": true}``: go back to the configuration in use before the last update.

The result of merging is validated with the hub's strict model (:func:`gateway.config.
parse_config`: unknown keys and bad values are refused, naming the dotted key), then written
atomically (temporary file, fsync, rename, directory fsync) with the previous file kept as
``{name}.prev``. Thresholds, batching and the boards' sampling intervals apply at once
(``sensors.boards`` when only ``intervals_s`` changed: the hub sends the boards a CONFIG);
devices, board ports and reduction rules at the next start (reported as ``restart_required``).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from common.atomic import write_atomic
from gateway.config import ConfigError, HubConfig, parse_config, render_config
from gateway.remote.handler import CommandFailedError, CommandRefusedError
from protocols.commands import Command

logger = logging.getLogger(__name__)

#: section -> keys a remote update may set (``None``: every key of the section).
ALLOWED: Mapping[str, frozenset[str] | None] = {
    "pipeline": frozenset({"thresholds", "reduction"}),
    "batching": None,
    "ble": frozenset({"devices"}),
    "sensors": frozenset({"boards"}),
}
#: What takes effect without a restart.
LIVE = frozenset({"pipeline.thresholds", "batching"})


def previous_path(path: Path) -> Path:
    """Where the configuration before the last update is kept."""
    return path.with_name(path.name + ".prev")


def _changed_keys(patch: Mapping[str, Any]) -> list[str]:
    """Dotted keys of a patch; a refusal names the first one not allowed."""
    keys = []
    for section, body in patch.items():
        if section not in ALLOWED:
            raise CommandRefusedError(
                "not-allowed", f"{section}: remote updates may change only {sorted(ALLOWED)}"
            )
        if not isinstance(body, Mapping) or not body:
            raise CommandRefusedError("invalid-config", f"{section}: expected a non-empty table")
        allowed = ALLOWED[section]
        for key in body:
            if allowed is not None and key not in allowed:
                raise CommandRefusedError(
                    "not-allowed",
                    f"{section}.{key}: remote updates may change only "
                    f"{', '.join(f'{section}.{k}' for k in sorted(allowed))}",
                )
            keys.append(f"{section}.{key}")
    return keys


def _section_keys(keys: list[str]) -> tuple[list[str], list[str]]:
    live = [k for k in keys if k in LIVE or k.split(".", 1)[0] in LIVE]
    return live, [k for k in keys if k not in live]


def _same_boards(old: HubConfig, new: HubConfig) -> bool:
    """Whether two configurations name the same boards (ports and types), in any order."""

    def boards(config: HubConfig) -> list[tuple[str, str | None]]:
        return sorted((b.port, b.board) for b in config.sensors.boards)

    return boards(old) == boards(new)


class ConfigUpdater:
    """Applies ``config`` commands to the configuration file and the running hub.

    ``apply_live(old, new)`` changes the running hub (thresholds, batching); it is called only
    after the new file is durable.
    """

    def __init__(
        self,
        path: Path,
        *,
        apply_live: Callable[[HubConfig, HubConfig], None] | None = None,
    ) -> None:
        self.path = path
        self._apply_live = apply_live

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandFailedError("io", f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise CommandFailedError("io", f"{path} is not valid TOML: {exc}") from None

    def _validate(self, data: dict[str, Any]) -> HubConfig:
        try:
            return parse_config(data, path=self.path)
        except ConfigError as exc:
            raise CommandRefusedError(
                "invalid-config", "; ".join(exc.problems), {"problems": exc.problems}
            ) from None

    async def __call__(self, command: Command) -> dict[str, Any]:
        """Carry out one ``config`` command; returns what changed."""
        body = command.body
        current_data = self._read(self.path)
        current = self._validate(current_data)
        if body.get("rollback") is True and set(body) == {"rollback"}:
            prev = previous_path(self.path)
            if not prev.exists():
                raise CommandRefusedError("no-previous", "no earlier configuration is kept")
            new = self._validate(self._read(prev))
            keys = _diff_keys(current, new)
        elif set(body) == {"set"} and isinstance(body["set"], Mapping):
            patch = body["set"]
            keys = _changed_keys(patch)
            merged = dict(current_data)
            for section, values in patch.items():
                merged[section] = {**merged.get(section, {}), **values}
            new = self._validate(merged)
        else:
            raise CommandRefusedError(
                "invalid-config", "body must be {'set': {...}} or {'rollback': true}"
            )
        if (
            new.hub_id != current.hub_id
            or new.uplink != current.uplink
            or (new.remote != current.remote)
        ):
            # Only reachable through a rollback to a file edited by hand.
            raise CommandRefusedError(
                "not-allowed", "the update would change the hub id, uplink or pinned keys"
            )
        try:
            write_atomic(previous_path(self.path), self.path.read_bytes())
            write_atomic(self.path, render_config(new).encode())
        except OSError as exc:
            raise CommandFailedError("io", f"cannot write {self.path}: {exc.strerror}") from None
        keys = sorted(keys)
        live, restart = _section_keys(keys)
        if "sensors.boards" in restart and _same_boards(current, new):
            # Only the sampling intervals changed: the hub sends them to the boards at once.
            restart.remove("sensors.boards")
            live.append("sensors.boards")
        if self._apply_live is not None:
            self._apply_live(current, new)
        logger.info("configuration updated (%d keys)", len(keys))
        return {"changed": keys, "applied_live": live, "restart_required": restart}


def _diff_keys(old: HubConfig, new: HubConfig) -> list[str]:
    """Dotted keys (in :data:`ALLOWED`) whose values differ between two configurations."""
    keys: list[str] = []
    old_data, new_data = old.model_dump(mode="json"), new.model_dump(mode="json")
    for section, allowed in ALLOWED.items():
        before, after = old_data.get(section) or {}, new_data.get(section) or {}
        keys.extend(
            f"{section}.{key}"
            for key in sorted(set(before) | set(after))
            if (allowed is None or key in allowed) and before.get(key) != after.get(key)
        )
    return keys
