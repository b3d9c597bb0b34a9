"""The demo's simulated sites build what the real decoders accept, and their registers move."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from drivers.iec62056.readout import decode_message
from drivers.iec62056.site import optical_datasets, p1_telegram
from drivers.wmbus.site import TELEGRAMS_PER_METER, frames
from gateway.demo.scenario import cost_of
from gateway.demo.site import bind_config

START = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_p1_telegrams_pass_their_crc_and_the_gas_reading_moves() -> None:
    first, later = (decode_message(p1_telegram(n, START)) for n in (0, 6))
    assert first.checksum == later.checksum == "ok"

    def gas(readout: Any) -> tuple[str, str]:
        (entry,) = [s for s in readout.datasets if s.address == "0-1:24.2.1"]
        return entry.values[0].value, entry.values[1].value

    (t0, v0), (t1, v1) = gas(first), gas(later)
    assert (t0, t1) == ("261204130000W", "261204130100W")  # CET, a minute later
    assert Decimal(v1) - Decimal(v0) == Decimal("0.006")


def test_the_optical_meter_energy_grows_with_time() -> None:
    def energy(elapsed_s: float) -> Decimal:
        (reg,) = [s for s in optical_datasets(elapsed_s) if s.address == "1.8.0"]
        return Decimal(reg.values[0].value)

    assert energy(3600) - energy(0) == Decimal("7.200")


def test_the_radio_site_alternates_water_and_heat_for_every_access_number() -> None:
    assert len(frames()) == 2 * TELEGRAMS_PER_METER


def test_the_run_down_top_up_is_the_cost_of_its_seconds_rounded_up_to_a_cent() -> None:
    assert cost_of(Decimal(18_000), 40, Decimal("2.50")) == "0.50"
    assert cost_of(Decimal(100), 1, Decimal("0.01")) == "0.01"  # never nothing


def test_binding_an_edited_config_keeps_the_users_keys_and_takes_this_runs_ports() -> None:
    edited = ('gateway_id = "gw-demo"  # mine\n[storage]\npath = "/old/gateway.db"\n'
              '[[bus]]\nid = "rs485-1"\nport = "/old/tty"\nbaudrate = 19200\n'
              '[[bus]]\nid = "real-adapter"\nport = "/dev/ttyUSB0"\n')
    run = ('[storage]\npath = "/new/gateway.db"\n'
           '[[bus]]\nid = "rs485-1"\nport = "/new/tty"\nbaudrate = 9600\n')
    bound = bind_config(edited, run)
    assert 'path = "/new/gateway.db"' in bound and 'port = "/new/tty"' in bound
    assert "baudrate = 19200" in bound and "# mine" in bound
    assert 'port = "/dev/ttyUSB0"' in bound  # not simulated: left as written
