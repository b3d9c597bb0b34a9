"""Power cuts (SIGKILL at random moments) never lose or double money in the prepay ledger.

A worker process (this file run as a script) feeds a deterministic stream of readings and
server top-ups through PrepayEngine into a real store and the simulated board; on start it
resumes a few steps *before* where the store says it stopped, so every restart also replays
readings and top-ups that were already committed. The test kills it at random moments, lets it
finish, and checks the money exactly.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

STEPS = 400  # readings in the whole run
STEP_MS = 60_000
WH_PER_STEP = 137  # 0.137 kWh per reading
PRICE = 3000  # 0.30 per kWh, in 1/10000 currency units
TOPUP_EVERY = 7  # a 5.00 top-up every 7th step
TOPUP = 50_000
KILLS = 8
REPLAY_STEPS = 3  # a restart redoes this many committed steps: replays must change nothing
START_MS = 1_772_600_000_000  # a Wednesday morning in March 2026 (UTC)
WORKER_TIMEOUT_S = 120  # one full run takes ~2 s; a stuck worker fails the test, not CI


def _config() -> dict:
    return {
        "timezone": "UTC",
        "currency": "EUR",
        "debt_share_percent": 100,
        "tariffs": {"flat": {"currency": "EUR", "versions": [
            {"effective_from": "2026-01-01", "price": "0.30"}]}},
        "meters": {"m1": {"tariff": "flat", "relay": "relay-1", "mode": "manual"}},
    }


def _open(workdir: Path):  # type: ignore[no-untyped-def]
    from board.interface import OutputSpec
    from board.simulated import SimulatedBoard
    from gateway.wiring.prepay import BoardRelays
    from prepay.commands import PrepayCommands
    from prepay.engine import PrepayEngine
    from prepay.settings import settings_from_config
    from storage import ledger
    from storage.store import Store

    store = Store.open(workdir / "gw.db")
    store.register_outbox_kind(ledger.OUTBOX_KIND, ledger.OUTBOX_PRIORITY, ledger.outbox_bodies)
    board = SimulatedBoard(workdir / "board")
    board.declare([OutputSpec("relay-1")], [])
    clock = {"now": START_MS}
    engine = PrepayEngine(settings_from_config(_config()), store, BoardRelays(board),
                          lambda: clock["now"])
    return store, engine, PrepayCommands(engine), clock


def worker(workdir: Path) -> None:
    from storage import ledger
    from storage.records import ReadingSet, StoredValue

    store, engine, commands, clock = _open(workdir)
    mark = ledger.mark(store.db.conn, "m1", "total")
    done = -1 if mark is None else (mark[1] - START_MS) // STEP_MS
    for step in range(max(0, done - REPLAY_STEPS), STEPS):
        clock["now"] = START_MS + step * STEP_MS
        if step % TOPUP_EVERY == 0:
            args = {"meter": "m1", "amount": "5.00", "txid": f"tx-{step}"}
            asyncio.run(commands.credit_topup(args, None))
        energy = Decimal(step * WH_PER_STEP) / 1000
        value = StoredValue("import_active_energy", energy, "kWh")
        with store.transaction() as tx:
            engine.on_readings(tx, [ReadingSet("m1", clock["now"], (value,), id=step + 1)])
        sys.stdout.write(f"step {step}\n")
        sys.stdout.flush()
    store.close()
    sys.stdout.write("worker finished\n")


def _run(workdir: Path, kill_at_step: int | None) -> bool:
    """Run the worker; SIGKILL it right after it reports `kill_at_step` (mid-transaction of
    the next step, wherever that happens to be). True when it ran to the end."""
    proc = subprocess.Popen([sys.executable, __file__, str(workdir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    finished = False
    try:
        for line in proc.stdout:
            finished = finished or line.startswith("worker finished")
            if kill_at_step is not None and line == f"step {kill_at_step}\n":
                proc.send_signal(signal.SIGKILL)
                break
        _, err = proc.communicate(timeout=WORKER_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"worker failed ({proc.returncode}): {err[-2000:]}")
    return finished


def test_sigkill_never_loses_or_doubles_money(tmp_path: Path) -> None:
    from storage import ledger
    from storage.store import Store

    rnd = random.Random(4)
    kill_steps = sorted(rnd.sample(range(5, STEPS - 5), KILLS))
    for step in kill_steps:
        assert not _run(tmp_path, step)
    assert _run(tmp_path, None)
    store = Store.open(tmp_path / "gw.db")
    try:
        conn = store.db.conn
        acc = ledger.verify_account(conn, "m1")
        topups = len(range(0, STEPS, TOPUP_EVERY))
        assert acc.loaded_total == topups * TOPUP
        total_energy = (STEPS - 1) * WH_PER_STEP
        assert acc.charged_total * 1000 + acc.carry == total_energy * PRICE
        assert acc.balance == acc.loaded_total - acc.charged_total
        rows = ledger.entries(conn, "m1", limit=10**6)
        assert len({e.key for e in rows}) == len(rows)
        outbox_refs = [r[0] for r in conn.execute(
            "SELECT ref FROM outbox WHERE kind = 'ledger' ORDER BY ref")]
        assert outbox_refs == [e.id for e in rows]
    finally:
        store.close()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    worker(Path(sys.argv[1]))
