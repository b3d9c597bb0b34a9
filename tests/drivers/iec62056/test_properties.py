"""Property tests: data-line grammar round trips, checksums catch damage, fuzzed input only ever
raises the project's own errors."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import DriverError, FrameError
from drivers.iec62056.datasets import DataSet, DataValue, format_block, parse_block, parse_line
from drivers.iec62056.framing import (
    Identification,
    build_command,
    frame_command,
    parse_identification,
)
from drivers.iec62056.mapping import map_datasets
from drivers.iec62056.readout import (
    CHECKSUM_OK,
    decode_message,
    encode_readout,
    encode_telegram,
)
from drivers.obis.codes import parse_code
from tests.corpus import CORPUS

EXAMPLES = settings(max_examples=150, deadline=None)
PRINTABLE = [chr(c) for c in range(0x20, 0x7F)]
address_text = st.text([c for c in PRINTABLE if c not in "()/!"], min_size=1, max_size=16)
value_text = st.text([c for c in PRINTABLE if c not in "()*/!"], max_size=32)
unit_text = st.none() | st.text([c for c in PRINTABLE if c not in "()*/!"], max_size=16)
data_values = st.builds(DataValue, value_text, unit_text)
data_sets = st.builds(DataSet, address_text, st.lists(data_values, min_size=1, max_size=4)
                      .map(tuple))
model_text = st.text([c for c in PRINTABLE if c not in "/!\\"], max_size=16)
identifications = st.builds(
    Identification,
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=3, max_size=3),
    st.sampled_from("0123456ABCDEF "),
    st.none() | st.sampled_from("0123456789"),
    model_text,
)

E650 = json.loads((CORPUS / "iec62056/readouts.json").read_text())[4]
E650_RAW = (E650["ident_line"] + E650["readout_text"]).encode("latin-1")


@EXAMPLES
@given(st.lists(data_sets, max_size=12))
def test_data_lines_round_trip(sets: list[DataSet]) -> None:
    parsed, problems = parse_block(format_block(sets))
    assert problems == []
    assert parsed == sets


@EXAMPLES
@given(data_sets, data_sets)
def test_several_data_sets_on_one_line(first: DataSet, second: DataSet) -> None:
    assert parse_line(first.to_text() + second.to_text()) == [first, second]


@EXAMPLES
@given(identifications, st.lists(data_sets, min_size=1, max_size=8))
def test_readout_round_trip_with_bcc(ident: Identification, sets: list[DataSet]) -> None:
    readout = decode_message(encode_readout(ident, sets))
    assert readout.identification == ident
    assert list(readout.datasets) == sets
    assert readout.checksum == CHECKSUM_OK and not readout.damaged


@EXAMPLES
@given(identifications, st.lists(data_sets, min_size=1, max_size=8))
def test_telegram_round_trip_with_crc(ident: Identification, sets: list[DataSet]) -> None:
    readout = decode_message(encode_telegram(ident, sets))
    assert list(readout.datasets) == sets
    assert readout.checksum == CHECKSUM_OK and readout.checksum_kind == "crc16"


@EXAMPLES
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_any_changed_byte_in_a_readout_is_reported(position: int, flip: int) -> None:
    stx = E650_RAW.index(b"\x02")
    index = stx + 1 + position % (len(E650_RAW) - stx - 1)
    damaged = bytearray(E650_RAW)
    damaged[index] ^= flip
    assert decode_message(bytes(damaged)).damaged


@EXAMPLES
@given(st.binary(max_size=400))
def test_decode_message_never_raises_on_noise(raw: bytes) -> None:
    readout = decode_message(raw)
    assert readout.checksum in ("ok", "bad", "missing", "none")


@EXAMPLES
@given(st.lists(st.sampled_from([b"/", b"?", b"!", b"(", b")", b"*", b"\r\n", b"\x02", b"\x03",
                                 b"1.8.0", b"ABC5", b"\\2", b"12.5", b"kWh", b"\n", b"\x00"]),
                max_size=60))
def test_decode_message_never_raises_on_protocol_shaped_noise(parts: list[bytes]) -> None:
    readout = decode_message(b"".join(parts))
    with contextlib.suppress(FrameError):
        readout.raise_if_damaged()
    map_datasets(readout.datasets)


@EXAMPLES
@given(st.text(max_size=80))
def test_parse_line_raises_only_frame_errors(text: str) -> None:
    try:
        for data in parse_line(text):
            parse_code(data.address)
    except FrameError as exc:
        assert exc.offset is not None


@EXAMPLES
@given(st.binary(max_size=60))
def test_identification_and_command_parsers_raise_only_driver_errors(raw: bytes) -> None:
    for parser in (parse_identification, frame_command):
        with contextlib.suppress(DriverError):
            parser(raw)


@EXAMPLES
@given(st.sampled_from(["P1", "R1", "R5", "W1", "B0"]), st.none() | value_text)
def test_command_round_trip(command: str, data: str | None) -> None:
    assert frame_command(build_command(command, data)) == (command, data)


@EXAMPLES
@given(st.lists(data_sets, max_size=10))
def test_mapping_arbitrary_data_sets_never_raises(sets: list[DataSet]) -> None:
    mapped = map_datasets(sets)
    assert all(s.unit in ("", "kWh", "kvarh", "W", "V", "A", "Hz") for s in mapped.samples)


@EXAMPLES
@given(identifications, st.lists(data_sets, min_size=1, max_size=6), st.binary(max_size=8))
def test_message_ends_are_found_only_when_complete(
    ident: Identification, sets: list[DataSet], noise: bytes
) -> None:
    from drivers.iec62056.p1 import telegram_end
    from drivers.iec62056.session import data_frame_end

    noise = noise.replace(b"\x02", b"").replace(b"/", b"")
    frame = noise + encode_readout(None, sets)
    assert [n for n in range(len(frame) + 1) if data_frame_end(frame[:n]) is not None] == [
        len(frame)
    ]
    telegram = noise + encode_telegram(ident, sets)
    ends = [n for n in range(len(telegram) + 1) if telegram_end(telegram[:n]) is not None]
    assert ends == [len(telegram)]
