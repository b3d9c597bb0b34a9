"""The writer and a meter's records: a full buffer never drops a record (it refuses the new
one, which is read again), a set no commit can take is set aside without stopping the others,
and every drop tells the marks to go back to what the store holds."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from gateway.app import writer as writer_module
from gateway.app.writer import ReadingWriter
from storage.records import FLAG_METER_RECORD, ReadingSet, StoredValue
from storage.store import Store

VALUE = (StoredValue("import_active_energy", Decimal("1.5"), "kWh"),)


def live(ts_ms: int) -> ReadingSet:
    return ReadingSet("m-1", ts_ms, VALUE)


def record(ts_ms: int, series: str = "load_profile") -> ReadingSet:
    return ReadingSet("m-1", ts_ms, VALUE, FLAG_METER_RECORD, series=series)


def test_a_full_buffer_drops_its_oldest_live_set_and_refuses_new_records(
        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(writer_module, "MAX_BUFFERED_SETS", 3)
    store = Store.open(tmp_path / "g.db")
    try:
        writer = ReadingWriter(store, 1.0)
        assert writer.add(record(1)) and writer.add(live(2)) and writer.add(record(3))
        assert not writer.add(record(4))  # full: the record waits for the next read
        assert writer.add(live(5))  # a live set takes the place of the oldest live one
        assert [r.ts_ms for r in writer.buffered_records()] == [1, 3] and writer.dropped == 1
        assert writer.flush() == 3
        assert [r.ts_ms for r in store.readings_between("m-1", 0, 100)] == [1, 3, 5]
        assert store.meter_record_marks() == {("m-1", "load_profile"): 3}
    finally:
        store.close()


def test_an_invalid_set_is_set_aside_and_the_rest_committed(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db")
    try:
        writer = ReadingWriter(store, 1.0)
        drops: list[str] = []
        writer.after_drop_hooks.append(lambda: drops.append("dropped"))
        bad = ReadingSet("m-1", 7, VALUE, FLAG_METER_RECORD, series="Not A Name")
        for reading in (live(1), bad, record(5)):
            writer.add(reading)
        assert writer.flush() == -1 and drops == ["dropped"]
        assert writer.flush() == 2  # the next commit takes the others
        assert [r.ts_ms for r in store.readings_between("m-1", 0, 100)] == [1, 5]
    finally:
        store.close()


def test_a_full_store_tells_the_marks_to_go_back(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db", max_bytes=1)  # full from the start
    try:
        writer = ReadingWriter(store, 1.0)
        drops: list[str] = []
        writer.after_drop_hooks.append(lambda: drops.append("dropped"))
        writer.add(record(5))
        assert writer.flush() == 0 and writer.refused == 1 and drops == ["dropped"]
        assert store.meter_record_marks() == {}
    finally:
        store.close()
