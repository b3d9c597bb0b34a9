"""Conformance over the DLMS corpus (frames.json, the shared public frames): every frame decodes
or is refused with a DriverError (never another exception), every published value is
reproduced. Ciphered messages are built by the tests themselves (test_ciphered.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from drivers.dlms.decode import decode
from drivers.errors import DriverError
from drivers.obis.units import UNIT_SCALE, scale_to
from tests.drivers.dlms.corpus import DLMS_CORPUS, FILES, entries

ALL = [e for e in entries() if e["frames_hex"]]
# Entries the decoder refuses, each for the reason the corpus notes give (damaged on purpose,
# or bytes that are a key / a Data value / an access parameter rather than an APDU).
REFUSED = {
    "dlms-cosem/conftest/global_authentication_key#1": "a key, not an APDU",
    "dlms-cosem/conftest/global_broadcast_key#1": "a key, not an APDU",
    "dlms-cosem/conftest/set_request#1": "a Data value (octet-string date-time)",
    "dlms-cosem/test_action/test_transform_bytes#1": "a Data value (HLS f(StoC))",
    "dlms-cosem/test_action/test_transform_bytes#2": "a Data value (HLS f(StoC))",
    "dlms-cosem/test_data_notification/test_transform_bytes#1": "a Data value",
    "dlms-cosem/test_selective_access/test_range_descriptor_to_bytes#1": "access parameters",
    "dlms-cosem/test_action/test_wrong_request_type_raises_valueerror#1": "wrong type",
    "dlms-cosem/test_get/test_wrong_tag_raises_valueerror#1": "wrong tag",
    "dlms-cosem/test_get/test_wrong_request_type_raises_valueerror#1": "wrong type",
    "dlms-cosem/test_get/test_wrong_type_raises_valueerror#1": "wrong type",
    "dlms-cosem/test_get/test_wrong_length_data_raises_valueerror#1": "length beyond the data",
    "dlms-cosem/test_set/test_set_request_with_block_raises_not_implemented_error#1": "type",
    "dlms-cosem/test_set/test_set_with_list_raises_not_implemented_error#1": "type",
}


def _decode(entry: dict[str, Any]) -> dict[str, Any]:
    return decode(entry["frames_hex"])


@pytest.mark.parametrize("entry", ALL, ids=[f"{i}-{e['name'][:60]}" for i, e in enumerate(ALL)])
def test_every_frame_decodes_or_is_refused_clearly(entry: dict[str, Any]) -> None:
    try:
        result = _decode(entry)
    except DriverError as error:
        assert entry["name"] in REFUSED, f"unexpected refusal: {error}"
        assert str(error)
        return
    assert entry["name"] not in REFUSED, "decoded, though the corpus marks it as damaged"
    json.dumps(result)  # JSON-able, all of it


def test_refusals_are_the_expected_ones() -> None:
    refused = set()
    for entry in ALL:
        try:
            _decode(entry)
        except DriverError:
            refused.add(entry["name"])
    assert refused == set(REFUSED)


def _quantity(text: str) -> tuple[Decimal, str]:
    number, unit = text.rsplit(" ", 1)
    return Decimal(number.replace(" ", "")), unit


@pytest.mark.parametrize("entry", [e for e in ALL if e.get("expected")],
                         ids=lambda e: e["name"])
def test_published_values_are_reproduced(entry: dict[str, Any]) -> None:
    objects = {o["obis"]: o for o in _decode(entry)["objects"]}
    for obis, text in entry["expected"].items():
        value, unit = _quantity(text)
        got = objects[obis]
        canonical = UNIT_SCALE[unit][0]  # compare both in the gateway's unit: 0.601 kW = 601 W
        assert scale_to(Decimal(got["value"]), got["unit"], canonical) == scale_to(
            value, unit, canonical), (obis, got)


def test_kamstrup_and_kaifa_values_in_gateway_units() -> None:
    kamstrup = next(e for e in ALL if e["name"].endswith("xibriz4.txt/len303#2"))
    found = _samples(kamstrup)
    assert found["import_active_energy"] == (Decimal("4274.47"), "kWh")  # 0x000685B7 x 10 Wh
    assert found["current_l1"] == (Decimal("13.31"), "A")
    assert found["voltage_l1"] == (Decimal(230), "V")
    assert found["meter_datetime"] == ("2017-10-20T05:00:05", "")
    kaifa = next(e for e in ALL if e["name"].endswith("20170914.txt/len157#1"))
    found = _samples(kaifa)
    assert found["voltage_l1"] == (Decimal("236.9"), "V")
    assert found["current_l1"] == (Decimal("1.937"), "A")
    assert found["import_active_energy"] == (Decimal("180.073"), "kWh")  # 0x0002BF69 Wh


def _samples(entry: dict[str, Any]) -> dict[str, tuple[Decimal | str, str]]:
    out: dict[str, tuple[Decimal | str, str]] = {}
    for sample in _decode(entry)["samples"]:
        text = sample["value"]
        value = text if "T" in text else Decimal(text)
        out[sample["quantity"]] = (value, sample["unit"])
    return out


def test_the_corpus_holds_only_the_shared_copy() -> None:
    # data from other repositories comes only through ../shared/corpus (the project's rule)
    assert sorted(p.name for p in DLMS_CORPUS.iterdir()) == ["README.md", *sorted(FILES)]
    shared = DLMS_CORPUS.resolve().parents[2].parent / "shared" / "corpus" / "dlms"
    for name in FILES:
        if (shared / name).is_file():
            assert (shared / name).read_bytes() == (DLMS_CORPUS / name).read_bytes()
