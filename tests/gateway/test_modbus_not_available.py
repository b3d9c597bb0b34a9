"""A Modbus meter with a FLT_MAX ("not available") register, through the service into SQLite:
its other values are stored, the neighbour on the same bus too, and one event is stored for it
(not one per poll). This used to raise OverflowError and end the bus's poll task."""

from __future__ import annotations

from pathlib import Path

from drivers.modbus.master import NOT_AVAILABLE_EVENT
from drivers.modbus.profiles import get_profile
from drivers.modbus.sim import SimulatedBus, SlaveSpec
from gateway.app.service import Service
from gateway.config.loader import load_config
from gateway.wiring.protocols import open_buses

SITE = """
gateway_id = "gw-na"
[storage]
path = "gw.db"
[board]
state_dir = "{board}"
[[bus]]
id = "rs485-1"
kind = "tcp"
host = "127.0.0.1"
tcp_port = {port}
[[meter]]
id = "shop-01"
bus = "rs485-1"
protocol = "modbus"
address = 1
profile = "eastron_sdm630"
[[meter]]
id = "shop-02"
bus = "rs485-1"
protocol = "modbus"
address = 2
profile = "gavazzi_em340"
"""
POLLS = 3


async def test_flt_max_register_others_stored_one_event(tmp_path: Path) -> None:
    slaves = [SlaveSpec(1, "eastron_sdm630", seed=2), SlaveSpec(2, "gavazzi_em340", seed=2)]
    async with SimulatedBus(slaves, transport="tcp") as sim:
        sim.force_words(1, "voltage_l1", [[0x7F7F, 0xFFFF]])
        site = tmp_path / "site.toml"
        site.write_text(SITE.format(board=tmp_path / "board", port=sim.tcp_port))
        service = Service(load_config(site))
        service.open()
        service.buses, _ = open_buses(service.config, service.board, service.record_event,
                                      service.clock)
        try:
            for _ in range(POLLS):
                await service.read_now("shop-01")
                await service.read_now("shop-02")
            assert service.writer is not None and service.store is not None
            service.writer.flush()
            stored = service.store.last_readings("shop-01", POLLS)
            neighbour = service.store.last_readings("shop-02", POLLS)
            events = service.store.recent_events(50, meter_id="shop-01")
        finally:
            for bus in service.buses.values():
                await bus.close()
            assert service.store is not None
            service.store.close()
    sdm = set(get_profile("eastron_sdm630").quantities)
    assert len(stored) == POLLS and len(neighbour) == POLLS
    for reading in stored:
        assert {v.quantity for v in reading.values} == sdm - {"voltage_l1"}
    assert {v.quantity for v in neighbour[0].values} == set(get_profile("gavazzi_em340").quantities)
    mine = [e for e in events if e.kind == NOT_AVAILABLE_EVENT]
    assert len(mine) == 1
    assert mine[0].data["quantities"]["voltage_l1"] == {"reason": "not_available",
                                                         "raw": "7f7fffff"}
