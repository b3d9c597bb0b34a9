"""Reading simulated meters over real ptys: baud switch, modes A/B/C, shared bus, faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from drivers.errors import ChecksumError, DeviceTimeout, PortUnavailable, ProfileError
from drivers.iec62056.datasets import DataSet, DataValue
from drivers.iec62056.framing import Identification
from drivers.iec62056.reader import Iec62056Bus
from drivers.iec62056.sim import MeterSim, SimMeter

from .conftest import e650, port_factory

TIMEOUT_S = 20.0


def small_meter(baud_char: str, address: str = "", serial_no: str = "111") -> SimMeter:
    sets = [
        DataSet("C.1.0", (DataValue(serial_no),)),
        DataSet("1.8.0", (DataValue("000123.456", "kWh"),)),
        DataSet("1.8.1", (DataValue("000100.000", "kWh"),)),
        DataSet("32.7.0", (DataValue("231.5", "V"),)),
        DataSet("1.6.0", (DataValue("02.500", "kW"), DataValue("24-03-01 10:15"))),
    ]
    return SimMeter(Identification("ABC", baud_char, None, "TEST01"), sets, address=address)


def values(samples: list) -> dict[str, object]:
    return {s.quantity: s.value for s in samples}


async def test_mode_c_switches_to_the_offered_baud() -> None:
    with MeterSim([e650()]) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        result = await bus.read("e650", "", {"mode": "C", "max_baud": 9600}, TIMEOUT_S)
        await bus.close()
    assert result.baud == 4800
    assert sim.data_bauds == [300, 4800]  # identification at 300, readout at the new rate
    got = values(result.samples)
    assert got["import_active_energy"] == Decimal("1005")
    assert got["meter_datetime"] == "2022-12-28T11:03:17"
    assert len(result.readout.datasets) == 169
    assert bus.counters("e650") == {"reads_ok": 1}


async def test_max_baud_caps_the_negotiated_rate() -> None:
    with MeterSim([e650()]) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        result = await bus.read("e650", "", {"max_baud": 2400}, TIMEOUT_S)
        await bus.close()
    assert result.baud == 2400
    assert sim.data_bauds[-1] == 2400


async def test_mode_a_stays_at_300_and_mode_b_switches_without_ack() -> None:
    with MeterSim([small_meter(" ", "a"), small_meter("E", "b")]) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        mode_a = await bus.read("a", "a", {"mode": "A"}, TIMEOUT_S)
        mode_b = await bus.read("b", "b", {"mode": "B"}, TIMEOUT_S)
        await bus.close()
    assert (mode_a.baud, mode_b.baud) == (300, 9600)
    assert sim.data_bauds == [300, 300, 300, 9600]
    assert values(mode_b.samples)["max_demand_active_power"] == Decimal("2500")
    assert mode_b.max_demand_time == "2024-03-01T10:15:00"


async def test_addressed_meters_on_a_shared_line_are_read_in_turn() -> None:
    meters = [small_meter("5", f"0000{n}", serial_no=f"S{n}") for n in range(1, 4)]
    with MeterSim(meters) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        results = [await bus.read(f"m{n}", f"0000{n}", {}, TIMEOUT_S) for n in range(1, 4)]
        await bus.close()
    assert sim.sign_ons == ["00001", "00002", "00003"]
    assert [values(r.samples)["serial_number"] for r in results] == ["S1", "S2", "S3"]


async def test_half_duplex_echo_is_consumed() -> None:
    with MeterSim([e650()], echo=True) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path), echo=True)
        result = await bus.read("e650", "", {}, TIMEOUT_S)
        await bus.close()
    assert values(result.samples)["import_active_energy"] == Decimal("1005")


async def test_unexpected_echo_is_skipped_when_echo_is_not_configured() -> None:
    with MeterSim([e650()], echo=True) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path), echo=False)
        result = await bus.read("e650", "", {}, TIMEOUT_S)
        await bus.close()
    assert not result.readout.problems
    assert values(result.samples)["import_active_energy"] == Decimal("1005")


async def test_unplugged_port_is_reported_and_reopened_later() -> None:
    with MeterSim([e650()]) as sim:
        opened: list[int] = []

        def flaky_open(baud: int):  # first open fails like an unplugged USB adapter
            opened.append(baud)
            if len(opened) == 1:
                raise OSError(2, "No such file or directory")
            return port_factory(sim.port_path)(baud)

        bus = Iec62056Bus(flaky_open)
        with pytest.raises(PortUnavailable, match="cannot open port"):
            await bus.read("e650", "", {}, TIMEOUT_S)
        result = await bus.read("e650", "", {}, TIMEOUT_S)
        await bus.close()
    assert result.samples
    assert bus.counters("e650") == {"port_errors": 1, "reads_ok": 1}


async def test_meter_that_stays_at_300_baud_is_read_after_fallback() -> None:
    with MeterSim([e650(faults={"stuck_300"})]) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        result = await bus.read("e650", "", {}, TIMEOUT_S)
        await bus.close()
    assert result.baud == 300
    assert sim.data_bauds == [300, 4800, 300, 300]  # garbage at 4800, then the retry
    assert bus.counters("e650")["baud_fallbacks"] == 1


async def test_wrong_bcc_is_refused() -> None:
    with MeterSim([e650(faults={"bad_bcc"})]) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        with pytest.raises(ChecksumError, match="BCC"):
            await bus.read("e650", "", {}, TIMEOUT_S)
        await bus.close()
    # a wrong BCC at the high rate may be line noise: one retry at 300 baud, then the error
    assert bus.counters("e650") == {"baud_fallbacks": 1, "checksum_errors": 1}


async def test_silent_meter_times_out() -> None:
    with MeterSim([e650(faults={"silent"})]) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        with pytest.raises(DeviceTimeout, match="identification"):
            await bus.read("e650", "", {}, TIMEOUT_S)
        await bus.close()
    assert bus.counters("e650") == {"timeouts": 1}


async def test_torn_readout_times_out_and_is_counted() -> None:
    torn = small_meter("0")
    torn.faults = {"torn"}
    with MeterSim([torn]) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        with pytest.raises(DeviceTimeout, match="data readout"):
            await bus.read("torn", "", {}, TIMEOUT_S)
        await bus.close()
    assert bus.counters("torn") == {"timeouts": 1}


async def test_clock_drift_above_limit_is_reported() -> None:
    meter_time = datetime(2022, 12, 28, 11, 3, 17)
    gateway_utc = meter_time - timedelta(minutes=60) - timedelta(seconds=125)
    drifts: list[tuple[str, int]] = []
    with MeterSim([e650()]) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path),
                          clock=gateway_utc.replace(tzinfo=UTC).timestamp,
                          on_clock_drift=lambda meter, drift: drifts.append((meter, drift)))
        options = {"clock_drift_limit_s": 60, "utc_offset_min": 60}
        result = await bus.read("e650", "", options, TIMEOUT_S)
        await bus.close()
    assert result.clock_drift_s == 125
    assert result.drift_exceeded
    assert drifts == [("e650", 125)]
    assert bus.last_meter_clock_drift_s("e650") == 125


async def test_unknown_and_bad_options_name_the_meter_and_key() -> None:
    bus = Iec62056Bus(port_factory("/nonexistent"))
    with pytest.raises(ProfileError, match=r"shop-1.*baudrate"):
        await bus.read("shop-1", "", {"baudrate": 9600}, TIMEOUT_S)
    with pytest.raises(ProfileError, match=r"shop-1.*mode 'D'"):
        await bus.read("shop-1", "", {"mode": "D"}, TIMEOUT_S)
