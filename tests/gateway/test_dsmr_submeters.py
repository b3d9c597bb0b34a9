"""A P1 meter's M-Bus sub-meters: configured per channel (validated with the rest of the
config), and their readings handed over under the sub-meter's id at the capture time."""

from __future__ import annotations

import asyncio
import json
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from board.simulated import SimulatedBoard
from core.clock import SYSTEM_CLOCK
from drivers.iec62056.p1_plugin import PLUGIN, sub_meter_ids
from drivers.iec62056.sim import P1Sim
from drivers.readings import Sample
from gateway.config.loader import ConfigError, load_config
from gateway.wiring.protocols import board_context
from tests.corpus import CORPUS

ZIV = next(e for e in json.loads((CORPUS / "iec62056/dsmr_telegrams.json").read_text())
           if "ZIV 5CTA3" in e["version"])["telegram"].encode("latin-1")
DEADLINE_S = 20.0

SITE = """
gateway_id = "gw-p1"
[storage]
path = "gw.db"
[[bus]]
id = "p1"
port = "{port}"
baudrate = 115200
[[meter]]
id = "home-1"
bus = "p1"
protocol = "dsmr"
{extra}
"""


def _write(tmp_path: Path, extra: str, port: str = "/dev/ttyUSB0") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(textwrap.dedent(SITE.format(port=port, extra=extra)))
    return path


def _problems(tmp_path: Path, extra: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, extra))
    return info.value.problems


def test_sub_meters_are_configured_per_channel(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, 'utc_offset_min = 0\n'
                                          '[meter.mbus_meters]\n1 = "home-gas"\n2 = "home-water"'))
    meter = config.meter("home-1")
    assert sub_meter_ids(meter) == {1: "home-gas", 2: "home-water"}
    assert meter.options["utc_offset_min"] == 0
    assert load_config(_write(tmp_path, "")).meter("home-1").options["utc_offset_min"] == 60


@pytest.mark.parametrize(("extra", "key", "words"), [
    ('[meter.mbus_meters]\n5 = "home-gas"', "meter[0].mbus_meters", "not an M-Bus channel"),
    ('[meter.mbus_meters]\n1 = "home gas"', "meter[0].mbus_meters", "1-64 characters"),
    ('[meter.mbus_meters]\n1 = 7', "meter[0].mbus_meters", "1-64 characters"),
    ('mbus_meters = "home-gas"', "meter[0].mbus_meters", "must be a table"),
    ('[meter.mbus_meters]\n1 = "home-1"', "meter[0].mbus_meters.1", "duplicate meter id"),
    ('[meter.mbus_meters]\n1 = "gas"\n2 = "gas"', "meter[0].mbus_meters.2", "duplicate meter id"),
    ("utc_offset_min = 900", "meter[0].utc_offset_min", "between"),
])
def test_sub_meter_mistakes_name_their_key(tmp_path: Path, extra: str, key: str,
                                           words: str) -> None:
    problems = _problems(tmp_path, extra)
    assert any(f"key `{key}`" in p and words in p for p in problems), problems


def test_a_sub_meter_id_may_not_be_another_meters_id(tmp_path: Path) -> None:
    extra = ('[meter.mbus_meters]\n1 = "shop-9"\n[[meter]]\nid = "shop-9"\nbus = "p2"\n'
             'protocol = "dsmr"\n[[bus]]\nid = "p2"\nport = "/dev/ttyUSB1"')
    problems = _problems(tmp_path, extra)
    assert any("key `meter[1].id`" in p and "duplicate meter id 'shop-9'" in p
               for p in problems), problems


async def test_gas_reading_is_handed_over_under_its_id_at_the_capture_time(
    tmp_path: Path,
) -> None:
    with P1Sim([ZIV], interval_s=0.1) as sim:
        config = load_config(_write(tmp_path, '[meter.mbus_meters]\n1 = "home-gas"',
                                    port=sim.port_path))
        context = board_context(SimulatedBoard(tmp_path / "board"), lambda *_event: None,
                                tmp_path, SYSTEM_CLOCK)
        assert PLUGIN.open_pushed is not None
        source = PLUGIN.open_pushed(config.bus("p1"), [config.meter("home-1")], context)
        accepted: list[tuple[str, list[Sample], int]] = []
        both = asyncio.Event()

        def accept(meter_id: str, samples: list[Sample], ts_ms: int) -> None:
            accepted.append((meter_id, samples, ts_ms))
            if {m for m, _, _ in accepted} == {"home-1", "home-gas"}:
                both.set()

        task = asyncio.create_task(source.run(accept))
        try:
            await asyncio.wait_for(both.wait(), DEADLINE_S)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    gas = next((samples, ts) for m, samples, ts in accepted if m == "home-gas")
    capture = datetime(2023, 9, 25, 14, 0, tzinfo=UTC)  # 230925160000S
    assert gas[1] == (capture - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert {s.quantity: s.value for s in gas[0]}["volume"] == Decimal("4611.403")
    home = next(samples for m, samples, _ in accepted if m == "home-1")
    assert "volume" not in {s.quantity for s in home}
