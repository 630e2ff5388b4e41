"""Machine checks of the architecture rules that import-linter cannot express."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("protocols", "drivers", "gateway")

#: Each third-party I/O library is imported in exactly one module.
IO_LIBRARIES = {
    "bleak": "drivers/ble/_bleak.py",
    "bumble": "drivers/ble/sim/_bumble.py",
    "aiomqtt": "drivers/mqtt.py",
    "paho": "drivers/mqtt.py",
    "serial": "drivers/serial/_pyserial.py",
    "serial_asyncio_fast": "drivers/serial/_pyserial.py",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_each_io_library_is_imported_in_one_module() -> None:
    importers: dict[str, list[str]] = {lib: [] for lib in IO_LIBRARIES}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for lib in _imports(path) & set(IO_LIBRARIES):
                importers[lib].append(path.relative_to(ROOT).as_posix())
    for lib, expected in IO_LIBRARIES.items():
        assert importers[lib] == [expected], f"{lib} imported in {importers[lib]}"


def test_the_rule_catches_a_second_importer(tmp_path: Path) -> None:
    rogue = tmp_path / "rogue.py"
    rogue.write_text("import bleak\nfrom aiomqtt import Client\n")
    assert _imports(rogue) == {"bleak", "aiomqtt"}
