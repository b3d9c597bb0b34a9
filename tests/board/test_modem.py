"""Modem supervision: mmcli JSON parsing, uplink detection, escalation, a real mmcli process."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from board.modem import (
    Action,
    BearerStatus,
    ModemError,
    ModemManagerCli,
    ModemPolicy,
    ModemStatus,
    ModemSupervisor,
    ModemWatch,
    default_route_interface,
    parse_bearer,
    parse_modem,
    parse_modem_list,
    uplink_kind,
)

FIXTURES = Path(__file__).with_name("fixtures") / "mmcli"
FAKE_MMCLI = Path(__file__).with_name("fake_mmcli.py")


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_parse_connected_modem_and_bearer() -> None:
    modem = parse_modem(fixture("modem-connected.json"))
    assert (modem.index, modem.state, modem.signal_quality) == (0, "connected", 71)
    assert modem.access_technologies == ("lte",)
    assert (modem.registration, modem.operator) == ("home", "Telekom.de")
    assert modem.bearers == ("/org/freedesktop/ModemManager1/Bearer/1",)
    bearer = parse_bearer(fixture("bearer-1.json"))
    assert bearer == BearerStatus(connected=True, interface="wwan0", bytes_rx=184467,
                                  bytes_tx=90211)
    assert parse_modem_list(fixture("modem-list.json")) == [0]
    assert parse_modem_list(fixture("modem-list-empty.json")) == []


def test_parse_failed_modem_reason() -> None:
    modem = parse_modem(fixture("modem-failed-sim.json"))
    assert (modem.state, modem.failed_reason, modem.operator) == ("failed", "sim-missing", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "top level"),
        ('{"modem": {}}', "missing key modem.generic"),
        ('{"modem-list": ["/org/x/Modem/zero"]}', "does not end in a number"),
        # found by make fuzz: int() refuses 4300+ digits, and isdigit() takes superscripts
        ('{"modem-list": ["/org/x/Modem/' + "9" * 5000 + '"]}', "does not end in a number"),
        ('{"modem-list": ["/org/x/Modem/\u00b2"]}', "does not end in a number"),
    ],
)
def test_bad_mmcli_output_names_key(text: str, message: str) -> None:
    with pytest.raises(ModemError, match=message):
        parse_modem(text) if "modem-list" not in text else parse_modem_list(text)


@settings(max_examples=150, deadline=None)
@given(data=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                         lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.sampled_from(
                             ["modem", "generic", "state", "bearers", "dbus-path", "bearer",
                              "status", "stats", "bytes-rx", "signal-quality", "value", "3gpp"]),
                             inner, max_size=5), max_leaves=15))
def test_fuzzed_mmcli_json_raises_only_modem_errors(data: object) -> None:
    text = json.dumps(data)
    for parse in (parse_modem, parse_bearer, parse_modem_list):
        with contextlib.suppress(ModemError):
            parse(text)


def test_default_route_picks_lowest_metric() -> None:
    assert default_route_interface(fixture("route-ethernet.txt")) == "eth0"
    assert default_route_interface(fixture("route-cellular.txt")) == "wwan0"
    assert default_route_interface("Iface\tDestination\n") is None
    assert [uplink_kind(i) for i in ("eth0", "enp1s0", "wlan0", "wwan0", "ppp0", None)] == [
        "ethernet", "ethernet", "wifi", "cellular", "cellular", "none"]


CONNECTED = parse_modem(fixture("modem-connected.json"))


def bearer(rx: int) -> BearerStatus:
    return BearerStatus(True, "wwan0", rx, 0)


def run_stuck(supervisor: ModemSupervisor, modem: ModemStatus | None, start: float,
              until: float, step: float = 30) -> list[tuple[float, Action]]:
    actions, now = [], start
    while now <= until:
        action = supervisor.observe("cellular", modem, bearer(5000), now)
        if action is not Action.NONE:
            actions.append((now, action))
        now += step
    return actions


def test_escalation_soft_resets_then_power_cycle_with_growing_wait() -> None:
    sup = ModemSupervisor(ModemPolicy(stuck_after_s=600, reset_wait_s=120), has_power_control=True)
    actions = run_stuck(sup, CONNECTED, 0, 1000)
    assert [a for _, a in actions] == [Action.MM_RESET, Action.MM_RESET, Action.POWER_CYCLE]
    times = [t for t, _ in actions]
    assert times[0] >= 600
    assert times[2] - times[1] > times[1] - times[0]  # the wait doubles
    assert sup.counters == {"stuck": 1, "mm_reset": 2, "power_cycle": 1, "recovered": 0}
    assert sup.observe("cellular", CONNECTED, bearer(9000), 1100) is Action.NONE
    assert sup.counters["recovered"] == 1


def test_no_power_line_keeps_soft_resetting_and_absent_modem_waits() -> None:
    sup = ModemSupervisor(ModemPolicy(), has_power_control=False)
    assert {a for _, a in run_stuck(sup, CONNECTED, 0, 5000)} == {Action.MM_RESET}
    lost = ModemSupervisor(ModemPolicy(), has_power_control=False)
    assert run_stuck(lost, None, 0, 5000) == []
    powered = ModemSupervisor(ModemPolicy(), has_power_control=True)
    assert run_stuck(powered, None, 0, 700)[0][1] is Action.POWER_CYCLE


def test_ethernet_uplink_never_touches_modem() -> None:
    sup = ModemSupervisor(ModemPolicy(stuck_after_s=60), has_power_control=True)
    for now in range(0, 100_000, 60):
        assert sup.observe("ethernet", CONNECTED, bearer(1), now) is Action.NONE
    assert sup.counters["stuck"] == 0


@settings(max_examples=60, deadline=None)
@given(uplinks=st.lists(st.sampled_from(["ethernet", "wifi", "cellular", "none"]), max_size=60))
def test_actions_only_ever_on_cellular(uplinks: list[str]) -> None:
    sup = ModemSupervisor(ModemPolicy(stuck_after_s=60, reset_wait_s=30), has_power_control=True)
    for i, uplink in enumerate(uplinks):
        action = sup.observe(uplink, CONNECTED, bearer(7), i * 45.0)
        assert action is Action.NONE or uplink == "cellular"


@pytest.fixture
def mmcli(tmp_path: Path) -> tuple[ModemManagerCli, Path]:
    root = tmp_path / "mm"
    root.mkdir()
    shutil.copy(FIXTURES / "modem-list.json", root / "modem-list.json")
    shutil.copy(FIXTURES / "modem-connected.json", root / "modem-0.json")
    shutil.copy(FIXTURES / "bearer-1.json", root / "bearer-1.json")
    wrapper = tmp_path / "mmcli"
    wrapper.write_text(f'#!/bin/sh\nFAKE_MMCLI_DIR="{root}" exec "{sys.executable}" '
                       f'"{FAKE_MMCLI}" "$@"\n')
    wrapper.chmod(0o755)
    return ModemManagerCli(str(wrapper)), root


async def test_watch_resets_stuck_modem_through_mmcli(mmcli: tuple[ModemManagerCli, Path],
                                                      tmp_path: Path) -> None:
    cli, root = mmcli
    route = tmp_path / "route"
    route.write_text(fixture("route-cellular.txt"))
    now = [0.0]
    sup = ModemSupervisor(ModemPolicy(stuck_after_s=600), has_power_control=False)
    watch = ModemWatch(cli, sup, route_file=route, clock=lambda: now[0])
    assert await watch.check() is Action.NONE
    assert watch.last_modem is not None and watch.last_modem.state == "connected"
    now[0] = 700.0  # bytes-rx never moved
    assert await watch.check() is Action.MM_RESET
    assert (root / "calls.log").read_text() == "reset 0\n"


async def test_watch_on_ethernet_does_not_even_ask_mmcli(mmcli: tuple[ModemManagerCli, Path],
                                                          tmp_path: Path) -> None:
    cli, root = mmcli
    route = tmp_path / "route"
    route.write_text(fixture("route-ethernet.txt"))
    now = [0.0]
    watch = ModemWatch(cli, ModemSupervisor(ModemPolicy(stuck_after_s=1), True),
                       route_file=route, clock=lambda: now[0])
    for step in range(5):
        now[0] = step * 1000.0
        assert await watch.check() is Action.NONE
    assert watch.last_modem is None
    assert not (root / "calls.log").exists()


async def test_mmcli_errors_are_modem_errors(mmcli: tuple[ModemManagerCli, Path],
                                             tmp_path: Path) -> None:
    cli, root = mmcli
    (root / "modem-0.json").unlink()
    with pytest.raises(ModemError, match="exit 1"):
        await cli.modem(0)
    with pytest.raises(ModemError, match="cannot run"):
        await ModemManagerCli(str(tmp_path / "no-mmcli")).modems()
