"""COSE_Sign1 sign/verify and the payload codec: round trips, properties, refusals."""

import contextlib
from decimal import Decimal

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from uplink.codec import (
    ZERO_HASH,
    Ack,
    Command,
    WireRecord,
    decode_ack,
    decode_batch_payload,
    decode_command,
    encode_ack,
    encode_batch_payload,
    encode_command,
    reading_fields,
    reading_values,
    record_item,
)
from uplink.cose import parse_sign1, sign1, verify_sign1
from uplink.errors import BadMessage, BadSignature
from uplink.quantity_codes import QUANTITY_CODES, quantity_from_wire, quantity_to_wire

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
MAX = 1 << 20


def test_sign_verify_round_trip() -> None:
    signed = sign1(b"hello", KEY, b"gw-1")
    msg = parse_sign1(signed, max_bytes=MAX)
    assert msg.kid == b"gw-1"
    assert verify_sign1(msg, KEY.public_key()) == b"hello"
    tagged = cbor2.loads(signed)
    assert tagged.tag == 18 and cbor2.loads(tagged.value[0]) == {1: -8}


def test_forged_signature_refused() -> None:
    msg = parse_sign1(sign1(b"hello", KEY, b"gw-1"), max_bytes=MAX)
    with pytest.raises(BadSignature, match="gw-1"):
        verify_sign1(msg, OTHER.public_key())


@pytest.mark.parametrize("data, reason", [
    (b"\xff\x00", "malformed CBOR"),
    (cbor2.dumps(cbor2.CBORTag(17, [b"", {}, b"", b""])), "tag 18"),
    (cbor2.dumps([b"", {}, b"", b""]), "tag 18"),
    (cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b""])), "4-element"),
    (cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -7}), {}, b"x", bytes(64)])), "EdDSA"),
    (cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -8}), {}, b"x", bytes(10)])), "64"),
])
def test_malformed_cose_refused(data: bytes, reason: str) -> None:
    with pytest.raises(BadMessage, match=reason):
        parse_sign1(data, max_bytes=MAX)


def test_truncated_and_oversized_cose_refused() -> None:
    signed = sign1(b"x" * 100, KEY, b"gw")
    for cut in range(len(signed)):
        with pytest.raises(BadMessage):
            parse_sign1(signed[:cut], max_bytes=MAX)
    with pytest.raises(BadMessage, match="above the limit"):
        parse_sign1(signed, max_bytes=50)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_fuzz_parse_only_bad_message(data: bytes) -> None:
    with contextlib.suppress(BadMessage):
        parse_sign1(data, max_bytes=MAX)


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=400), st.integers(0, 10_000), st.integers(0, 255))
def test_fuzz_mutated_signed_batch(data: bytes, pos: int, byte: int) -> None:
    signed = bytearray(sign1(data, KEY, b"gw"))
    signed[pos % len(signed)] = byte
    with contextlib.suppress(BadMessage, BadSignature):
        verify_sign1(parse_sign1(bytes(signed), max_bytes=MAX), KEY.public_key())


def test_quantity_codes() -> None:
    assert quantity_to_wire("import_active_energy") == 0
    assert quantity_to_wire("import_active_energy_t2") == 0 | 2 << 8
    assert quantity_to_wire("made_up_thing") == "made_up_thing"
    for name in QUANTITY_CODES:
        assert quantity_from_wire(quantity_to_wire(name)) == name
    assert quantity_from_wire(len(QUANTITY_CODES)) is None
    assert quantity_from_wire(-1) is None and quantity_from_wire(True) is None


decimals = st.decimals(allow_nan=True, allow_infinity=True, places=None)
values = st.one_of(decimals, st.text(max_size=10))
names = st.sampled_from([*QUANTITY_CODES, "import_active_energy_t3", "odd_name"])


@settings(max_examples=200)
@given(st.lists(st.tuples(names, values), max_size=30))
def test_reading_values_round_trip_exactly(vals: list[tuple[str, Decimal | str]]) -> None:
    back = reading_values(reading_fields("m1", vals))
    assert len(back) == len(vals)
    for (q1, v1), (q2, v2) in zip(vals, back, strict=True):
        assert q1 == q2
        assert str(v1) == str(v2)  # exact, same exponent: 230.10 stays 230.10


@settings(max_examples=100)
@given(st.lists(st.tuples(names, values), max_size=10), st.integers(1, 2**40),
       st.integers(0, 2**31), st.booleans())
def test_batch_payload_round_trip(vals: list, rec_id: int, t: int, compress: bool) -> None:
    rec = WireRecord("reading", rec_id, t * 1000 - 5, reading_fields("m", vals))
    ev = WireRecord("event", rec_id + 1, t * 1000, {"e": "relay_open", "d": {"x": Decimal("1.5")}})
    raw = encode_batch_payload("gw", 3, ZERO_HASH, t,
                               [record_item(r, t * 1000) for r in (rec, ev)], compress=compress)
    back = decode_batch_payload(raw)
    assert (back.gw, back.seq, back.prev, back.t) == ("gw", 3, ZERO_HASH, t)
    assert back.records[0].id == rec_id and back.records[0].ts_ms == rec.ts_ms
    assert back.records[1].kind == "event" and back.records[1].fields["d"]["x"] == Decimal("1.5")


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_fuzz_payload_decoders(data: bytes) -> None:
    for decode in (decode_batch_payload, decode_ack, decode_command):
        with contextlib.suppress(BadMessage):
            decode(data)


def test_zip_bomb_refused() -> None:
    import zlib
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = packer.compress(b"\x00" * (40 * 1024 * 1024)) + packer.flush()
    raw = cbor2.dumps({"v": 1, "gw": "g", "seq": 1, "prev": ZERO_HASH, "t": 0, "recs": bomb})
    with pytest.raises(BadMessage, match="inflates beyond"):
        decode_batch_payload(raw)


def test_ack_and_command_round_trip() -> None:
    assert decode_ack(encode_ack(Ack("g", 5, 3))) == Ack("g", 5, 3)
    assert decode_ack(encode_ack(Ack("g", 5))) == Ack("g", 5, None)
    cmd = Command("c1", "g", 100, "ping", {"a": 1})
    assert decode_command(encode_command(cmd)) == cmd
    with pytest.raises(BadMessage, match="`op`"):
        decode_command(cbor2.dumps({"id": "c", "gw": "g", "exp": 1, "args": {}}))


DEEP: list = [1]
for _ in range(20):
    DEEP = [DEEP]


@pytest.mark.parametrize("record", [
    {"k": 2, "id": 1, "t": 0, b"x": 1},               # found by make fuzz: crashed the store
    {"k": 2, "id": 1, "t": 0, "d": {b"x": 1}},        # the same, nested
    {"k": 2, "id": 1, "t": 0, "d": cbor2.CBORTag(99, 1)},  # an unknown tag
    {"k": 2, "id": 1, "t": 0, "d": DEEP},
])
def test_record_fields_must_be_plain_data(record: dict) -> None:
    payload = cbor2.dumps({"v": 1, "gw": "gw", "seq": 1, "prev": bytes(32), "t": 0,
                           "recs": [record]})
    with pytest.raises(BadMessage, match="record 0"):
        decode_batch_payload(payload)
