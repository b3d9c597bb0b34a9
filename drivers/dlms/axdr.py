"""A-XDR encoding of COSEM `Data` (IEC 62056-6-2 4.1.5, IEC 61334-6): decode and encode.

Every length is checked against the bytes that are left before anything is allocated (an array
claiming 2^32 elements in a 40-byte frame is refused at once), nesting is bounded by
`MAX_DEPTH`, and floats become exact Decimals through the shortest text that round-trips to the
same bits: never float arithmetic, so `230.1` on the wire is `Decimal("230.1")` here.
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Union

from drivers.dlms.timefields import (
    CosemDate,
    CosemDateTime,
    CosemTime,
    decode_date,
    decode_date_time,
    decode_time,
)
from drivers.errors import FrameError

MAX_DEPTH: Final = 16  # profile buffers nest 3 deep; 16 leaves room and bounds recursion
MAX_LENGTH_OCTETS: Final = 4  # a length beyond 2^32 is no meter's
LONG_LENGTH: Final = 0x80


class Tag(enum.IntEnum):
    NULL = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    COMPACT_ARRAY = 19
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27
    DONT_CARE = 255


# fixed-size integers: tag -> (octets, signed)
INTEGERS: Final[dict[Tag, tuple[int, bool]]] = {
    Tag.DOUBLE_LONG: (4, True), Tag.DOUBLE_LONG_UNSIGNED: (4, False), Tag.BCD: (1, True),
    Tag.INTEGER: (1, True), Tag.LONG: (2, True), Tag.UNSIGNED: (1, False),
    Tag.LONG_UNSIGNED: (2, False), Tag.LONG64: (8, True), Tag.LONG64_UNSIGNED: (8, False),
    Tag.ENUM: (1, False),
}
FLOATS: Final[dict[Tag, struct.Struct]] = {Tag.FLOAT32: struct.Struct(">f"),
                                           Tag.FLOAT64: struct.Struct(">d")}
FLOAT32_DIGITS: Final = 9  # nine significant digits always round-trip a float32
_TIMES: Final = {Tag.DATE_TIME: 12, Tag.DATE: 5, Tag.TIME: 4}


@dataclass(frozen=True, slots=True)
class BitString:
    bits: str  # "0"/"1", first bit first

    def encode(self) -> bytes:
        padded = self.bits + "0" * (-len(self.bits) % 8)
        return bytes(int(padded[i:i + 8], 2) for i in range(0, len(padded), 8))


@dataclass(frozen=True, slots=True)
class TypeDescription:
    """The type of a compact array's elements: a simple tag, an array (count, element) or a
    structure (member descriptions)."""

    tag: Tag
    count: int = 0  # arrays
    members: tuple[TypeDescription, ...] = ()  # arrays: one, structures: each member


@dataclass(frozen=True, slots=True)
class CompactArray:
    description: TypeDescription
    elements: tuple[Data, ...]


Value = Union[None, bool, int, bytes, str, Decimal, tuple["Data", ...], BitString,  # noqa: UP007
              CosemDateTime, CosemDate, CosemTime, CompactArray]


@dataclass(frozen=True, slots=True)
class Data:
    """One COSEM Data value: its A-XDR type and the value (exact, typed)."""

    tag: Tag
    value: Value = None


# ---- decoding --------------------------------------------------------------------------------

class Reader:
    """A cursor over bytes; every read is bounded by what is left (FrameError with offset)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, count: int, what: str) -> bytes:
        if count > self.left:
            raise FrameError(f"{what}: {count} bytes claimed, {self.left} left", self.pos)
        out = self.data[self.pos:self.pos + count]
        self.pos += count
        return out

    def byte(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise FrameError(f"{what}: no byte left", self.pos)
        self.pos += 1
        return self.data[self.pos - 1]

    def length(self, what: str) -> int:
        """An A-XDR / BER length: one byte below 0x80, else 0x8N and N octets."""
        first = self.byte(what)
        if first < LONG_LENGTH:
            return first
        octets = first & 0x7F
        if not 0 < octets <= MAX_LENGTH_OCTETS:
            raise FrameError(f"{what}: length of {octets} octets", self.pos - 1)
        return int.from_bytes(self.take(octets, what), "big")

    def sized(self, what: str) -> bytes:
        return self.take(self.length(what), what)


def decode_data(raw: bytes) -> Data:
    """Exactly one Data value filling `raw`."""
    reader = Reader(raw)
    value = read_data(reader)
    if reader.left:
        raise FrameError(f"{reader.left} bytes after the Data value", reader.pos)
    return value


def read_data(reader: Reader, depth: int = 0) -> Data:
    if depth > MAX_DEPTH:
        raise FrameError(f"Data nested deeper than {MAX_DEPTH}", reader.pos)
    at = reader.pos
    code = reader.byte("Data tag")
    try:
        tag = Tag(code)
    except ValueError:
        raise FrameError(f"unknown Data tag {code}", at) from None
    return Data(tag, _read_value(reader, tag, depth))


def _read_value(reader: Reader, tag: Tag, depth: int) -> Value:
    if tag in INTEGERS:
        size, signed = INTEGERS[tag]
        return int.from_bytes(reader.take(size, tag.name), "big", signed=signed)
    if tag in (Tag.ARRAY, Tag.STRUCTURE):
        count = reader.length(tag.name)
        if count > reader.left:  # every element takes one byte at least
            raise FrameError(f"{tag.name} of {count} elements in {reader.left} bytes", reader.pos)
        return tuple(read_data(reader, depth + 1) for _ in range(count))
    if tag is Tag.OCTET_STRING:
        return reader.sized("octet-string")
    if tag is Tag.VISIBLE_STRING:
        return reader.sized("visible-string").decode("latin-1")
    if tag is Tag.UTF8_STRING:
        raw = reader.sized("utf8-string")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FrameError(f"utf8-string is not UTF-8: {error.reason}", reader.pos) from None
    if tag is Tag.BOOLEAN:
        return reader.byte("boolean") != 0
    if tag is Tag.BIT_STRING:
        return _read_bit_string(reader)
    if tag in FLOATS:
        return float_bits_to_decimal(tag, reader.take(FLOATS[tag].size, tag.name))
    if tag in _TIMES:
        return _read_time(reader, tag)
    if tag is Tag.COMPACT_ARRAY:
        return _read_compact_array(reader, depth)
    return None  # null-data, don't-care


def _read_bit_string(reader: Reader) -> BitString:
    bits = reader.length("bit-string")
    raw = reader.take((bits + 7) // 8, "bit-string")
    return BitString("".join(f"{b:08b}" for b in raw)[:bits])


def _read_time(reader: Reader, tag: Tag) -> CosemDateTime | CosemDate | CosemTime:
    at = reader.pos
    raw = reader.take(_TIMES[tag], tag.name)
    if tag is Tag.DATE_TIME:
        return decode_date_time(raw, at)
    return decode_date(raw, at) if tag is Tag.DATE else decode_time(raw, at)


def float_bits_to_decimal(tag: Tag, raw: bytes) -> Decimal:
    """The shortest decimal that round-trips to these bits (NaN / infinities kept as such)."""
    number: float = FLOATS[tag].unpack(raw)[0]
    if not math.isfinite(number):
        return Decimal(repr(number).replace("inf", "Infinity"))
    if tag is Tag.FLOAT64:
        return Decimal(repr(number))  # repr is the shortest round-trip text of a double
    for digits in range(1, FLOAT32_DIGITS + 1):
        text = format(number, f".{digits}g")
        try:
            if FLOATS[tag].pack(float(text)) == raw:
                return Decimal(text)
        except OverflowError:  # near the float32 maximum a short candidate rounds past it
            continue
    return Decimal(format(number, f".{FLOAT32_DIGITS}g"))


def read_type_description(reader: Reader, depth: int = 0) -> TypeDescription:
    if depth > MAX_DEPTH:
        raise FrameError(f"type description nested deeper than {MAX_DEPTH}", reader.pos)
    at = reader.pos
    try:
        tag = Tag(reader.byte("type description"))
    except ValueError:
        raise FrameError("unknown tag in a type description", at) from None
    if tag is Tag.ARRAY:
        count = int.from_bytes(reader.take(2, "array type description"), "big")
        return TypeDescription(tag, count, (read_type_description(reader, depth + 1),))
    if tag is Tag.STRUCTURE:
        count = reader.length("structure type description")
        if count > reader.left:
            raise FrameError(f"structure of {count} members in {reader.left} bytes", reader.pos)
        return TypeDescription(tag, count, tuple(
            read_type_description(reader, depth + 1) for _ in range(count)))
    if tag is Tag.COMPACT_ARRAY:
        raise FrameError("a compact array inside a compact array's type", at)
    return TypeDescription(tag)


def _read_compact_array(reader: Reader, depth: int) -> CompactArray:
    description = read_type_description(reader, depth + 1)
    contents = Reader(reader.sized("compact array contents"))
    elements = []
    while contents.left:
        before = contents.pos
        elements.append(_read_described(contents, description, depth + 1))
        if contents.pos == before:  # null elements would repeat for ever
            raise FrameError("compact array of elements that take no bytes", reader.pos)
    return CompactArray(description, tuple(elements))


def _read_described(reader: Reader, description: TypeDescription, depth: int) -> Data:
    if depth > MAX_DEPTH:
        raise FrameError(f"compact array nested deeper than {MAX_DEPTH}", reader.pos)
    if description.tag in (Tag.ARRAY, Tag.STRUCTURE):
        kinds = (description.members * description.count if description.tag is Tag.ARRAY
                 else description.members)
        if len(kinds) > reader.left + 1:
            raise FrameError(f"{len(kinds)} compact elements in {reader.left} bytes", reader.pos)
        return Data(description.tag, tuple(_read_described(reader, k, depth + 1) for k in kinds))
    return Data(description.tag, _read_value(reader, description.tag, depth))


# ---- encoding --------------------------------------------------------------------------------

def encode_length(length: int) -> bytes:
    if length < LONG_LENGTH:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(raw) > MAX_LENGTH_OCTETS:
        raise ValueError(f"length {length} needs more than {MAX_LENGTH_OCTETS} octets")
    return bytes([LONG_LENGTH | len(raw)]) + raw


def encode_data(data: Data) -> bytes:
    """The A-XDR bytes of one Data value, tag first."""
    return bytes([data.tag]) + _encode_value(data.tag, data.value)


def _encode_value(tag: Tag, value: Value) -> bytes:
    if tag in INTEGERS:
        size, signed = INTEGERS[tag]
        assert isinstance(value, int) and not isinstance(value, bool)
        return value.to_bytes(size, "big", signed=signed)
    if tag in (Tag.ARRAY, Tag.STRUCTURE):
        assert isinstance(value, tuple)
        return encode_length(len(value)) + b"".join(encode_data(item) for item in value)
    if tag is Tag.OCTET_STRING:
        assert isinstance(value, bytes)
        return encode_length(len(value)) + value
    if tag in (Tag.VISIBLE_STRING, Tag.UTF8_STRING):
        assert isinstance(value, str)
        raw = value.encode("latin-1" if tag is Tag.VISIBLE_STRING else "utf-8")
        return encode_length(len(raw)) + raw
    if tag is Tag.BOOLEAN:
        return b"\xff" if value else b"\x00"
    if tag is Tag.BIT_STRING:
        assert isinstance(value, BitString)
        return encode_length(len(value.bits)) + value.encode()
    if tag in FLOATS:
        assert isinstance(value, Decimal)
        return FLOATS[tag].pack(float(value))
    if tag in _TIMES:
        assert isinstance(value, CosemDateTime | CosemDate | CosemTime)
        return value.encode()
    if tag is Tag.COMPACT_ARRAY:
        assert isinstance(value, CompactArray)
        contents = b"".join(_encode_described(e) for e in value.elements)
        return encode_type_description(value.description) + encode_length(len(contents)) + (
            contents)
    return b""


def encode_type_description(description: TypeDescription) -> bytes:
    if description.tag is Tag.ARRAY:
        return (bytes([Tag.ARRAY]) + description.count.to_bytes(2, "big")
                + encode_type_description(description.members[0]))
    if description.tag is Tag.STRUCTURE:
        return (bytes([Tag.STRUCTURE]) + encode_length(len(description.members))
                + b"".join(encode_type_description(m) for m in description.members))
    return bytes([description.tag])


def _encode_described(data: Data) -> bytes:
    if data.tag in (Tag.ARRAY, Tag.STRUCTURE):
        assert isinstance(data.value, tuple)
        return b"".join(_encode_described(item) for item in data.value)
    return _encode_value(data.tag, data.value)
