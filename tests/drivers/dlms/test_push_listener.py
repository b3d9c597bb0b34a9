"""The push listener (drivers/dlms/listener.py): corpus HAN pushes, ciphered and segmented
pushes (sealed by tests/drivers/dlms/vectors.py, independently of drivers/dlms), replays
refused across a restart, damage counted and never raised, M-Bus framing."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.dlms.counters import CounterFile
from drivers.dlms.decode import decode
from drivers.dlms.hdlc import decode_frame
from drivers.dlms.listener import PushListener, PushMeter
from drivers.dlms.push_sim import GARBAGE, hdlc_frames, mbus_frames
from drivers.dlms.security import Keys
from drivers.readings import Sample
from tests.drivers.dlms import vectors
from tests.drivers.dlms.corpus import entries

KEYS = Keys(vectors.EK, vectors.AK)
README = next(e for e in entries() if e["name"] == "AmsToMqttBridge/Kaifa/readme-sample")
LIST1 = next(e for e in entries() if e["name"] == "AmsToMqttBridge/Kaifa/obisdata-list1")


def _plain(entry: dict[str, object]) -> bytes:
    """The corpus push's data-notification (LLC header and link framing removed)."""
    frames = entry["frames_hex"]
    assert isinstance(frames, list)
    raw = bytes.fromhex(frames[0])
    info = decode_frame(raw)[0].information if raw[:1] == b"\x7e" else raw
    return info[3:]


def _sealed(plain: bytes, counter: int, segment_bytes: int = 128) -> bytes:
    return b"".join(hdlc_frames(vectors.general_glo(plain, vectors.METER_TITLE, counter),
                                segment_bytes))


def _listener(tmp_path: Path, keys: Keys | None = KEYS, framing: str = "hdlc",
              title: bytes | None = None) -> tuple[PushListener, CounterFile]:
    counters = CounterFile(tmp_path / "counters.json")
    meter = PushMeter("han-1", title, keys, "kaifa")
    return PushListener([meter], lambda t: counters.server_guard("push:" + t.hex()),
                        framing), counters


def test_corpus_hdlc_pushes_give_what_decode_gives(tmp_path: Path) -> None:
    listener, _ = _listener(tmp_path, keys=None)
    pushes = [e for e in entries() if e["transport"] == "hdlc" and e["meter"]
              and "Kaifa" in str(e["meter"])]
    assert len(pushes) >= 10
    for entry in pushes:
        want = decode(entry["frames_hex"])["samples"]
        got = listener.feed(b"".join(bytes.fromhex(f) for f in entry["frames_hex"]))
        assert [[{"quantity": s.quantity, "value": str(s.value), "unit": s.unit}
                 for s in samples] for _, samples in got] == [want], entry["name"]


def test_a_ciphered_segmented_push_gives_the_published_value(tmp_path: Path) -> None:
    listener, _ = _listener(tmp_path)
    wire = _sealed(_plain(README), 7, segment_bytes=16)
    assert wire.count(b"\x7e\xa8") >= 2  # the segmentation bit set on all but the last
    got = [listener.feed(wire[i:i + 1]) for i in range(len(wire))]
    assert [x for x in got if x] == [[("han-1", [Sample("active_power", Decimal("1320"),
                                                        "W")])]]  # published "1320 W"
    assert listener.count("han-1")["pushes"] == 1


def test_a_replay_is_refused_and_still_refused_after_a_restart(tmp_path: Path) -> None:
    listener, counters = _listener(tmp_path)
    first, second = _sealed(_plain(README), 100), _sealed(_plain(LIST1), 101)
    assert listener.feed(first)
    assert listener.feed(first) == []
    assert listener.feed(second)[0][1] == [Sample("active_power", Decimal("601"), "W")]
    assert listener.count("han-1")["replays"] == 1
    counters.flush()
    restarted, _ = _listener(tmp_path)
    assert restarted.feed(first) == [] and restarted.feed(second) == []
    assert restarted.count("han-1")["replays"] == 2
    assert restarted.feed(_sealed(_plain(README), 102))


def test_wrong_key_and_plain_push_from_a_keyed_meter_are_decrypt_failures(
        tmp_path: Path) -> None:
    listener, _ = _listener(tmp_path, keys=Keys(bytes(16), vectors.AK))
    assert listener.feed(_sealed(_plain(README), 1)) == []
    assert listener.feed(b"".join(hdlc_frames(_plain(README)))) == []
    assert listener.count("han-1")["decrypt_failures"] == 2
    assert listener.count("han-1")["replays"] == 0  # a push that did not open moves no counter


def test_garbage_and_a_bad_fcs_are_counted_and_the_next_push_is_read(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    listener, _ = _listener(tmp_path)
    good = _sealed(_plain(README), 5)
    broken = good[:-3] + bytes([good[-3] ^ 0xFF]) + good[-2:]
    caplog.set_level(logging.DEBUG)
    assert listener.feed(GARBAGE + broken + GARBAGE + broken) == []
    assert listener.feed(_sealed(_plain(README), 6))
    counts = listener.count()
    assert counts["pushes"] == 1 and counts["checksum"] >= 2
    warned = [r for r in caplog.records if r.levelno == logging.WARNING
              and getattr(r, "counter", "") == "checksum"]
    assert len(warned) == 1  # logged once per meter and kind


def test_a_push_from_an_unknown_system_title_is_counted(tmp_path: Path) -> None:
    listener, _ = _listener(tmp_path, title=b"OTHER\x00\x00\x01")
    assert listener.feed(_sealed(_plain(README), 1)) == []
    assert listener.count()["unknown_meters"] == 1


def test_mbus_framed_ciphered_push_in_segments(tmp_path: Path) -> None:
    listener, _ = _listener(tmp_path, framing="mbus")
    apdu = vectors.general_glo(_plain(README), vectors.METER_TITLE, 9)
    frames = mbus_frames(apdu, segment_bytes=20)
    assert len(frames) >= 2
    assert listener.feed(b"".join(frames)) == [
        ("han-1", [Sample("active_power", Decimal("1320"), "W")])]
    assert listener.feed(b"".join(frames[1:])) == []  # segments without the first: dropped
    assert listener.count()["frame_errors"] == len(frames) - 1  # each orphan segment


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(["hdlc", "mbus"]))
def test_any_bytes_are_counted_never_raised(data: bytes, framing: str) -> None:
    counters = CounterFile(Path("/nonexistent-dir/never-written.json"))
    listener = PushListener([PushMeter("m", None, KEYS, None)],
                            lambda t: counters.server_guard(t.hex()), framing)
    listener.feed(data)  # the assertion is that it returns: bad bytes are counted
    assert listener.count()["pushes"] == 0 or framing == "hdlc"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_how_the_stream_is_cut_does_not_change_what_is_read(cuts: list[int]) -> None:
    counters = CounterFile(Path("/nonexistent-dir/never-written.json"))
    listener = PushListener([PushMeter("m", None, KEYS, "kaifa")],
                            lambda t: counters.server_guard(t.hex()))
    wire = GARBAGE + _sealed(_plain(README), 1, 16) + GARBAGE + _sealed(_plain(LIST1), 2, 16)
    got, at = [], 0
    for cut in cuts * (len(wire) // sum(cuts) + 1):
        got += listener.feed(wire[at:at + cut])
        at += cut
    assert [s[0].value for _, s in got] == [Decimal("1320"), Decimal("601")]
