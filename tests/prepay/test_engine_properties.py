"""Property: through the engine, any mix of readings, replays and top-ups keeps money exact."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness.lingering import run_checked
from tests.prepay.rig import Rig, site_config

PRICE = 3000  # flat tariff of the rig: 0.30 per kWh

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(0, 5000)),  # Wh consumed since the last reading
        st.tuples(st.just("replay"), st.integers(0, 10)),  # re-send one of the last readings
        st.tuples(st.just("topup"), st.integers(0, 6)),  # txid number: repeats happen
    ),
    max_size=30,
)


@settings(max_examples=25, deadline=None)
@given(STEPS)
def test_money_exact_under_replays(steps: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig(Path(tmp), site_config())
        try:
            run_checked(_drive(rig, steps))
        finally:
            rig.store.close()


async def _drive(rig: Rig, steps: list[tuple[str, int]]) -> None:
    sent: list[tuple[int, int, int]] = []  # (reading id, ts, Wh)
    wh = 0
    txids: set[int] = set()
    for kind, n in steps:
        rig.advance(60)
        if kind == "read":
            wh += n
            sent.append((len(sent) + 1, rig.now, wh))
            rig.read("shop-1", f"{wh // 1000}.{wh % 1000:03d}", rid=len(sent))
        elif kind == "replay" and sent:
            rid, ts, old = sent[-1 - n % len(sent)]
            now, rig.now = rig.now, ts
            rig.read("shop-1", f"{old // 1000}.{old % 1000:03d}", rid=rid)
            rig.now = now
        elif kind == "topup":
            await rig.topup("shop-1", "3.00", f"tx-{n}")
            txids.add(n)
    acc = rig.account("shop-1")
    first = sent[0][2] if sent else 0
    assert acc.loaded_total == 30000 * len(txids)
    assert acc.charged_total * 1000 + acc.carry == (wh - first) * PRICE
    assert acc.balance == acc.loaded_total - acc.charged_total
    assert acc.balance == acc.credit - acc.debt - acc.emergency
