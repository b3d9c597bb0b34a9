"""A simulated Modbus site: simulator processes on real ptys / sockets, and a config for them.

Used by `gateway demo` (through the modbus plugin's `simulate`, so `make run` works), the
whole-system tests in hil/ and `make bench`, so the three exercise the very same site.
Simulators run as separate processes, like real meters do.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

# The simulator prints its ports on its first line; past this it failed to start.
SIM_START_TIMEOUT_S = 20.0
SIM_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class SimMeter:
    id: str
    address: int
    profile: str
    seed: int


@dataclass(frozen=True)
class SimBus:
    id: str
    transport: str  # "rtu" | "tcp" | "rtu_tcp" (RTU frames over TCP: a serial device server)
    meters: tuple[SimMeter, ...]


@dataclass
class RunningSim:
    process: subprocess.Popen[str]
    ports: dict[str, dict[str, Any]]  # bus id -> {"path"} or {"host", "port"}
    record_file: Path
    buses: tuple[SimBus, ...] = field(default_factory=tuple)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(SIM_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


DEMO_SITE: tuple[SimBus, ...] = (
    SimBus("rs485-1", "rtu", (
        SimMeter("shop-01", 1, "eastron_sdm630", 1),
        SimMeter("shop-02", 2, "eastron_sdm120", 2),
        SimMeter("shop-03", 3, "gavazzi_em340", 3),
    )),
    SimBus("rs485-2", "rtu", (
        SimMeter("flat-11", 11, "eastron_sdm120", 11),
        SimMeter("flat-12", 12, "gavazzi_em24", 12),
    )),
    SimBus("plant-tcp", "tcp", (
        SimMeter("incomer", 1, "circutor_cvm_c10", 21),
        SimMeter("lifts", 2, "abb_b23", 22),
    )),
)


def large_site(buses: int, meters_per_bus: int) -> tuple[SimBus, ...]:
    """A bench site: `buses` RTU lines of `meters_per_bus` meters of mixed profiles."""
    profiles = ("eastron_sdm630", "gavazzi_em340", "eastron_sdm120", "abb_b23")
    return tuple(
        SimBus(f"rs485-{b + 1}", "rtu", tuple(
            SimMeter(f"m{b + 1:02d}-{a:03d}", a, profiles[a % len(profiles)], b * 1000 + a)
            for a in range(1, meters_per_bus + 1)))
        for b in range(buses))


def start_simulators(site: tuple[SimBus, ...], state_dir: Path,
                     stderr: TextIO | None = None, *,
                     pace: dict[str, int] | None = None) -> RunningSim:
    """Start one simulator process serving every bus of the site; returns once it listens.
    `pace` ({"baudrate": 9600, "turnaround_ms": 20}) makes every meter answer at line speed."""
    state_dir.mkdir(parents=True, exist_ok=True)
    record = state_dir / "served.jsonl"
    spec = {"record": str(record),
            "buses": [{**_bus_spec(bus, state_dir), **(pace or {})} for bus in site]}
    spec_path = state_dir / "sim-spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    process = subprocess.Popen(
        [sys.executable, "-m", "drivers.modbus.sim", "--spec", str(spec_path)],
        stdout=subprocess.PIPE, stderr=stderr if stderr is not None else subprocess.DEVNULL,
        text=True, start_new_session=True)
    line = _first_line(process)
    ports = {bus["name"]: bus for bus in json.loads(line)["buses"]}
    return RunningSim(process, ports, record, site)


def _bus_spec(bus: SimBus, state_dir: Path) -> dict[str, Any]:
    slaves = [{"address": m.address, "profile": m.profile, "seed": m.seed} for m in bus.meters]
    if bus.transport in ("tcp", "rtu_tcp"):
        return {"name": bus.id, "transport": bus.transport, "host": "127.0.0.1", "port": 0,
                "slaves": slaves}
    return {"name": bus.id, "transport": "rtu", "pty_dir": str(state_dir),
            "link_name": f"tty-{bus.id}", "slaves": slaves}


def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + SIM_START_TIMEOUT_S
    os.set_blocking(process.stdout.fileno(), True)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip().startswith("{"):
            return line
        if process.poll() is not None:
            break
    with contextlib.suppress(Exception):
        process.kill()
    raise RuntimeError("the Modbus simulator did not start (run `python -m drivers.modbus.sim "
                       "--spec FILE` to see why)")


def site_config(sim: RunningSim, state_dir: Path, *, gateway_id: str = "gw-demo",
                poll_interval_s: int = 5, commit_interval_ms: int = 1000,
                extra: str = "", baudrate: int = 9600) -> str:
    """The TOML config of a gateway reading every simulated meter."""
    lines = [f'gateway_id = "{gateway_id}"', "",
             "[storage]", f'path = "{state_dir / "gateway.db"}"',
             f"commit_interval_ms = {commit_interval_ms}", "",
             "[board]", 'kind = "simulated"', f'state_dir = "{state_dir / "board"}"', ""]
    return ("\n".join(lines) + "\n"
            + buses_toml(sim, poll_interval_s=poll_interval_s, baudrate=baudrate) + extra)


def buses_toml(sim: RunningSim, *, poll_interval_s: int = 5, baudrate: int = 9600) -> str:
    """The [[bus]] and [[meter]] tables of the simulated site."""
    lines: list[str] = []
    for bus in sim.buses:
        port = sim.ports[bus.id]
        lines += ["[[bus]]", f'id = "{bus.id}"']
        if bus.transport in ("tcp", "rtu_tcp"):
            lines += ['kind = "tcp"', f'host = "{port["host"]}"', f"tcp_port = {port['port']}"]
            lines += ['framing = "rtu"'] if bus.transport == "rtu_tcp" else []
        else:
            lines += [f'port = "{port["path"]}"', f"baudrate = {baudrate}"]
        lines.append("")
    for bus in sim.buses:
        for meter in bus.meters:
            lines += ["[[meter]]", f'id = "{meter.id}"', f'bus = "{bus.id}"',
                      'protocol = "modbus"', f"address = {meter.address}",
                      f'profile = "{meter.profile}"', f"poll_interval_s = {poll_interval_s}",
                      "timeout_ms = 500", ""]
    return "\n".join(lines) + "\n"
