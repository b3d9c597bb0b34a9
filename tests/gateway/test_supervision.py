"""The watchdogs are fed only while buses, storage and the uplink task are alive."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from board.simulated import SimulatedBoard
from board.watchdog import SystemdNotifier
from gateway.app.supervision import STALE_S, ClockState, Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_kicks_stop_when_a_bus_hangs_and_resume_when_it_steps(tmp_path: Path) -> None:
    sock_path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(sock_path)
    server.setblocking(False)
    board = SimulatedBoard(tmp_path / "board")
    clock = Clock()
    sup = Supervisor(board, notifier=SystemdNotifier(sock_path), mono=clock)
    beats = {"bus-1": 100.0, "storage": 100.0}
    sup.alive_checks = {name: (lambda n=name: beats[n]) for name in beats}  # type: ignore[misc]
    assert sup.stale() == []
    clock.now += STALE_S + 1  # the bus read never returned, storage still commits
    beats["storage"] = clock.now
    assert sup.stale() == ["bus-1"]
    task = asyncio.create_task(sup.run())
    await asyncio.sleep(0.05)
    assert board.watchdog_kicks == 0 and sup.withheld >= 1
    messages = server.recv(64)
    assert messages.startswith(b"READY=1")  # ready, but no WATCHDOG=1 while a bus hangs
    task.cancel()
    beats["bus-1"] = clock.now
    assert sup.stale() == []
    task = asyncio.create_task(sup.run())
    await asyncio.sleep(0.05)
    assert board.watchdog_kicks == 1
    task.cancel()
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
    async with asyncio.timeout(5):
        while not crashed.down:
            await asyncio.sleep(0)
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


def test_disk_check_runs_on_a_real_board_config_only(tmp_path: Path) -> None:
    from dataclasses import replace

    from gateway.app.service import _disk_check
    from gateway.config.loader import load_config

    (tmp_path / "site.toml").write_text('gateway_id = "gw"\n[storage]\npath = "gw.db"\n')
    simulated = load_config(tmp_path / "site.toml")
    assert _disk_check(simulated) is None
    real = replace(simulated, board={**simulated.board, "kind": "rpi"})
    check = _disk_check(real)
    assert check.ok and check.free_bytes > 0 and check.database_bytes is None
    (tmp_path / "gw.db").write_bytes(b"not a database at all" * 10)
    assert not _disk_check(real).ok  # the header check names the bad file
