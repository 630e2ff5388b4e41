"""Profiles load on first use (issue #18's memory budget): the table that says which module
registers which characteristic is true, and a hub that decodes one profile loads only that
profile and its mapping, not all of them."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import protocols.gatt as package
from protocols.gatt import codec
from protocols.gatt.codec import PROFILE_MODULES, SUPPORTED_CHARACTERISTICS, load_all
from protocols.gatt.registry import REGISTRY


def test_the_table_names_the_module_that_registers_each_characteristic() -> None:
    load_all()
    assert set(REGISTRY) == set(SUPPORTED_CHARACTERISTICS)
    module_of = {uuid: module for module, uuids in PROFILE_MODULES.items() for uuid in uuids}
    assert len(module_of) == sum(len(uuids) for uuids in PROFILE_MODULES.values())
    for uuid in REGISTRY:
        defined_in = REGISTRY.spec(uuid).value_types[0].__module__
        assert defined_in == f"protocols.gatt.{module_of[uuid]}", hex(uuid)


def test_every_mapping_is_found_from_its_values_module() -> None:
    load_all()
    for value_type, mapper in REGISTRY.mappings.items():
        profile = value_type.__module__.rpartition(".")[2]
        expected = codec._MAPPING_MODULE.get(profile, profile)
        assert mapper.__module__ == f"protocols.gatt.mapping.{expected}", value_type


#: A fresh interpreter decodes one Temperature Measurement (37.0 Cel, GSS 3.218) and maps it,
#: then prints the profile and mapping modules it loaded.
_ONE_PROFILE = """
import json, sys
import protocols.gatt as g
value = g.decode(0x2A1C, bytes([0x00, 0x72, 0x01, 0x00, 0xFF]))
observations = g.to_observations(value)
print(json.dumps({
    "loaded": sorted(m for m in sys.modules if m.startswith("protocols.gatt.")),
    "observations": len(observations),
}))
"""


def test_decoding_one_profile_loads_that_profile_and_its_mapping_only() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _ONE_PROFILE], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    assert result["observations"] == 1
    loaded = set(result["loaded"])
    assert {"protocols.gatt.temperature", "protocols.gatt.mapping.temperature"} <= loaded
    profiles = {f"protocols.gatt.{module}" for module in PROFILE_MODULES}
    mappings = {name for name in loaded if name.startswith("protocols.gatt.mapping.")}
    # Loaded alongside: the temperature profile's own imports (the Date Time field).
    assert loaded & profiles <= {"protocols.gatt.temperature", "protocols.gatt.datetime_"}
    assert mappings == {"protocols.gatt.mapping.temperature"}


def test_the_package_exports_each_name_from_the_module_that_defines_it() -> None:
    # The names mypy sees (the TYPE_CHECKING imports) are the names the table serves.
    tree = ast.parse(Path(package.__file__).read_text())
    typed = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith(package.__name__)
        for alias in node.names
    }
    assert typed == set(package.__all__)
    for name in package.__all__:
        module = importlib.import_module(f"protocols.gatt.{package._MODULE_OF[name]}")
        assert getattr(package, name) is getattr(module, name), name
