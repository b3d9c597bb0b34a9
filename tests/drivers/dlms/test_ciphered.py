"""Ciphered messages through `decode`, built independently of drivers/dlms
(tests/drivers/dlms/vectors.py: the Green Book layout sealed with AESGCM): every one opens to
exactly the plaintext built, the push to exactly its values, and a flipped bit, a wrong key or
a missing key or system title is refused with a DriverError."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from drivers.dlms.decode import decode
from drivers.dlms.errors import CipherError
from drivers.errors import DriverError
from tests.drivers.dlms import vectors
from tests.drivers.dlms.vectors import AK, EK, METER_TITLE, VECTORS, Vector

OTHER_KEY = bytes.fromhex("5C" * 16)


def _decode(vector: Vector, frames: list[str] | None = None, key: bytes = EK,
            auth_key: bytes = AK) -> dict[str, Any]:
    title = None if vector.system_title is None else vector.system_title.hex()
    return decode(frames or vector.frames_hex, key=key.hex(), auth_key=auth_key.hex(),
                  system_title=title)


def _opened(result: dict[str, Any]) -> dict[str, Any]:
    """Where the opened APDU is described: the top level, or an association's user-information."""
    return result if "plaintext_hex" in result else result["apdu"]["user_information"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_every_vector_opens_to_its_plaintext(vector: Vector) -> None:
    result = _decode(vector)
    json.dumps(result)
    opened = _opened(result)
    assert opened["plaintext_hex"] == vector.plaintext.hex().upper()
    security = opened["security"]
    assert security["invocation_counter"] == vector.counter
    assert security["security_control"] == f"0x{vector.control:02X}"
    assert security["authenticated"] == bool(vector.control & vectors.SC_AUTHENTICATED)
    assert security["encrypted"] == bool(vector.control & vectors.SC_ENCRYPTED)


@pytest.mark.parametrize("vector", [v for v in VECTORS if v.control & vectors.SC_AUTHENTICATED],
                         ids=lambda v: v.name)
def test_a_flipped_bit_or_a_wrong_key_is_refused(vector: Vector) -> None:
    raw = vector.frames[0]
    for at in (len(raw) - 1, len(raw) - vectors.TAG_BYTES - 1):  # in the tag, before it
        with pytest.raises(CipherError):
            _decode(vector, [vectors.flip(raw, at).hex()])
    with pytest.raises(CipherError):
        _decode(vector, auth_key=OTHER_KEY)
    if vector.control & vectors.SC_ENCRYPTED:
        with pytest.raises(CipherError):
            _decode(vector, key=OTHER_KEY)


def test_encrypted_only_with_a_wrong_key_is_not_the_plaintext() -> None:
    vector = next(v for v in VECTORS if v.control == vectors.SC_ENCRYPTED)
    try:  # no tag to refuse it: other bytes come out, which may or may not parse
        result = _decode(vector, key=OTHER_KEY)
    except DriverError:
        return
    assert result["plaintext_hex"] != vector.plaintext.hex().upper()


def test_the_push_gives_exactly_its_values() -> None:
    vector = next(v for v in VECTORS if v.name == "wrapped-push")
    result = _decode(vector)
    assert result["link"] == {"transport": "wrapper", "source_wport": 1,
                              "destination_wport": 0x66}
    assert result["security"]["system_title"] == METER_TITLE.hex().upper()
    assert result["apdu"]["type"] == "data-notification"
    assert result["apdu"]["long_invoke"] == 0x42
    assert result["apdu"]["date_time"] == "2026-12-04T19:45:30+01:00"
    assert result["objects"] == list(vectors.PUSH_OBJECTS)
    got = {s["quantity"]: (Decimal(s["value"]), s["unit"]) for s in result["samples"]}
    assert got == vectors.PUSH_SAMPLES


def test_the_get_request_and_the_initiates_decode() -> None:
    get = _decode(next(v for v in VECTORS if v.name == "glo-get-request"))["apdu"]
    assert get["type"] == "get-request" and get["invoke"] == 0xC1
    assert get["attributes"] == [[{"class_id": 3, "instance": "0100010800FF", "index": 2}, None]]
    aarq = _decode(next(v for v in VECTORS if v.name == "aarq-glo-initiate-request"))["apdu"]
    assert aarq["calling_ap_title"] == vectors.CLIENT_TITLE.hex().upper()
    assert (aarq["context"], aarq["mechanism"]) == (3, 5)
    initiate = aarq["user_information"]
    assert initiate["type"] == "initiate-request"
    assert (initiate["conformance"], initiate["max_receive_pdu"]) == (vectors.CONFORMANCE, 1024)
    aare = _decode(next(v for v in VECTORS if v.name == "aare-glo-initiate-response"))["apdu"]
    assert aare["reason"] == "accepted" and aare["diagnostic"] == 14
    answer = aare["user_information"]
    assert (answer["type"], answer["max_receive_pdu"], answer["vaa_name"]) == (
        "initiate-response", 512, 7)


def test_a_ciphered_frame_without_a_key_names_its_header() -> None:
    vector = next(v for v in VECTORS if v.name == "wrapped-push")
    with pytest.raises(DriverError, match=r"general-glo-ciphering \(system title "
                                          r"47574D0A1B2C3D4E, SC 0x30, IC 4096\): a key is needed"):
        decode(vector.frames_hex)
    aarq = next(v for v in VECTORS if v.name == "aarq-glo-initiate-request")
    info = decode(aarq.frames_hex)["apdu"]["user_information"]
    assert info == {"ciphered": aarq.frames[0][-(1 + 1 + 5 + 14 + 12):].hex().upper()}


def test_service_specific_apdus_need_the_senders_system_title() -> None:
    vector = next(v for v in VECTORS if v.name == "glo-get-request")
    with pytest.raises(CipherError, match="system title"):
        decode(vector.frames_hex, key=EK.hex(), auth_key=AK.hex())
    with pytest.raises(CipherError):  # the other side's title: another IV, the tag fails
        decode(vector.frames_hex, key=EK.hex(), auth_key=AK.hex(),
               system_title=METER_TITLE.hex())
