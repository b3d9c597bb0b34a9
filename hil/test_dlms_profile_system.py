"""Whole system: the real `gateway run` reads a simulated DLMS meter's load profile and
billing profile over HDLC on a pty and over the TCP wrapper, with HLS-GMAC and suite 0, and
stores every interval once, exactly, flagged as the meter's own record, across a power cut of
the gateway (SIGKILL), a meter outage (the meter silent while rows go on accumulating in it:
the missing interval is read when it answers again) and a clean stop (SIGTERM).

The simulated meter closes a load-profile interval every `PERIOD_S` (2 s) instead of 15 min
so that the test sees dozens of intervals in a minute; nothing in the gateway depends on the
period (the range asked is from the gateway's mark to now)."""

from __future__ import annotations

import sqlite3
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.dlms.keys import DlmsKeyFile
from drivers.dlms.security import Keys
from drivers.dlms.server import ServerSettings
from drivers.dlms.simhost import SimHost
from storage.records import FLAG_METER_RECORD
from storage.store import Store
from tests.harness.eventually import eventually
from tests.harness.gateway_process import GatewayProcess, query

KEYS = Keys(bytes.fromhex("000102030405060708090A0B0C0D0E0F"),
            bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"))
PERIOD_S = 2
STEP_DEADLINE_S = 90.0  # bounds a broken wait, never a speed requirement


def _bus(host: SimHost) -> str:
    if host.kind == "hdlc":
        lines = [f'port = "{host.port_path}"', "baudrate = 9600"]
    else:
        lines = ['kind = "tcp"', 'host = "127.0.0.1"', f"tcp_port = {host.port}"]
    return "\n        ".join(lines)  # the indentation of the config text below


def _config(tmp_path: Path, bus: str) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text(textwrap.dedent(f"""
        gateway_id = "gw-hil-dlms-lp"
        timezone = "UTC"

        [storage]
        path = "{tmp_path / 'gw.db'}"
        commit_interval_ms = 200

        [[bus]]
        id = "line"
        {bus}

        [[meter]]
        id = "flat-7"
        bus = "line"
        protocol = "dlms"
        address = 17
        poll_interval_s = 1
        timeout_ms = 1000
        client = 1
        authentication = "hls_gmac"
    """))
    return config


def _newest_record(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        rows = query(db, "SELECT max(ts_ms) FROM readings WHERE flags & ?",
                     (FLAG_METER_RECORD,))
    except sqlite3.OperationalError:  # created, not migrated yet
        return 0
    return int(rows[0][0] or 0)


def _wait_stored(gateway: GatewayProcess, db: Path, at_ms: int, what: str) -> None:
    def stored() -> int:
        gateway.assert_running()
        newest = _newest_record(db)
        assert newest >= at_ms, f"newest record {newest}, waiting for {at_ms}"
        return newest
    eventually(stored, STEP_DEADLINE_S, what)


@pytest.mark.parametrize("kind", ["hdlc", "tcp"])
def test_load_profile_stored_once_across_a_power_cut_and_a_meter_outage(
        tmp_path: Path, kind: str) -> None:
    keys = DlmsKeyFile(tmp_path / "dlms-keys")
    keys.add("flat-7", "encryption", KEYS.encryption.hex())
    keys.add("flat-7", "authentication", KEYS.authentication.hex())
    db, log = tmp_path / "gw.db", tmp_path / "gateway.log"
    with SimHost(kind, ServerSettings(keys=KEYS), capture_period_s=PERIOD_S) as host:
        config = _config(tmp_path, _bus(host))

        def newest_row_ms() -> int:
            rows = host.call(host.objects.profile_rows)
            return int(rows[-1][0].timestamp() * 1000)

        with GatewayProcess(config, log) as gateway:
            _wait_stored(gateway, db, newest_row_ms() + 2 * PERIOD_S * 1000, "rows before")
            assert gateway.kill() != 0  # a power cut: rows read but not committed are lost
        with GatewayProcess(config, log) as gateway:
            _wait_stored(gateway, db, newest_row_ms() + PERIOD_S * 1000, "rows after restart")
            faults = host.faults
            host.call(setattr, faults, "silent", True)
            silent_from = newest_row_ms()

            def outage_long_enough() -> bool:
                tried = host.call(lambda: faults.unheard_bytes)
                return tried > 0 and newest_row_ms() >= silent_from + 4 * PERIOD_S * 1000
            eventually(outage_long_enough, STEP_DEADLINE_S, "rows accumulating while silent")
            assert _newest_record(db) <= newest_row_ms() - 3 * PERIOD_S * 1000
            host.call(setattr, faults, "silent", False)
            _wait_stored(gateway, db, newest_row_ms() + PERIOD_S * 1000, "the missing rows")
            assert gateway.stop() == 0, gateway.log_tail()
        meter_rows = host.call(host.objects.profile_rows)
        billing = host.call(host.objects.billing_rows)
        start_ms = host.objects.profile_start_ms
    assert start_ms is not None
    store = Store.open(db)
    try:
        records = [r for r in store.readings_between("flat-7", 0, 2**62)
                   if r.flags & FLAG_METER_RECORD]
    finally:
        store.close()
    profile = [r for r in records if r.ts_ms >= start_ms]
    instants = [r.ts_ms for r in profile]
    # every interval from the meter's first row to the last stored, each once, in order
    assert instants == [start_ms + i * PERIOD_S * 1000 for i in range(len(instants))]
    assert len(instants) >= 12
    by_ms = {int(when.timestamp() * 1000): wh for when, wh in meter_rows}
    for reading in profile:
        values = {v.quantity: v.value for v in reading.values}
        assert values == {"import_active_energy": Decimal(by_ms[reading.ts_ms]) / 1000}
    closures = [r for r in records if r.ts_ms < start_ms]
    assert [r.ts_ms for r in closures] == [int(w.timestamp() * 1000) for w, _, _ in billing]
    assert [{v.quantity: v.value for v in r.values} for r in closures] == [
        {"import_active_energy": Decimal(imp) / 1000, "export_active_energy": Decimal(exp) / 100}
        for _, imp, exp in billing]
