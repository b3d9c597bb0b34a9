"""The demo's IEC 62056-21 and DSMR P1 site: one optical meter and one P1 port with a gas meter.

Used by the plugins' `simulate` capability (`gateway demo`). The meters run on the transport
kit's pty harness in threads of this process; their registers move with the wall clock, so the
live view shows energy and gas growing as on a real site. Nothing here reads test fixtures.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Final

from drivers.iec62056.datasets import DataSet, DataValue
from drivers.iec62056.framing import CRLF, Identification, crc16_dsmr
from drivers.iec62056.sim import MeterSim, P1Sim, SimMeter
from drivers.plugin import Simulation

OPTICAL_METER: Final = "tower-e650"
OPTICAL_ADDRESS: Final = "97846089"
P1_METER: Final = "flat-21"
P1_GAS_METER: Final = "flat-21-gas"
# A whole day of telegrams: the port cycles through them, and a demo never runs that long.
P1_TELEGRAMS: Final = 8640
P1_INTERVAL_S: Final = 10.0  # DSMR 5 pushes every second; 10 s keeps the demo's store small
REGISTER_UPDATE_S: Final = 2.0  # the optical meter's registers move this often
CET: Final = timezone(timedelta(hours=1))  # DSMR clocks: winter time, the `W` flag


def optical_datasets(elapsed_s: float) -> list[DataSet]:
    """An E650-like readout: energy growing by ~7 kW of load, three phase voltages."""
    kwh = 1005 + elapsed_s * 7.2 / 3600

    def reg(address: str, value: str, unit: str | None = None) -> DataSet:
        return DataSet(address, (DataValue(value, unit),))

    return [reg("0.0.0", OPTICAL_ADDRESS), reg("1.8.0", f"{kwh:010.3f}", "kWh"),
            reg("2.8.0", "0000012.000", "kWh"), reg("32.7.0", "230.1", "V"),
            reg("52.7.0", "229.4", "V"), reg("72.7.0", "228.1", "V"),
            reg("31.7.0", "010.45", "A")]


def p1_telegram(n: int, start: datetime) -> bytes:
    """The n-th push of a DSMR 5 meter: energy and gas both move, the gas captured each push."""
    when = (start + timedelta(seconds=n * P1_INTERVAL_S)).astimezone(CET)
    stamp = when.strftime("%y%m%d%H%M%S") + "W"
    kwh, gas = 9481.954 + n * 0.004, 4611.403 + n * 0.001
    lines = ["1-3:0.2.8(50)", f"0-0:1.0.0({stamp})",
             "0-0:96.1.1(4530303639303030373132353230353230)",
             f"1-0:1.8.1({kwh:010.3f}*kWh)", "1-0:1.8.2(005767.918*kWh)",
             "1-0:2.8.1(002791.691*kWh)", "1-0:2.8.2(006808.329*kWh)", "0-0:96.14.0(0002)",
             "1-0:1.7.0(01.440*kW)", "1-0:2.7.0(00.000*kW)", "1-0:32.7.0(231.0*V)",
             "1-0:31.7.0(006*A)", "0-1:24.1.0(003)",
             "0-1:96.1.0(4730303732303034303031383139323230)",
             f"0-1:24.2.1({stamp})({gas:09.3f}*m3)"]
    body = ("/CTA5ZIV-METER\r\n\r\n" + "\r\n".join(lines) + "\r\n!").encode("ascii")
    return body + f"{crc16_dsmr(body):04X}".encode("ascii") + CRLF


class _Registers(threading.Thread):
    """Moves the optical meter's registers with the clock while the simulator serves them."""

    def __init__(self, meter: SimMeter) -> None:
        super().__init__(name="iec62056-demo-registers", daemon=True)
        self.meter, self.stop_event, self.start_s = meter, threading.Event(), time.monotonic()

    def run(self) -> None:
        while not self.stop_event.wait(REGISTER_UPDATE_S):
            self.meter.datasets = optical_datasets(time.monotonic() - self.start_s)


def simulate_optical(state_dir: Path, poll_interval_s: int) -> Simulation:
    """One optical meter (mode C, 9600 baud after sign-on) on its own probe."""
    meter = SimMeter(Identification("LGZ", "5", None, "ZMD4104100C.04"), optical_datasets(0),
                     address=OPTICAL_ADDRESS)
    sim = MeterSim([meter])
    sim.__enter__()
    registers = _Registers(meter)
    registers.start()

    def stop() -> None:
        registers.stop_event.set()
        sim.close()

    toml = (f'[[bus]]\nid = "optical-1"\nport = "{sim.port_path}"\nbaudrate = 300\n'
            f'bytesize = 7\nparity = "E"\n\n[[meter]]\nid = "{OPTICAL_METER}"\n'
            f'bus = "optical-1"\nprotocol = "iec62056"\naddress = "{OPTICAL_ADDRESS}"\n'
            f"poll_interval_s = {max(poll_interval_s, 10)}\ntimeout_ms = 30000\n\n")
    return Simulation(toml, 1, 1, stop)


def simulate_p1(state_dir: Path, poll_interval_s: int) -> Simulation:
    """A DSMR 5 P1 port whose meter carries a gas meter on M-Bus channel 1."""
    start = datetime.now(UTC)
    sim = P1Sim([p1_telegram(n, start) for n in range(P1_TELEGRAMS)], interval_s=P1_INTERVAL_S)
    sim.__enter__()
    toml = (f'[[bus]]\nid = "p1-1"\nport = "{sim.port_path}"\nbaudrate = 115200\n\n'
            f'[[meter]]\nid = "{P1_METER}"\nbus = "p1-1"\nprotocol = "dsmr"\n'
            f'[meter.mbus_meters]\n1 = "{P1_GAS_METER}"\n\n')
    return Simulation(toml, 2, 1, lambda: sim.__exit__(None, None, None))
