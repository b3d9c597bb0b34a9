"""Energy balance and alarms: a 7% unmetered load on one feeder raises the loss alarm once and
clears it once; a normal feeder raises nothing; each alarm on both sides of its threshold."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

from gateway.analytics.alarms import (
    AlarmBook,
    AlarmLimits,
    DemandWindow,
    Persisting,
    cos_phi,
    imbalance_percent,
    phases_lost,
    voltage_outside,
)
from gateway.analytics.balance import Node, NodeBook, day_totals
from gateway.analytics.grid import Grid
from gateway.analytics.settings import AnalyticsSettings
from gateway.wiring.analytics import AnalyticsWiring
from storage import analytics
from storage.records import ReadingSet, StoredValue
from storage.store import Store

STEP = 900_000


def test_loss_is_parent_minus_children_and_missing_children_make_it_incomplete() -> None:
    book = NodeBook(Node("f1", ("t1", "t2"), D(5), 2))
    assert book.add("f1", 0, STEP, D(10), STEP) == []
    assert book.add("t1", 0, STEP, D(6), STEP) == []
    [r] = book.add("t2", 0, STEP, D("3.3"), STEP)
    assert (r.status, r.loss, r.loss_percent) == ("complete", D("0.7"), D("7.00"))
    book.add("f1", STEP, 2 * STEP, D(10), STEP)
    book.add("t1", STEP, 2 * STEP, None, STEP)  # missing
    [r] = book.add("t2", STEP, 2 * STEP, D(3), STEP)
    assert (r.status, r.missing, r.loss) == ("incomplete", ("t1",), None)
    mixed = NodeBook(Node("f1", ("w1",), mixed_kinds=True))
    mixed.add("f1", 0, STEP, D(1), STEP)
    [r] = mixed.add("w1", 0, STEP, D(1), STEP)
    assert r.status == "incomplete"


def test_a_member_that_never_reports_is_decided_incomplete_after_the_wait() -> None:
    book = NodeBook(Node("f1", ("t1",)))
    done = []
    for n in range(6):
        done += book.add("f1", n * STEP, (n + 1) * STEP, D(1), STEP)
    assert [r.status for r in done] == ["incomplete"]
    assert done[0].missing == ("t1",)


def test_day_totals() -> None:
    book = NodeBook(Node("f1", ("t1",)))
    results = []
    for n in range(4):
        book.add("f1", n * STEP, (n + 1) * STEP, D(10), STEP)
        results += book.add("t1", n * STEP, (n + 1) * STEP, D(9), STEP)
    day = day_totals(results)
    assert day is not None and (day.parent, day.loss, day.loss_percent) == (
        D(40), D(4), D("10.00"))


def test_alarms_are_raised_once_and_cleared_once() -> None:
    book = AlarmBook()
    changes = [book.update("phase_loss", "m1", holds, n) for n, holds in
               enumerate([False, True, True, True, False, False, True])]
    assert [(c.raised, c.ts_ms) for c in changes if c is not None] == [
        (True, 1), (False, 4), (True, 6)]
    assert AlarmBook({"phase_loss:m1": 1}).update("phase_loss", "m1", True, 9) is None


def test_alarm_conditions_on_both_sides() -> None:
    window = DemandWindow()
    assert window.add(900, D("2.5")) == D(10_000)  # 2.5 kWh in 15 min: 10 kW
    block, sliding = DemandWindow(), DemandWindow(sliding=True)
    assert [block.add(300, D(n)) for n in (1, 1, 1, 2, 2, 2)] == [
        None, None, D(12_000), None, None, D(24_000)]  # 5-minute parts, one figure a block
    assert [sliding.add(300, D(n)) for n in (1, 1, 1, 2)] == [
        None, None, D(12_000), D(16_000)]  # one figure an interval once 15 min are covered
    assert cos_phi(D(3), D(4)) == D("0.6")
    assert cos_phi(D(0), D(0)) is None
    limits = AlarmLimits(voltage_low=D(207), voltage_high=D(253), phase_loss_v=D(50))
    assert voltage_outside(limits, {"l1": D(207), "l2": D(253)}) == []
    assert voltage_outside(limits, {"l1": D("206.9"), "l2": D("253.1")}) == ["l1", "l2"]
    assert phases_lost(limits, {"l1": D(230), "l2": D(50), "l3": D(230)}) == []
    assert phases_lost(limits, {"l1": D(230), "l2": D("49.9"), "l3": D(230)}) == ["l2"]
    assert phases_lost(limits, {"l1": D(0), "l2": D(0), "l3": D(0)}) == []  # a power cut
    assert imbalance_percent([D(10), D(10), D(10)]) == D(0)
    assert imbalance_percent([D(12), D(10), D(8)]) == D(40)
    persisting = Persisting()
    assert [persisting.holds(now, t, 60_000) for now, t in
            [(True, 0), (True, 59_999), (True, 60_000), (False, 70_000), (True, 80_000)]] == [
        False, False, True, False, False]


# -- a simulated site: transformer -> two feeders -> tenants; feeder-b has a stealing load --

TENANTS = {"feeder-a": ("a1", "a2"), "feeder-b": ("b1", "b2")}
START = Grid("15min", "UTC").next_after(1_767_225_600_000)


def site_settings(alarm_after: int = 3) -> AnalyticsSettings:
    nodes = (Node("trafo", ("feeder-a", "feeder-b"), D(5), alarm_after),
             *(Node(f, kids, D(5), alarm_after) for f, kids in TENANTS.items()))
    meters = ["trafo", *TENANTS, *(t for kids in TENANTS.values() for t in kids)]
    return AnalyticsSettings(timezone="UTC", balance=nodes,
                             commodities=dict.fromkeys(meters, "electricity"))


def run_site(store: Store, wiring: AnalyticsWiring, minutes: range,
             theft: Callable[[int], D]) -> None:
    """One reading a minute per meter; each tenant draws 1 kWh a minute apart from the
    first tenant's own 0.5; feeder-b's cable feeds an unmetered load of `theft` of its total."""
    for minute in minutes:
        ts = START + minute * 60_000
        tenant = {t: D(minute) * (D("1.5") if t.endswith("1") else D(1))
                  for kids in TENANTS.values() for t in kids}
        feeders = {"feeder-a": tenant["a1"] + tenant["a2"],
                   "feeder-b": (tenant["b1"] + tenant["b2"]) / (1 - theft(minute))}
        totals = {**tenant, **feeders, "trafo": feeders["feeder-a"] + feeders["feeder-b"]}
        sets = [ReadingSet(m, ts, (StoredValue("import_active_energy", v, "kWh"),))
                for m, v in totals.items()]
        store.add_readings(sets, in_transaction=wiring.on_readings)


def test_a_seven_percent_unmetered_load_raises_the_loss_alarm_once(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db")
    wiring = AnalyticsWiring(site_settings(), store)
    run_site(store, wiring, range(0, 121), lambda m: D("0.07"))
    raised = [e for e in store.recent_events(50) if e.kind == "alarm_raised"]
    assert [(e.data["alarm"], e.data["subject"], e.severity) for e in raised] == [
        ("balance_loss", "feeder-b", "warning")]
    with store.transaction() as tx:
        rows = analytics.balance_between(tx, 0, 2**62)
        assert [a["subject"] for a in analytics.active_alarms(tx)] == ["feeder-b"]
    b = [r for r in rows if r.node == "feeder-b" and r.status == "complete"]
    assert b and all(r.loss_percent == D("7.00") for r in b)
    assert all(r.loss_percent == D("0.00") for r in rows if r.node == "feeder-a")
    assert {r.status for r in rows if r.node == "feeder-a"} == {"complete"}
    kinds = {rec.kind for rec in store.pending_outbox(1000)}
    assert {"balance", "interval", "event"} <= kinds

    run_site(store, wiring, range(121, 241), lambda m: D(0))
    cleared = [e for e in store.recent_events(50) if e.kind == "alarm_cleared"]
    assert [(e.data["alarm"], e.data["subject"]) for e in cleared] == [
        ("balance_loss", "feeder-b")]
    assert len([e for e in store.recent_events(50) if e.kind == "alarm_raised"]) == 1
    store.close()


def test_a_normal_site_raises_nothing(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db")
    wiring = AnalyticsWiring(site_settings(), store)
    run_site(store, wiring, range(0, 121), lambda m: D(0))
    assert [e.kind for e in store.recent_events(50) if e.kind.startswith("alarm")] == []
    with store.transaction() as tx:
        rows = analytics.balance_between(tx, 0, 2**62)
    assert len(rows) == 3 * 8 and {r.status for r in rows} == {"complete"}
    store.close()


def test_demand_voltage_and_cos_phi_alarms_through_the_hook(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db")
    limits = AlarmLimits(contracted_power_w=D(10_000), voltage_low=D(207), voltage_for_s=120,
                         cos_phi_min=D("0.9"))
    settings = AnalyticsSettings(timezone="UTC", alarms={"m1": limits},
                                 commodities={"m1": "electricity"})
    wiring = AnalyticsWiring(settings, store)
    kwh, kvarh = D(0), D(0)
    for minute in range(0, 24 * 60 + 60):
        kw = D(12) if minute < 30 else D(8)  # 12 kW for half an hour, then 8 kW
        kwh += kw / 60
        kvarh += kw / 60 if minute < 24 * 60 else D(0)  # cos phi 0.707 on the first day
        volts = D(200) if 100 <= minute < 104 else D(230)  # 4 minutes low
        store.add_readings([ReadingSet("m1", START + minute * 60_000, (
            StoredValue("import_active_energy", kwh, "kWh"),
            StoredValue("import_reactive_energy", kvarh, "kvarh"),
            StoredValue("voltage_l1", volts, "V")))], in_transaction=wiring.on_readings)
    events = [(e.kind, e.data["alarm"]) for e in reversed(store.recent_events(50))
              if e.kind.startswith("alarm")]
    assert events == [("alarm_raised", "max_demand"), ("alarm_cleared", "max_demand"),
                      ("alarm_raised", "voltage_band"), ("alarm_cleared", "voltage_band"),
                      ("alarm_raised", "reactive_ratio")]
    store.close()


def test_a_months_cos_phi_raises_after_the_month_and_clears_after_a_good_one(
        tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db")
    limits = AlarmLimits(cos_phi_min=D("0.9"), reactive_period="month")
    settings = AnalyticsSettings(timezone="UTC", grid="daily", alarms={"m1": limits},
                                 commodities={"m1": "electricity"})
    wiring = AnalyticsWiring(settings, store)
    kwh, kvarh = D(0), D(0)
    start = 1_767_225_600_000  # 2026-01-01T00:00Z
    for n in range(0, 4 * 70):  # every 6 hours for 70 days: January, February, some of March
        ts = start + n * 6 * 3_600_000
        in_january = ts <= 1_769_904_000_000  # what came until 2026-02-01T00:00Z
        kwh += D(5)
        kvarh += D(5) if in_january else D(1)  # cos phi 0.707, then 0.981
        store.add_readings([ReadingSet("m1", ts, (
            StoredValue("import_active_energy", kwh, "kWh"),
            StoredValue("import_reactive_energy", kvarh, "kvarh")))],
            in_transaction=wiring.on_readings)
    changes = [(e.kind, e.data["period"], e.data["cos_phi"]) for e in
               reversed(store.recent_events(20)) if e.kind.startswith("alarm")]
    assert changes == [("alarm_raised", "2026-01", "0.707"),
                       ("alarm_cleared", "2026-02", "0.981")]
    store.close()


def test_a_loss_alarm_active_before_a_restart_is_not_cleared_by_the_new_count() -> None:
    book = NodeBook(Node("f1", ("t1",), D(5), 3))
    alarms = AlarmBook({"balance_loss:f1": 1})  # restored from analytics_alarms
    changes = []
    for n, child in enumerate([D("9.3"), D("9.3"), D("9.3"), D("9.3"), D("9.8")]):
        book.add("f1", n * STEP, (n + 1) * STEP, D(10), STEP)
        [r] = book.add("t1", n * STEP, (n + 1) * STEP, child, STEP)
        holds = book.over_threshold(r)
        if holds is not None:
            changes.append(alarms.update("balance_loss", "f1", holds, r.end_ms))
    assert [(c.raised, c.ts_ms // STEP) for c in changes if c is not None] == [(False, 5)]
