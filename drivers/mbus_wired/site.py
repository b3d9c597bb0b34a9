"""The demo's wired M-Bus site: a heat meter and two water meters on one 2400-baud pair.

Used by the plugin's `simulate` capability (`gateway demo`). The bus runs on the transport
kit's pty harness in a thread of this process (drivers/mbus_wired/simpty.py), paced to its
baud; the meters' registers move with the wall clock. The heat meter is read by secondary
address, the water meters by primary and secondary address. Nothing here reads test fixtures.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Final

from drivers.mbus.records import RecordSpec, encode_record
from drivers.mbus_wired.address import SecondaryAddress, manufacturer_code
from drivers.mbus_wired.meter_address import secondary_hex
from drivers.mbus_wired.responses import FixedHeader
from drivers.mbus_wired.sim import SimBus, SimMeter
from drivers.mbus_wired.simpty import BusSim
from drivers.plugin import Simulation

BUS_ID: Final = "mbus-1"
BAUD: Final = 2400
HEAT_MEDIUM: Final = 0x04
WATER_MEDIUM: Final = 0x07
REGISTER_UPDATE_S: Final = 2.0
# (meter id, secondary id, manufacturer, medium, primary address, how it is configured)
METERS: Final = (
    ("flat-3-heat", "61234501", "KAM", HEAT_MEDIUM, 0, "secondary"),
    ("flat-3-water", "30551207", "LUG", WATER_MEDIUM, 7, "primary"),
    ("flat-4-water", "30551208", "LUG", WATER_MEDIUM, 0, "secondary"),
)


def heat_payload(elapsed_s: float) -> bytes:
    """A heat meter at ~4 kW: energy (kWh), volume (10 l), flow / return temperature (0.1 C),
    power (W), and last month's energy (storage 1, not a reading)."""
    kwh = 18_230 + int(elapsed_s * 4 / 3600)
    specs = [RecordSpec(0x4, 0x06, kwh), RecordSpec(0x4, 0x14, 41_200 + int(elapsed_s / 60)),
             RecordSpec(0x2, 0x5A, 652), RecordSpec(0x2, 0x5E, 418),
             RecordSpec(0x4, 0x2B, 4000), RecordSpec(0x4, 0x06, 17_990, storage=1)]
    return b"".join(encode_record(spec) for spec in specs)


def water_payload(elapsed_s: float, start_litres: int) -> bytes:
    """A water meter: volume in litres (VIF 0x13), ~6 l a minute."""
    return encode_record(RecordSpec(0x4, 0x13, start_litres + int(elapsed_s / 10)))


def _payload(medium: int, index: int, elapsed_s: float) -> bytes:
    if medium == HEAT_MEDIUM:
        return heat_payload(elapsed_s)
    return water_payload(elapsed_s, 123_456 + index * 1000)


def demo_meters() -> list[SimMeter]:
    meters = []
    for index, (_, number, maker, medium, primary, _how) in enumerate(METERS):
        header = FixedHeader(number, manufacturer_code(maker), 1, medium, 0, 0, 0)
        meters.append(SimMeter(header, [_payload(medium, index, 0.0)], primary=primary,
                               baud=BAUD))
    return meters


class _Registers(threading.Thread):
    """Moves the meters' registers with the clock while the simulator serves them."""

    def __init__(self, meters: list[SimMeter]) -> None:
        super().__init__(name="mbus-demo-registers", daemon=True)
        self.meters, self.stop_event, self.start_s = meters, threading.Event(), time.monotonic()

    def run(self) -> None:
        while not self.stop_event.wait(REGISTER_UPDATE_S):
            elapsed = time.monotonic() - self.start_s
            for index, meter in enumerate(self.meters):
                meter.telegrams = [_payload(meter.header.medium, index, elapsed)]


def _address(meter: SimMeter, how: str) -> str:
    if how == "primary":
        return str(meter.primary)
    address: SecondaryAddress = meter.secondary
    return f'"{secondary_hex(address)}"'


def wired_toml(port: str, meters: list[SimMeter], poll_interval_s: int) -> str:
    lines = [f'[[bus]]\nid = "{BUS_ID}"\nport = "{port}"\nbaudrate = {BAUD}\nparity = "E"\n']
    for meter, (meter_id, *_, how) in zip(meters, METERS, strict=True):
        lines.append(f'[[meter]]\nid = "{meter_id}"\nbus = "{BUS_ID}"\nprotocol = "mbus"\n'
                     f"address = {_address(meter, how)}\n"
                     f"poll_interval_s = {max(poll_interval_s, 5)}\n")
    return "\n".join(lines) + "\n"


def simulate_wired(state_dir: Path, poll_interval_s: int) -> Simulation:
    """The three meters on one simulated pair, served until `stop`."""
    meters = demo_meters()
    sim = BusSim(SimBus(meters))
    sim.__enter__()
    registers = _Registers(meters)
    registers.start()

    def stop() -> None:
        registers.stop_event.set()
        sim.close()

    return Simulation(wired_toml(sim.port_path, meters, poll_interval_s), len(meters), 1, stop)
