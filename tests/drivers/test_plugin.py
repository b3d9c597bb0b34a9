"""The protocol plugin contract: typed counters, and what a plugin must declare."""

from __future__ import annotations

import pytest

from drivers.iec62056.p1_plugin import PLUGIN as DSMR
from drivers.iec62056.plugin import PLUGIN as IEC62056
from drivers.modbus.plugin import PLUGIN as MODBUS
from drivers.plugin import STANDARD_COUNTERS, CounterSpec, ProtocolPlugin
from drivers.wmbus.plugin import PLUGIN as WMBUS


def test_counters_sum_into_the_standard_four_and_keep_their_own() -> None:
    spec = CounterSpec(ok="reads_ok", timeouts=frozenset({"timeout", "port_unavailable"}),
                       checksum=frozenset({"crc"}), not_errors=frozenset({"reads"}))
    typed = spec.typed({"reads": 9, "reads_ok": 5, "timeout": 2, "port_unavailable": 1,
                        "crc": 1, "garbage": 3})
    assert tuple(typed)[:4] == STANDARD_COUNTERS
    assert typed == {"ok": 5, "timeouts": 3, "checksum": 1, "other": 3, "reads": 9,
                     "reads_ok": 5, "timeout": 2, "port_unavailable": 1, "crc": 1, "garbage": 3}
    assert spec.typed({}) == {"ok": 0, "timeouts": 0, "checksum": 0, "other": 0}


@pytest.mark.parametrize("plugin", [MODBUS, IEC62056, DSMR, WMBUS], ids=lambda p: p.name)
def test_every_counter_a_plugin_names_is_typed_once(plugin: ProtocolPlugin) -> None:
    spec = plugin.counters
    groups = [{spec.ok}, spec.timeouts, spec.checksum, spec.not_errors]
    names = [name for group in groups for name in group]
    assert len(names) == len(set(names)), plugin.name


def test_a_plugin_opens_the_way_its_kind_says() -> None:
    with pytest.raises(TypeError, match="polled but has no open_polled"):
        ProtocolPlugin(name="nothing", kind="polled", meter_fields={},
                       counters=CounterSpec(ok="ok"))
    assert all((p.open_polled if p.kind == "polled" else p.open_pushed) is not None
               for p in (MODBUS, IEC62056, DSMR, WMBUS))
