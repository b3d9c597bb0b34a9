"""Report by exception: every reading is stored and handed to the in-transaction hooks
(prepay, analytics); only the sets that moved out of a deadband, or whose meter was silent for
its max_silence_s, get an outbox row. The config section is validated with the file. The wire
bytes saved on a slowly changing site are measured (printed as JSON, asserted only as "fewer")."""

from __future__ import annotations

import json
import random
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.app.exception_report import Deadband, ExceptionReport, ReportSettings, Rule
from gateway.config.loader import ConfigError, load_config
from storage.records import FLAG_METER_RECORD, ReadingSet, StoredValue
from storage.store import Store
from uplink.codec import encode_batch_payload, record_item
from uplink.records import to_wire

MINUTE_MS = 60_000
BANDS = {"voltage_l1": Deadband(absolute=Decimal(2)),
         "active_power": Deadband(absolute=Decimal(50), percent=Decimal(5))}


def _set(meter: str, minute: int, volts: str, watts: str, kwh: str, flags: int = 0,
         series: str = "") -> ReadingSet:
    return ReadingSet(meter, 1_767_225_600_000 + minute * MINUTE_MS, (
        StoredValue("voltage_l1", Decimal(volts), "V"),
        StoredValue("active_power", Decimal(watts), "W"),
        StoredValue("import_active_energy", Decimal(kwh), "kWh")), flags=flags, series=series)


def _policy(silence_min: int = 15) -> ExceptionReport:
    rule = Rule(silence_min * MINUTE_MS, BANDS)
    return ExceptionReport(ReportSettings(rule, {}, {"m1": rule, "m2": rule}))


def test_only_moves_out_of_a_band_and_silences_are_sent() -> None:
    policy = _policy()
    sent = [policy.wants(s) for s in (
        _set("m1", 0, "230", "1000", "10.0"),   # first set of the meter
        _set("m1", 1, "231.9", "1040", "10.1"),  # within both bands, energy moved: not sent
        _set("m1", 2, "232.1", "1000", "10.2"),  # 2.1 V from the sent 230: sent
        _set("m1", 3, "232.1", "1049", "10.3"),  # 49 W: inside max(50, 5 % of 1000)
        _set("m1", 4, "232.1", "1051", "10.4"),  # 51 W: out
        _set("m1", 19, "232.1", "1051", "11.9"),  # 15 minutes after the last sent: sent
        _set("m2", 19, "230", "0", "1"),         # another meter: its own first
    )]
    assert sent == [True, False, True, False, True, True, True]
    assert (policy.sets_seen, policy.sets_sent) == (7, 5)


def test_meter_records_and_text_values_are_always_sent() -> None:
    policy = _policy()
    assert policy.wants(_set("m1", 0, "230", "1000", "10"))
    assert policy.wants(_set("m1", 1, "230", "1000", "10", FLAG_METER_RECORD, "load_profile"))
    state = ReadingSet("m1", _set("m1", 2, "230", "1000", "10").ts_ms,
                       (StoredValue("relay_state", "open", ""),))
    assert policy.wants(state)


@given(st.decimals(-10**6, 10**6, places=3), st.decimals(0, 10**4, places=3),
       st.decimals(0, 1000, places=2), st.decimals(0, 100, places=2), st.booleans())
def test_a_band_holds_inside_both_bounds_and_moves_past_both(sent: Decimal, step: Decimal,
                                                             absolute: Decimal,
                                                             percent: Decimal,
                                                             down: bool) -> None:
    band = Deadband(absolute, percent)
    now = sent - step if down else sent + step
    if step <= absolute and step * 100 <= abs(sent) * percent:
        assert not band.moved(sent, now)
    if step > absolute and step * 100 > abs(sent) * percent:
        assert band.moved(sent, now)
    assert band.moved(sent, now) == band.moved(sent, sent - (now - sent))  # symmetric


def test_the_store_keeps_every_set_and_the_hooks_see_every_one(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "gw.db")
    store.send_reading = _policy().wants
    seen: list[ReadingSet] = []
    sets = [_set("m1", minute, "230", "1000", str(10 + minute)) for minute in range(10)]
    store.add_readings(sets, in_transaction=lambda _tx, stored: seen.extend(stored))
    assert len(seen) == 10 and len(store.last_readings("m1", 100)) == 10
    outbox = store.pending_outbox(100)
    assert [r.body.ts_ms for r in outbox if r.kind == "reading"] == [sets[0].ts_ms]
    store.close()


def _slow_site(minutes: int, meters: int) -> list[list[ReadingSet]]:
    """Poll rounds of a site whose values change slowly: voltage noise of +-0.5 V, a load that
    steps every half hour, energy rising every minute."""
    rng = random.Random(18)
    rounds = []
    for minute in range(minutes):
        batch = []
        for m in range(meters):
            load = 800 + 400 * ((minute // 30 + m) % 3)
            batch.append(_set(f"m{m}", minute, f"{230 + rng.uniform(-0.5, 0.5):.1f}",
                              f"{load + rng.uniform(-10, 10):.0f}",
                              f"{1000 + minute * load / 60000:.3f}"))
        rounds.append(batch)
    return rounds


def _wire_bytes(store: Store) -> int:
    """Bytes of the batches the outbox would go up in (100 records, DEFLATE on, as shipped)."""
    records = store.pending_outbox(10**6)
    total = 0
    for first in range(0, len(records), 100):
        chunk = records[first:first + 100]
        base = chunk[0].created_ms
        items = [record_item(to_wire(r), base) for r in chunk]
        total += len(encode_batch_payload("gw", 1, b"\0" * 32, base, items, compress=True))
    return total


def test_wire_bytes_saved_on_a_slowly_changing_site(tmp_path: Path) -> None:
    rounds = _slow_site(minutes=24 * 60, meters=10)
    rule = Rule(15 * MINUTE_MS, BANDS)
    measured = {}
    for name, policy in (("all", None), ("rbe", ExceptionReport(ReportSettings(
            rule, {}, {f"m{m}": rule for m in range(10)})))):
        store = Store.open(tmp_path / f"{name}.db")
        store.send_reading = None if policy is None else policy.wants
        for batch in rounds:
            store.add_readings(batch)
        stored = sum(len(store.last_readings(f"m{m}", 10**5)) for m in range(10))
        sent = [r for r in store.pending_outbox(10**6) if r.kind == "reading"]
        measured[name] = {"stored": stored, "sent": len(sent), "wire_bytes": _wire_bytes(store)}
        last_sent = max((r for r in sent if r.body.meter_id == "m0"), key=lambda r: r.body.ts_ms)
        assert rounds[-1][0].ts_ms - last_sent.body.ts_ms < 15 * MINUTE_MS  # energy within 15 min
        store.close()
    saved = 1 - measured["rbe"]["wire_bytes"] / measured["all"]["wire_bytes"]
    print(json.dumps({"report_by_exception": measured, "wire_bytes_saved": round(saved, 3)}))
    assert measured["rbe"]["stored"] == measured["all"]["stored"] == 14_400
    assert measured["rbe"]["sent"] < measured["all"]["sent"]


def _config(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(textwrap.dedent(f"""
        gateway_id = "gw"
        [storage]
        path = "{tmp_path / 'gw.db'}"
        [[bus]]
        id = "rs485"
        port = "/dev/ttyUSB0"
        [[meter]]
        id = "shop-01"
        bus = "rs485"
        protocol = "modbus"
        address = 1
        profile = "eastron_sdm630"
        [[meter]]
        id = "shop-02"
        bus = "rs485"
        protocol = "modbus"
        address = 2
        profile = "abb_b23"
    """) + textwrap.dedent(section))
    return path


def test_the_section_resolves_meter_over_profile_over_default(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, """
        [report_by_exception]
        max_silence_s = 600
        deadbands.voltage_l1 = { absolute = "1" }
        [report_by_exception.profiles.abb_b23]
        max_silence_s = 1800
        [report_by_exception.meters.shop-01]
        deadbands.active_power = { percent = "2.5" }
    """))
    policy = ExceptionReport(config.report)
    one, two = policy.rule("shop-01"), policy.rule("shop-02")
    assert one.max_silence_ms == 600_000 and two.max_silence_ms == 1_800_000
    assert one.deadbands == {"voltage_l1": Deadband(Decimal(1)),
                             "active_power": Deadband(percent=Decimal("2.5"))}
    assert two.deadbands == {"voltage_l1": Deadband(Decimal(1))}
    assert load_config(_config(tmp_path, "")).report is None


@pytest.mark.parametrize(("section", "key"), [
    ("max_silence_s = 0", "report_by_exception.max_silence_s"),
    ('deadbands.voltage_l1 = { absolute = 1.5 }', "report_by_exception.deadbands.voltage_l1"),
    ('deadbands.voltage_l1 = { absolute = "-1" }', "report_by_exception.deadbands.voltage_l1"),
    ('deadbands.voltage_l1 = { width = "1" }', "report_by_exception.deadbands.voltage_l1"),
    ('deadbands.colour = { absolute = "1" }', "report_by_exception.deadbands.colour"),
    ('meters.nobody.max_silence_s = 60', "report_by_exception.meters.nobody"),
    ('meters.shop-01.deadbands.voltage_l1 = { percent = "x" }',
     "report_by_exception.meters.shop-01.deadbands.voltage_l1.percent"),
    ("speed = 1", "speed"),
])
def test_a_wrong_section_names_its_key(tmp_path: Path, section: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(_config(tmp_path, "[report_by_exception]\n" + section + "\n"))
