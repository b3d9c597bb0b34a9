"""Each validation rule on both sides of its threshold; flags are kept with the data."""

from __future__ import annotations

from collections import deque
from decimal import Decimal as D
from pathlib import Path

import pytest

from gateway.analytics.grid import Grid
from gateway.analytics.validation import IntervalContext, Rules, check_interval, check_reading
from gateway.config.loader import ConfigError, load_config
from storage import analytics, ledger
from storage.records import FLAG_CLOCK_UNSYNCED, ReadingSet, StoredValue
from tests.gateway.analytics.test_analytics_config import SITE


def rules_failed(rules: Rules, value: D | None, **ctx: object) -> list[str]:
    context = IntervalContext(deque(ctx.pop("history", [D(1)] * 10)), **ctx)  # type: ignore[arg-type]
    return [rule for rule, _ in check_interval(rules, value, context)]


def reading_failed(rules: Rules, values: list[tuple[str, object, str]],
                   previous: dict[str, D] | None = None, commodity: str = "electricity",
                   unsynced: bool = False) -> list[str]:
    stored = [StoredValue(q, v, u) for q, v, u in values]  # type: ignore[arg-type]
    return [rule for rule, _ in check_reading(rules, commodity, stored, previous or {}, unsynced)]


def test_limits_on_a_reading() -> None:
    rules = Rules(limits={"voltage_l1": (D("207"), D("253"))})
    assert reading_failed(rules, [("voltage_l1", D("253"), "V")]) == []
    assert reading_failed(rules, [("voltage_l1", D("253.1"), "V")]) == ["limits"]
    assert reading_failed(rules, [("voltage_l1", D("206.9"), "V")]) == ["limits"]


def test_a_register_that_went_backwards() -> None:
    prev = {"import_active_energy": D("100.5")}
    assert reading_failed(Rules(), [("import_active_energy", D("100.5"), "kWh")], prev) == []
    assert reading_failed(Rules(), [("import_active_energy", D("100.4"), "kWh")],
                          prev) == ["backwards"]
    assert reading_failed(Rules(backwards=False),
                          [("import_active_energy", D("100.4"), "kWh")], prev) == []


def test_unit_consistent_with_the_meter_kind() -> None:
    assert reading_failed(Rules(), [("volume", D(1), "m3")], commodity="water") == []
    assert reading_failed(Rules(), [("volume", D(1), "l")], commodity="water") == ["unit"]
    assert reading_failed(Rules(), [("import_active_energy", D(1), "kWh")],
                          commodity="water") == ["unit"]
    assert reading_failed(Rules(), [("import_active_energy", D(1), "kWh")]) == []


def test_clock_not_synced() -> None:
    assert reading_failed(Rules(), [], unsynced=False) == []
    assert reading_failed(Rules(), [], unsynced=True) == ["clock_unsynced"]
    assert rules_failed(Rules(), D(1), unsynced=True) == ["clock_unsynced"]


def test_interval_limits() -> None:
    rules = Rules(interval_min=D(0), interval_max=D(5))
    assert rules_failed(rules, D(5)) == []
    assert rules_failed(rules, D("5.000001")) == ["interval_limits"]
    assert rules_failed(rules, D("-0.000001")) == ["interval_limits"]


def test_spike_against_the_recent_median() -> None:
    rules = Rules(spike_factor=D(4))
    history = [D(1), D(2), D(2), D(3), D(100), D(2), D(2), D(1), D(2)]  # median 2
    assert rules_failed(rules, D(8), history=history) == []
    assert rules_failed(rules, D("8.000001"), history=history) == ["spike"]
    assert rules_failed(rules, D(100), history=history[:7]) == []  # too little history


def test_week_ratio_either_way() -> None:
    rules = Rules(week_ratio=D(2))
    assert rules_failed(rules, D(4), last_week=D(2)) == []
    assert rules_failed(rules, D(1), last_week=D(2)) == []
    assert rules_failed(rules, D("4.01"), last_week=D(2)) == ["week_ratio"]
    assert rules_failed(rules, D("0.99"), last_week=D(2)) == ["week_ratio"]
    assert rules_failed(rules, D(1), last_week=None) == []


def test_deviation_beyond_k_standard_deviations() -> None:
    rules = Rules(stddev_k=D(2))
    history = [D(1), D(3)] * 5  # mean 2, sd 1
    assert rules_failed(rules, D(4), history=history) == []
    assert rules_failed(rules, D("4.001"), history=history) == ["stddev"]
    assert rules_failed(rules, D("-0.001"), history=history) == ["stddev"]


def test_consumption_while_the_relay_is_open() -> None:
    rules = Rules(relay_open_tolerance=D("0.01"))
    assert rules_failed(rules, D("0.01"), relay_open=True) == []
    assert rules_failed(rules, D("0.011"), relay_open=True) == ["relay_open"]
    assert rules_failed(rules, D(5), relay_open=False) == []


def test_rules_merge_default_group_meter_and_report_every_problem(tmp_path: Path) -> None:
    extra = SITE.replace('id = "shop-1"\n', 'id = "shop-1"\ncommodity = "electricity"\n')
    path = tmp_path / "site.toml"
    path.write_text(extra + """
[analytics]
[analytics.groups]
tenants = ["shop-1"]
[analytics.rules.default]
spike_factor = 5
limits = { voltage_l1 = ["207", "253"] }
[analytics.rules.tenants]
spike_factor = "3.5"
[analytics.rules.shop-1]
limits = { current_l1 = ["", "63"] }
""")
    rules = load_config(path).analytics.rules_of("shop-1")
    assert rules.spike_factor == D("3.5")
    assert rules.limits == {"voltage_l1": (D(207), D(253)), "current_l1": (None, D(63))}
    path.write_text(extra + """
[analytics.groups]
tenants = ["shop-7"]
[analytics.rules.nobody]
spike_factor = 0
[analytics.rules.default]
limits = { no_such = ["1", "x"] }
""")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = "\n".join(err.value.problems)
    for key in ("analytics.groups.tenants[0]", "analytics.rules.nobody",
                "analytics.rules.nobody.spike_factor", "analytics.rules.default.limits.no_such"):
        assert f"`{key}`" in text


def test_flags_are_stored_and_sent_with_the_data(tmp_path: Path) -> None:
    from gateway.analytics.settings import AnalyticsSettings
    from gateway.wiring.analytics import AnalyticsWiring
    from storage.store import Store

    store = Store.open(tmp_path / "g.db")
    store.upsert_meter("shop-1")
    settings = AnalyticsSettings(timezone="UTC", default_rules=Rules())
    wiring = AnalyticsWiring(settings, store)
    start = Grid("15min", "UTC").next_after(1_767_225_600_000)

    def add(minutes: int, kwh: str, flags: int = 0) -> None:
        r = ReadingSet("shop-1", start + minutes * 60_000,
                       (StoredValue("import_active_energy", D(kwh), "kWh"),), flags)
        store.add_readings([r], in_transaction=wiring.on_readings)

    add(0, "10")
    add(5, "11")
    with store.transaction() as tx:  # prepay opened the supply
        ledger.save_relay_state(tx, "shop-1", {"closed": False}, start)
    add(10, "10.5")  # went backwards
    add(15, "12", FLAG_CLOCK_UNSYNCED)
    with store.transaction() as tx:
        rows = analytics.intervals_between(tx, "shop-1", 0, 2**62)
    assert [set(r.flags) for r in rows] == [{"relay_open", "clock_unsynced"}]
    bodies = [rec.body for rec in store.pending_outbox(100) if rec.kind == "reading_flag"]
    assert [(b["rule"], b["ts_ms"] - start) for b in bodies] == [
        ("backwards", 600_000), ("clock_unsynced", 900_000)]
    store.close()
