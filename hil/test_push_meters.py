"""Whole system: pushed meters (DSMR P1 over a pty, wireless M-Bus through a simulated iM871A
dongle) read by the real `gateway run` process into storage with exact values."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from drivers.iec62056.sim import P1Sim
from drivers.mbus.records import RecordSpec
from drivers.wmbus.builder import build_frame, build_payload
from drivers.wmbus.keys import KeyStore
from drivers.wmbus.sim import DongleSimulator
from storage.store import Store
from tests.corpus import CORPUS
from tests.harness.gateway_process import GatewayProcess

KEY = "00112233445566778899AABBCCDDEEFF"
ARRIVAL_DEADLINE_S = 60  # bounds a broken wait, not a speed requirement


def run_until_stored(config: Path, db: Path, meter_id: str, log: Path) -> None:
    with GatewayProcess(config, log) as gateway:
        gateway.wait_for_readings(db, [meter_id], at_least=2, deadline_s=ARRIVAL_DEADLINE_S)
        assert gateway.stop() == 0, gateway.log_tail()


def config_text(tmp_path: Path, bus: str, meter: str) -> str:
    return (f'gateway_id = "gw-push"\n[storage]\npath = "{tmp_path / "gw.db"}"\n'
            f"commit_interval_ms = 200\n[board]\nstate_dir = \"{tmp_path / 'board'}\"\n"
            f"{bus}\n{meter}\n")


def test_dsmr_p1_telegrams_are_stored_exactly(tmp_path: Path) -> None:
    telegrams = json.loads((CORPUS / "iec62056/dsmr_telegrams.json").read_text())
    first = telegrams[0]["telegram"].encode("latin-1")
    with P1Sim([first], interval_s=0.3) as sim:
        config = tmp_path / "site.toml"
        config.write_text(config_text(
            tmp_path,
            f'[[bus]]\nid = "p1"\nport = "{sim.port_path}"\nbaudrate = 115200',
            '[[meter]]\nid = "home-1"\nbus = "p1"\nprotocol = "dsmr"'))
        run_until_stored(config, tmp_path / "gw.db", "home-1", tmp_path / "gw.log")
    store = Store.open(tmp_path / "gw.db", create=False)
    try:
        readings = store.last_readings("home-1", 10)
    finally:
        store.close()
    assert len(readings) >= 2
    values = {v.quantity: v.value for v in readings[0].values}
    assert values["import_active_energy_t1"] == Decimal("4.426")


def test_dsmr_p1_gas_sub_meter_is_stored_under_its_id_at_the_capture_time(
    tmp_path: Path,
) -> None:
    telegrams = json.loads((CORPUS / "iec62056/dsmr_telegrams.json").read_text())
    ziv = next(t for t in telegrams if "ZIV 5CTA3" in t["version"])["telegram"]
    with P1Sim([ziv.encode("latin-1")], interval_s=0.3) as sim:
        config = tmp_path / "site.toml"
        config.write_text(config_text(
            tmp_path,
            f'[[bus]]\nid = "p1"\nport = "{sim.port_path}"\nbaudrate = 115200',
            '[[meter]]\nid = "home-1"\nbus = "p1"\nprotocol = "dsmr"\n'
            '[meter.mbus_meters]\n1 = "home-gas"'))
        run_until_stored(config, tmp_path / "gw.db", "home-1", tmp_path / "gw.log")
    store = Store.open(tmp_path / "gw.db", create=False)
    try:
        gas = store.last_readings("home-gas", 10)
        home = store.last_readings("home-1", 1)
    finally:
        store.close()
    # one reading per capture (the telegram repeats it every push), at 230925160000S = 14:00 UTC
    assert [r.ts_ms for r in gas] == [1_695_650_400_000]
    values = {v.quantity: (v.value, v.unit) for v in gas[0].values}
    assert values["volume"] == (Decimal("4611.403"), "m3")
    assert values["meter_datetime"] == ("2023-09-25T16:00:00+02:00", "")
    assert values["serial_number"] == ("G0072004001819220", "")
    assert "volume" not in {v.quantity for v in home[0].values}


def test_wireless_mbus_telegrams_are_decrypted_and_stored(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "wmbus.keys")
    keys.add("33333333", KEY)
    frames = [build_frame("KAM", "33333333", 1, 7,
                          build_payload([RecordSpec(0xC, 0x13, 1000 + n)]),
                          access_number=n, key=bytes.fromhex(KEY)) for n in range(1, 40)]
    sim = DongleSimulator("im871a", frames, tmp_path / "im.tty", interval_s=0.2)
    sim.start()
    try:
        config = tmp_path / "site.toml"
        config.write_text(config_text(
            tmp_path,
            f'[[bus]]\nid = "radio"\nport = "{sim.path}"\ndongle = "im871a"\n'
            f'link_mode = "T1"\nkey_file = "{tmp_path / "wmbus.keys"}"',
            '[[meter]]\nid = "water-7"\nbus = "radio"\nprotocol = "wmbus"\n'
            'commodity = "water"\naddress = "33333333"'))
        run_until_stored(config, tmp_path / "gw.db", "water-7", tmp_path / "gw.log")
    finally:
        sim.stop()
    store = Store.open(tmp_path / "gw.db", create=False)
    try:
        readings = store.last_readings("water-7", 100)
    finally:
        store.close()
    assert len(readings) >= 2
    for reading in readings:
        (value,) = [v for v in reading.values if v.quantity == "volume"]
        assert value.unit == "m3"
        # VIF 0x13 is litres: 1000 + n litres is exactly 1.0nn m3
        assert Decimal("1.001") <= Decimal(value.value) <= Decimal("1.039")
        assert Decimal(value.value).as_tuple().exponent == -3
