"""Every public capture in ../shared/corpus/iec62056 parses; damaged ones are reported."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from drivers.errors import ChecksumError, FrameError
from drivers.iec62056.mapping import map_datasets
from drivers.iec62056.readout import CHECKSUM_BAD, CHECKSUM_MISSING, CHECKSUM_OK, decode_message
from tests.corpus import CORPUS as CORPUS_ROOT

CORPUS = CORPUS_ROOT / "iec62056"
READOUTS = json.loads((CORPUS / "readouts.json").read_text())
TELEGRAMS = json.loads((CORPUS / "dsmr_telegrams.json").read_text())

# The notes of these captures describe damage a parser must report.
DAMAGED = {
    "Kamstrup Multical 66C (district heating meter)": CHECKSUM_BAD,
    "Itron (Actaris) ACE3000 type 260": CHECKSUM_BAD,
    "Landis+Gyr E350 ZMF100AC (firmware M27)": CHECKSUM_MISSING,
}


def _raw(entry: dict[str, str]) -> bytes:
    return (entry["ident_line"] + entry["readout_text"]).encode("latin-1")


def _data_line_count(text: str) -> int:
    body = text.split("!")[0]
    return sum(1 for line in body.replace("\r", "").split("\n") if "(" in line)


@pytest.mark.parametrize("entry", READOUTS, ids=lambda e: e["meter"][:24])
def test_readout_parses_to_its_data_sets(entry: dict[str, str]) -> None:
    readout = decode_message(_raw(entry))
    assert readout.identification is not None
    assert readout.identification.manufacturer == entry["ident_line"][1:4]
    continuation_lines = entry["readout_text"].count("\r\n(")
    assert len(readout.datasets) == _data_line_count(entry["readout_text"]) - continuation_lines
    verdict = DAMAGED.get(entry["meter"])
    if verdict is None:
        assert not readout.damaged, readout.problems
    else:
        assert readout.checksum == verdict
        assert readout.problems
        with pytest.raises(FrameError):
            readout.raise_if_damaged()


def test_damaged_bcc_raises_checksum_error() -> None:
    kamstrup = next(e for e in READOUTS if e["meter"].startswith("Kamstrup Multical"))
    with pytest.raises(ChecksumError, match="0x61"):
        decode_message(_raw(kamstrup)).raise_if_damaged("kamstrup")


def test_garbage_inside_readout_is_reported_with_offset() -> None:
    ace = next(e for e in READOUTS if e["meter"].startswith("Itron"))
    readout = decode_message(_raw(ace))
    assert any("has no '(' value" in p and "offset" in p for p in readout.problems)
    assert readout.datasets[-1].address == "1.8.0"  # the line keeps what came before the garbage


@pytest.mark.parametrize("entry", TELEGRAMS, ids=lambda e: e["version"][:24])
def test_dsmr_crc_verifies(entry: dict[str, str]) -> None:
    readout = decode_message(entry["telegram"].encode("latin-1"))
    assert readout.checksum == CHECKSUM_OK
    assert readout.checksum_kind == "crc16"
    assert not readout.problems
    assert len(readout.datasets) == _data_line_count(entry["telegram"].split("\r\n", 1)[1])


@pytest.mark.parametrize("entry", TELEGRAMS, ids=lambda e: e["version"][:24])
def test_dsmr_crc_fails_when_a_digit_changes(entry: dict[str, str]) -> None:
    damaged = entry["telegram"].replace("(", "(9", 1).encode("latin-1")
    readout = decode_message(damaged)
    assert readout.checksum == CHECKSUM_BAD
    with pytest.raises(ChecksumError):
        readout.raise_if_damaged()


def test_landis_gyr_e650_maps_to_quantities() -> None:
    e650 = next(e for e in READOUTS if "E650" in e["meter"])
    mapped = map_datasets(decode_message(_raw(e650)).datasets)
    values = {s.quantity: s.value for s in mapped.samples}
    assert values["import_active_energy"] == Decimal("1005")
    assert values["import_active_energy_t3"] == Decimal("684")
    assert values["voltage_l3"] == Decimal("228.1")
    assert values["meter_datetime"] == "2022-12-28T11:03:17"
    assert values["error_flags"] == "00000000"
    # historic billing periods (1.8.1*1) are not current values
    assert sum(1 for s in mapped.samples if s.quantity == "import_active_energy_t1") == 1


def test_dsmr_units_are_converted_exactly() -> None:
    sagemcom = next(e for e in TELEGRAMS if "Sagemcom" in e["version"])
    mapped = map_datasets(decode_message(sagemcom["telegram"].encode("latin-1")).datasets)
    values = {s.quantity: (s.value, s.unit) for s in mapped.samples}
    assert values["import_active_energy"] == (Decimal("6545.766"), "kWh")
    assert values["active_power"] == (Decimal("286"), "W")
    assert values["export_reactive_energy"] == (Decimal("3897.726"), "kvarh")


def test_max_demand_keeps_its_timestamp() -> None:
    fluvius = next(e for e in TELEGRAMS if "Fluvius" in e["version"])
    mapped = map_datasets(decode_message(fluvius["telegram"].encode("latin-1")).datasets)
    values = {s.quantity: s.value for s in mapped.samples}
    assert values["max_demand_active_power"] == Decimal("2589")
    assert mapped.max_demand_time == "2020-05-09T13:45:58"
    assert values["serial_number"] == "1SAG3101021605"


def test_dsmr22_gas_continuation_line_joins_its_header() -> None:
    kamstrup = next(e for e in READOUTS if e["meter"].startswith("Kamstrup 162"))
    readout = decode_message(_raw(kamstrup))
    gas = next(s for s in readout.datasets if s.address == "0-1:24.3.0")
    assert gas.values[-1].value == "00054.386"
    assert len(gas.values) == 7
