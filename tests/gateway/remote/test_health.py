"""The health record: /proc fields parsed exactly, SD-card writes per hour from the write_bytes
delta, stored with its outbox row at low priority and encoded as its own fields on the wire."""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from core.clock import FakeClock
from gateway.remote.health import (
    HealthReporter,
    HealthSampler,
    HealthSources,
    health_fields,
    proc_field,
)
from storage import health
from storage.store import Store
from uplink.records import register_record_encoder, to_wire

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@given(st.dictionaries(NAMES, st.integers(0, 2**62), min_size=1), st.data())
@example({"VmRSS": 2020}, None)
def test_proc_fields_parse_back(fields: dict[str, int], data: st.DataObject | None) -> None:
    text = "".join(f"{name}:\t  {value} kB\n" for name, value in fields.items())
    name = data.draw(st.sampled_from(sorted(fields))) if data else next(iter(fields))
    assert proc_field(text, name) == fields[name]
    assert proc_field(text, "no-such-field") is None


def test_proc_field_garbage_is_none() -> None:
    assert proc_field("VmRSS:\tlots kB\n", "VmRSS") is None
    assert proc_field("VmRSS\n:::\n", "VmRSS") is None


def sources(tmp_path: Path, clock: FakeClock, written: list[int]) -> HealthSources:
    (tmp_path / "status").write_text("Name:\tgateway\nVmRSS:\t   41234 kB\n")
    io = tmp_path / "io"

    def write_io() -> None:
        io.write_text(f"rchar: 1\nwchar: 999999\nwrite_bytes: {written[0]}\n")
    write_io()
    return HealthSources(
        clock=clock, started_ms=clock.wall_ms(), data_dir=tmp_path,
        config_version=lambda: {"version": 3, "sha256": "ab" * 32},
        buses=lambda: {"rs485-1": {"protocol": "modbus", "counters": {"requests": 7}}},
        outbox_depth=lambda: 12, clock_synced=lambda: True,
        components=lambda: {"poll-rs485-1": {"failures": 1, "last_error": "OSError: x",
                                             "down": False}},
        temperature_mc=lambda: None, proc_status=tmp_path / "status", proc_io=io)


def test_a_sample_has_every_field_and_writes_per_hour(tmp_path: Path) -> None:
    clock, written = FakeClock(), [0]
    src = sources(tmp_path, clock, written)
    sampler = HealthSampler(src)
    clock.step(3600)
    written[0] = 1000
    (tmp_path / "io").write_text("write_bytes: 1000\n")
    first = sampler.sample()
    assert first["uptime_s"] == 3600 and first["rss_bytes"] == 41234 * 1024
    assert first["written_bytes"] == 1000 and first["written_bytes_per_h"] == 1000
    assert first["config"] == {"version": 3, "sha256": "ab" * 32}
    assert first["buses"]["rs485-1"]["counters"] == {"requests": 7}
    assert first["outbox"] == 12 and first["clock_synced"] is True
    assert first["temperature_mc"] is None  # no sensor offered
    assert first["components"]["poll-rs485-1"]["last_error"] == "OSError: x"
    assert first["disk_free_bytes"] > 0 and first["cpu_ms"] >= 0
    assert first["version"]["gateway"]
    clock.step(1800)
    (tmp_path / "io").write_text("write_bytes: 1600\n")
    assert sampler.sample()["written_bytes_per_h"] == 1200  # 600 bytes in half an hour
    assert not any(isinstance(v, float) for v in first.values())


def test_a_record_is_stored_and_goes_out_after_readings(tmp_path: Path) -> None:
    clock = FakeClock()
    store = Store.open(tmp_path / "gw.db")
    try:
        store.register_outbox_kind(health.OUTBOX_KIND, health.OUTBOX_PRIORITY, health.by_ids)
        register_record_encoder(health.OUTBOX_KIND, health_fields)
        woken: list[bool] = []
        reporter = HealthReporter(store, HealthSampler(sources(tmp_path, clock, [0])), 60,
                                  lambda: woken.append(True))
        reporter.record()
        store.add_event("later", meter_id=None, data={}, ts_ms=clock.wall_ms() + 5)
        pending = store.pending_outbox(10)
        assert [r.kind for r in pending][-1] == "health" and woken == [True]
        wire = to_wire(pending[-1])
        assert wire.kind == "health" and wire.ts_ms == clock.wall_ms()
        assert wire.fields["outbox"] == 12 and wire.fields["config"]["version"] == 3
    finally:
        store.close()
