"""Observation's hand-written __init__ (slot setters) is the generated one, only faster."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from protocols.gatt.observation import Observation


def test_init_sets_every_field_in_order_and_the_observation_stays_frozen() -> None:
    names = [f.name for f in dataclasses.fields(Observation)]
    params = list(inspect.signature(Observation.__init__).parameters)[1:]
    assert params == names
    defaults = {f.name: f.default for f in dataclasses.fields(Observation)}
    assert {
        n: p.default
        for n, p in inspect.signature(Observation.__init__).parameters.items()
        if n != "self"
    } == {
        n: (d if d is not dataclasses.MISSING else inspect.Parameter.empty)
        for n, d in defaults.items()
    }
    values = [f"v{i}" for i in range(len(names))]
    o = Observation(*values)  # type: ignore[arg-type]
    assert [getattr(o, n) for n in names] == values
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.unit = "kg"  # type: ignore[misc]
    assert dataclasses.replace(o, unit="kg").unit == "kg"
    assert o == Observation(*values)  # type: ignore[arg-type]
    assert hash(o) == hash(Observation(*values))  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(o)) == o
