"""The `decode` entry point: its JSON shape, segmented HDLC pushes, ciphered pushes with the
keys given (sealed by tests/drivers/dlms/vectors.py, not by drivers/dlms), and no exception but
a DriverError for any bytes."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from drivers.dlms.apdu import NEXT, GetResponse
from drivers.dlms.axdr import Data, Tag, encode_data
from drivers.dlms.cosem import obis_bytes
from drivers.dlms.decode import decode
from drivers.dlms.hdlc import LLC_RESPONSE, Address, Control, FrameKind, HdlcFrame, build_frame
from drivers.dlms.notification import DataNotification
from drivers.dlms.security import Keys
from drivers.errors import DriverError
from tests.drivers.dlms import vectors

KEYS = Keys(bytes(range(16)), bytes(range(16, 32)))
TITLE = b"AID\x00\x00\x00\x00\x07"


def _push(count: int) -> bytes:
    """An Aidon-style self-describing push with `count` energy registers."""
    items = tuple(Data(Tag.STRUCTURE, (
        Data(Tag.OCTET_STRING, obis_bytes(f"1-0:1.8.{t}.255")),
        Data(Tag.DOUBLE_LONG_UNSIGNED, 1000 + t),
        Data(Tag.STRUCTURE, (Data(Tag.INTEGER, -2), Data(Tag.ENUM, 30)))))
        for t in range(count))
    return DataNotification(7, None, Data(Tag.ARRAY, items)).build()


def _segments(apdu: bytes, size: int) -> list[str]:
    info = LLC_RESPONSE + apdu
    parts = [info[i:i + size] for i in range(0, len(info), size)]
    return [build_frame(HdlcFrame(Address(16), Address(1, 17, 2), Control(FrameKind.UI), p,
                                  i < len(parts) - 1)).hex() for i, p in enumerate(parts)]


def test_segmented_ciphered_push() -> None:
    plain = _push(9)
    sealed = vectors.general_glo(plain, TITLE, 42, ek=KEYS.encryption, ak=KEYS.authentication)
    frames = _segments(sealed, 64)
    assert len(frames) > 3
    result = decode(frames, key=KEYS.encryption.hex(), auth_key=KEYS.authentication.hex())
    json.dumps(result)
    assert [f["segmented"] for f in result["link"]["frames"]][-1] is False
    assert result["security"]["invocation_counter"] == 42
    assert result["plaintext_hex"] == plain.hex().upper()
    assert result["objects"][1] == {"obis": "1-0:1.8.1.255", "value": "10.01", "unit": "Wh",
                                    "scaler": -2}
    assert result["samples"][0] == {"quantity": "import_active_energy", "value": "0.01000",
                                    "unit": "kWh"}
    damaged = _segments(vectors.flip(sealed, len(sealed) - 20), 64)
    with pytest.raises(DriverError, match="tag"):
        decode(damaged, key=KEYS.encryption.hex(), auth_key=KEYS.authentication.hex())


def test_frames_may_come_in_one_string() -> None:
    frames = _segments(_push(3), 40)
    assert decode(["".join(frames)])["objects"] == decode(frames)["objects"]


def test_cut_or_unfinished_messages_are_refused() -> None:
    frames = _segments(_push(9), 64)
    with pytest.raises(DriverError, match="final segment"):
        decode(frames[:-1])
    with pytest.raises(DriverError, match="cut short"):
        decode([frames[0][:-6]])
    with pytest.raises(DriverError, match="not hex"):
        decode(["7E A0 zz"])
    with pytest.raises(DriverError, match="no bytes"):
        decode([])


def test_a_kaifa_list_1_push_uses_its_profile() -> None:
    push = DataNotification(0x40000000, None, Data(Tag.STRUCTURE, (
        Data(Tag.DOUBLE_LONG_UNSIGNED, 1320),))).build()
    result = decode([push.hex()])
    assert result["apdu"]["profile"] == "kaifa"
    assert result["objects"] == [{"obis": "1-0:1.7.0.255", "value": "1320", "unit": "W",
                                  "scaler": 0}]


@given(st.binary(max_size=120), st.sampled_from([b"", b"\x7e\xa0", b"\xe6\xe7\x00\x0f",
                                                 b"\x00\x01\x00\x01\x00\x01", b"\xdb\x08"]))
@example(encode_data(Data(Tag.ARRAY, (Data(Tag.NULL),) * 3)), b"\x0f\x00\x00\x00\x01\x00")
def test_any_bytes_decode_or_raise_a_driver_error(body: bytes, head: bytes) -> None:
    with contextlib.suppress(DriverError):  # the refusal is fine; anything else fails
        json.dumps(decode([(head + body).hex()], key=KEYS.encryption.hex()))


def test_a_value_in_one_block_is_decoded() -> None:
    value = Data(Tag.ARRAY, (Data(Tag.LONG_UNSIGNED, 5),))
    one = GetResponse(NEXT, 0xC1, (), True, 1, encode_data(value)).build()
    assert decode([one.hex()])["apdu"]["data"] == {
        "type": "array", "value": [{"type": "long-unsigned", "value": 5}]}
    first = GetResponse(NEXT, 0xC1, (), False, 1, encode_data(value)[:2]).build()
    assert "data" not in decode([first.hex()])["apdu"]
