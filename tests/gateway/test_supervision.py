"""The watchdogs are fed only while buses, storage and the uplink task are alive."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from board.simulated import SimulatedBoard
from board.watchdog import SystemdNotifier
from gateway.app.supervision import STALE_S, ClockState, Supervisor
from tests.harness.eventually import eventually_async

ROUND_DEADLINE_S = 10.0  # bounds a broken wait, not a speed requirement


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FedOnce:
    """The supervisor's sleep: notes that a feed round ended, then waits until cancelled."""

    def __init__(self) -> None:
        self.fed = asyncio.Event()

    async def __call__(self, _seconds: float) -> None:
        self.fed.set()
        await asyncio.Event().wait()


async def one_round(sup: Supervisor, rounds: FedOnce) -> None:
    """Run the supervisor until it has fed (or withheld) the watchdogs once, then stop it."""
    rounds.fed.clear()
    task = asyncio.create_task(sup.run())
    await asyncio.wait_for(rounds.fed.wait(), ROUND_DEADLINE_S)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_kicks_stop_when_a_bus_hangs_and_resume_when_it_steps(tmp_path: Path) -> None:
    sock_path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(sock_path)
    server.setblocking(False)
    board = SimulatedBoard(tmp_path / "board")
    clock = Clock()
    rounds = FedOnce()
    sup = Supervisor(board, notifier=SystemdNotifier(sock_path), mono=clock, sleep=rounds)
    beats = {"bus-1": 100.0, "storage": 100.0}
    sup.alive_checks = {name: (lambda n=name: beats[n]) for name in beats}  # type: ignore[misc]
    assert sup.stale() == []
    clock.now += STALE_S + 1  # the bus read never returned, storage still commits
    beats["storage"] = clock.now
    assert sup.stale() == ["bus-1"]
    await one_round(sup, rounds)
    assert board.watchdog_kicks == 0 and sup.withheld >= 1
    messages = server.recv(64)
    assert messages.startswith(b"READY=1")  # ready, but no WATCHDOG=1 while a bus hangs
    beats["bus-1"] = clock.now
    assert sup.stale() == []
    await one_round(sup, rounds)
    assert board.watchdog_kicks == 1
    server.close()


async def test_a_crashed_critical_task_is_stale_but_a_running_one_is_not(tmp_path: Path) -> None:
    held = asyncio.Event()  # the crashed one stays in its restart pause

    async def pause(_seconds: float) -> None:
        await held.wait()

    sup = Supervisor(SimulatedBoard(tmp_path), notifier=SystemdNotifier(None), sleep=pause)

    async def crash() -> None:
        raise RuntimeError("bug")

    sup.spawn("uplink", lambda: asyncio.sleep(10), critical=False)
    crashed = sup.spawn("other", crash)
    await eventually_async(lambda: crashed.down, ROUND_DEADLINE_S, "the crash seen")
    assert sup.stale() == ["other"]
    await sup.stop()


async def test_clock_state_flags_until_the_probe_says_synced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([False, True])
    state = ClockState(lambda: next(answers))
    assert state() is False
    monkeypatch.setattr("gateway.app.supervision.CLOCK_CHECK_S", 0.01)
    await asyncio.wait_for(state.run(), 5)
    assert state() is True
    assert ClockState(None)() is True  # no probe: the host clock is trusted


def test_the_service_asks_the_board_for_its_disk_check_and_clock_probe(tmp_path: Path) -> None:
    from board.disk import StartupCheck, startup_check
    from gateway.app.service import Service
    from gateway.config.loader import load_config

    class CheckingBoard(SimulatedBoard):  # a board with the capabilities a real one has
        def clock_probe(self) -> Callable[[], bool] | None:
            return lambda: False

        def disk_check(self, data_dir: Path, database: Path) -> StartupCheck | None:
            return startup_check(data_dir, database, min_free_bytes=1)

    (tmp_path / "site.toml").write_text('gateway_id = "gw"\n[storage]\npath = "gw.db"\n')
    config = load_config(tmp_path / "site.toml")
    plain = Service(config, board=SimulatedBoard(tmp_path / "board"))
    assert plain.clock_synced() is True  # no probe: the host clock is trusted
    plain.open()
    assert plain.store is not None
    assert "startup_disk_check" not in [e.kind for e in plain.store.recent_events(10)]
    plain.store.close()
    logging.getLogger().removeHandler(plain.log_ring)  # open() starts feeding the console's ring
    service = Service(config, board=CheckingBoard(tmp_path / "board"))
    assert service.clock_synced() is False
    service.open()
    assert service.store is not None
    checks = [e for e in service.store.recent_events(10) if e.kind == "startup_disk_check"]
    assert len(checks) == 1 and checks[0].data["problems"] == []
    service.store.close()
    logging.getLogger().removeHandler(service.log_ring)
