"""Machine checks of the architecture rules that import-linter cannot express."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("protocols", "drivers", "common", "gateway", "technician", "region", "rig")

#: Each third-party I/O library is imported in exactly one module.
IO_LIBRARIES = {
    "bleak": "drivers/ble/_bleak.py",
    "bumble": "drivers/ble/sim/_bumble.py",
    "dbus_fast": "drivers/ble/_dbus.py",
    "aiomqtt": "drivers/mqtt.py",
    "paho": "drivers/mqtt.py",
    "serial": "drivers/serial/_pyserial.py",
    "serial_asyncio_fast": "drivers/serial/_pyserial.py",
    "psycopg": "region/state_pg.py",
    "uvicorn": "region/worklist/serve.py",
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


def _cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), i.e. import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in imports.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    """No module imports itself through others, not even through an import inside a function
    (type-checking imports excluded: they do not run)."""
    import grimp

    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    imports = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _cycles(imports) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
