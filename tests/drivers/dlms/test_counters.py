"""Invocation counters across restarts, and the DLMS key file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.clock import FakeClock
from drivers.dlms.client import Association, Authentication, Credentials
from drivers.dlms.counters import CounterFile, CounterFileError
from drivers.dlms.errors import ReplayRefused
from drivers.dlms.hdlc import Address
from drivers.dlms.keys import DlmsKeyFile, DlmsKeyFileError
from drivers.dlms.links import HdlcLink
from drivers.dlms.security import Keys
from drivers.dlms.server import CosemServer, ServerSettings
from drivers.dlms.sim import HdlcServerLink, LoopbackStream
from drivers.dlms.sim_objects import ENERGY_OBIS, SimObjects

KEYS = Keys(bytes(range(16)), bytes(range(16, 32)))
METER = Address(1, 17, 2)


def test_a_restart_never_reuses_a_client_counter(tmp_path: Path) -> None:
    path = tmp_path / "dlms-counters.json"
    first = CounterFile(path, reserve=10)
    used = [first.next_client("m1") for _ in range(15)]
    again = CounterFile(path, reserve=10)  # the process died: nothing flushed
    assert again.next_client("m1") > max(used)
    assert used == list(range(1, 16))


def test_the_file_covers_a_counter_before_it_is_handed_out(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    counters = CounterFile(path, reserve=5)
    for _ in range(12):
        counter = counters.next_client("m")
        assert CounterFile(path).next_client("m") > counter  # what a crash now would resume at
    assert counters.writes == 3  # one write per 5 counters, not one per APDU
    assert path.stat().st_mode & 0o777 == 0o600


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=8), st.integers(1, 7))
def test_no_counter_twice_over_any_restarts(runs: list[int], reserve: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.json"
        seen: list[int] = []
        for uses in runs:
            counters = CounterFile(path, reserve=reserve)
            seen += [counters.next_client("m") for _ in range(uses)]
        assert len(seen) == len(set(seen)) and seen == sorted(seen)


def test_the_server_counter_is_checked_against_the_last_seen_after_a_restart(
        tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    counters = CounterFile(path)
    counters.server_guard("m").accept(41)
    counters.flush()
    guard = CounterFile(path).server_guard("m")
    with pytest.raises(ReplayRefused):
        guard.check(41)
    guard.check(42)


def test_an_unsafe_or_malformed_counter_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    CounterFile(path).next_client("m")
    os.chmod(path, 0o644)
    with pytest.raises(CounterFileError, match="chmod 600"):
        CounterFile(path)
    os.chmod(path, 0o600)
    path.write_text('{"format": 1, "meters": {"m": {"client_reserved": -3}}}')
    with pytest.raises(CounterFileError, match="counter"):
        CounterFile(path)


async def _associate(far: HdlcServerLink, counters: CounterFile) -> Association:
    link = HdlcLink(LoopbackStream(far), Address(1), METER)
    await link.open()
    association = Association(link, Credentials(Authentication.HLS_GMAC, keys=KEYS,
                                                ciphered=True),
                              own_counter=lambda: counters.next_client("m"),
                              server_guard=counters.server_guard("m"))
    await association.associate()
    return association


async def test_the_meter_accepts_the_gateway_after_a_restart_with_the_counter_file(
        tmp_path: Path) -> None:
    far = HdlcServerLink(CosemServer(SimObjects(FakeClock().wall_ms), ServerSettings(keys=KEYS)),
                         METER)
    path = tmp_path / "c.json"
    association = await _associate(far, CounterFile(path))
    await association.get(3, ENERGY_OBIS, 2)
    # killed here: no release, no flush; the meter remembers the counters it saw
    restarted = CounterFile(path)
    association = await _associate(far, restarted)
    assert (await association.get(3, ENERGY_OBIS, 2)).value == 12_345_678 + 4 * 250
    await association.release()
    restarted.flush()
    assert CounterFile(path).server_last("m") is not None


def test_the_key_file_keeps_secrets_private(tmp_path: Path) -> None:
    path = tmp_path / "dlms-keys"
    keys = DlmsKeyFile(path)
    keys.add("meter-1", "encryption", "000102030405060708090A0B0C0D0E0F")
    keys.add("meter-1", "authentication", "101112131415161718191A1B1C1D1E1F")
    keys.add("meter-2", "password", "12345678")
    again = DlmsKeyFile(path)
    assert again.ids() == ["meter-1", "meter-2"]
    assert again.secrets("meter-1").keys() == KEYS
    assert again.secrets("meter-2").password == b"12345678"
    assert "0001" not in repr(again) + repr(again.secrets("meter-1"))
    assert path.stat().st_mode & 0o777 == 0o600
    assert again.remove("meter-2") and DlmsKeyFile(path).ids() == ["meter-1"]


def test_a_bad_key_line_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "dlms-keys"
    path.write_text("meter-1 encryption 0011SECRET\n")
    path.chmod(0o600)
    with pytest.raises(DlmsKeyFileError) as error:
        DlmsKeyFile(path)
    assert "SECRET" not in str(error.value) and ":1:" in str(error.value)
    path.chmod(0o640)
    with pytest.raises(DlmsKeyFileError, match="group/others"):
        DlmsKeyFile(path)
