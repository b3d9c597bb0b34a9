"""Whole-system: a simulated wired M-Bus of 20 meters on one pty (an echoing level converter,
answers paced to 9600 baud) is found by `gateway mbus scan --secondary`, then the real
`gateway run` reads every meter by the secondary address the scan printed, polled repeatedly,
and stores their values exactly as the reference reader of the corpus gives them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

from drivers.mbus_wired.meter_address import secondary_hex
from drivers.mbus_wired.sim import SimBus, SimMeter
from drivers.mbus_wired.simpty import BusSim, load_frames, meters_from_frames
from storage.store import Store
from tests.corpus import CORPUS
from tests.harness.gateway_process import GatewayProcess

FRAMES = load_frames(CORPUS / "mbus" / "frames.json")
BAUD = 9600
METERS = 20
POLL_S = 15          # "every minute" in the field; shorter here, the same path
POLLS = 2            # the start-up read and at least one scheduled poll
# A search of 20 meters at 9600 baud is some 250 probes of about 0.1 s; bounds a broken run.
SCAN_TIMEOUT_S = 240.0
READ_DEADLINE_S = 120.0
# Each fixture with values its reference reader (frames.json "expected") gives for it.
FIXTURES: tuple[tuple[tuple[str, ...], dict[str, tuple[str, str]]], ...] = (
    (("libmbus/abb_f95",), {"volume": ("0.074200", "m3"), "flow_temperature": ("20.4", "C"),
                            "return_temperature": ("20.4", "C")}),
    (("libmbus/tecson",), {"volume": ("45.600000", "m3"),
                           "external_temperature": ("9.000000", "C")}),
    (("libmbus/itron_cyble_m-bus_v1.4_cold_water",), {"volume": ("453.500000", "m3")}),
    (("libmbus/engelmann_sensostar2c",), {"volume": ("12.900000", "m3"),
                                          "heat_energy": ("800.000000", "kWh")}),
    # two telegrams (DIF 0x1F, then the last): values of both land in one reading
    (("libmbus/ELV-Elvaco-CMa10", "libmbus/LGB_G350"), {
        "external_temperature": ("20.940000", "C"), "serial_number": ("24011561", ""),
        "error_flags": ("00", "")}),
)


def _meters() -> list[SimMeter]:
    meters = meters_from_frames([[FRAMES[n] for n in names] for names, _ in FIXTURES], METERS,
                                seed=2013)
    for meter in meters:
        meter.baud = BAUD
    return meters


def _scan(port: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "mbus", "scan", "--port", port,
                           "--secondary", "--baud", str(BAUD)], capture_output=True, text=True,
                          timeout=SCAN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["address"] for line in done.stdout.splitlines()]


def _config(tmp_path: Path, port: str, addresses: list[str]) -> Path:
    meters = "".join(textwrap.dedent(f"""
        [[meter]]
        id = "flat-{index:02d}"
        bus = "riser"
        protocol = "mbus"
        address = "{address}"
        poll_interval_s = {POLL_S}
    """) for index, address in enumerate(addresses))
    config = tmp_path / "gateway.toml"
    config.write_text(textwrap.dedent(f"""
        gateway_id = "gw-hil-mbus"
        timezone = "UTC"

        [storage]
        path = "{tmp_path / 'gw.db'}"

        [[bus]]
        id = "riser"
        port = "{port}"
        baudrate = {BAUD}
        parity = "E"
    """) + meters)
    return config


def _stored(db: Path, meter_ids: list[str]) -> dict[str, dict[str, tuple[object, str]]]:
    store = Store.open(db)
    try:
        return {m: {v.quantity: (v.value, v.unit) for v in store.last_readings(m, 1)[0].values}
                for m in meter_ids}
    finally:
        store.close()


def _expected(meter: SimMeter) -> dict[str, tuple[object, str]]:
    names = next(n for n, _ in FIXTURES if meter.telegrams[0] in _payloads(n))
    values = dict(FIXTURES)[names]
    return {q: (Decimal(v) if unit else v, unit) for q, (v, unit) in values.items()}


def _payloads(names: tuple[str, ...]) -> list[bytes]:
    return SimMeter.from_frames([FRAMES[n] for n in names]).telegrams


def test_twenty_meters_found_by_secondary_search_then_polled_and_stored(tmp_path: Path
                                                                        ) -> None:
    meters = _meters()
    with BusSim(SimBus(meters, echo=True)) as sim:
        addresses = _scan(sim.port_path)
        assert sorted(addresses) == sorted(secondary_hex(m.secondary) for m in meters)
        sim.reset_line()   # the gateway opens the pty again at the same 8E1 (see reset_line)
        config = _config(tmp_path, sim.port_path, addresses)
        by_address = {secondary_hex(m.secondary): m for m in meters}
        ids = [f"flat-{i:02d}" for i in range(len(addresses))]
        with GatewayProcess(config, tmp_path / "gateway.log") as gateway:
            gateway.wait_for_readings(tmp_path / "gw.db", ids, at_least=POLLS,
                                      deadline_s=READ_DEADLINE_S)
            assert gateway.stop() == 0, gateway.log_tail()
    stored = _stored(tmp_path / "gw.db", ids)
    for meter_id, address in zip(ids, addresses, strict=True):
        expected = _expected(by_address[address])
        got = {q: stored[meter_id].get(q) for q in expected}
        assert got == expected, meter_id
