"""A value without a unit gets the unit its OBIS code is documented with (the DSMR 5.0.2 table
for P1 telegrams), never a guessed one; without a documented unit the data set is refused."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from drivers.iec62056.datasets import DataSet, DataValue, parse_block
from drivers.iec62056.mapping import map_datasets
from drivers.iec62056.p1 import P1Port
from drivers.iec62056.readout import decode_message, encode_telegram
from tests.corpus import CORPUS

TELEGRAMS = json.loads((CORPUS / "iec62056/dsmr_telegrams.json").read_text())
READOUTS = json.loads((CORPUS / "iec62056/readouts.json").read_text())
ISKRA = decode_message(TELEGRAMS[0]["telegram"].encode("latin-1"))


def _telegram_samples(lines: str) -> tuple[dict[str, tuple[Decimal | str, str]], list[str]]:
    """Push `lines` through the P1 decoding (identification of a real meter, CRC computed)."""
    sets, problems = parse_block(lines)
    assert not problems and ISKRA.identification is not None
    telegram = P1Port(None, "p1-test")._decode(encode_telegram(ISKRA.identification, sets))
    assert telegram is not None
    return ({s.quantity: (s.value, s.unit) for s in telegram.mapped.samples},
            [e.address for e in telegram.mapped.errors])


def test_unitless_dsmr_power_is_in_kilowatts_as_documented() -> None:
    # stored as 1.2964 W before: the canonical unit was guessed
    samples, refused = _telegram_samples("1-0:1.7.0(000001.2964)\r\n")
    assert samples["active_power"] == (Decimal("1296.4"), "W")
    assert refused == []


@pytest.mark.parametrize(("line", "quantity", "expected"), [
    ("1-0:1.8.1(000123.456)", "import_active_energy_t1", (Decimal("123.456"), "kWh")),
    ("1-0:2.8.2(000001.000)", "export_active_energy_t2", (Decimal("1.000"), "kWh")),
    ("1-0:21.7.0(00.070)", "active_power_l1", (Decimal("70"), "W")),
    ("1-0:32.7.0(0230.1)", "voltage_l1", (Decimal("230.1"), "V")),
    ("1-0:71.7.0(002)", "current_l3", (Decimal("2"), "A")),
])
def test_every_documented_unit_applies(line: str, quantity: str,
                                       expected: tuple[Decimal, str]) -> None:
    samples, _ = _telegram_samples(line + "\r\n")
    assert samples[quantity] == expected


def test_unitless_value_of_an_undocumented_code_is_refused() -> None:
    # DSMR 5.0.2 documents 1.8.1 / 1.8.2, not 1.8.0 (the Hager eHZ sends it without a unit)
    samples, refused = _telegram_samples("1-0:1.8.0(000001.2963)\r\n1-0:1.8.1(000004.426*kWh)\r\n")
    assert "import_active_energy" not in samples
    assert samples["import_active_energy_t1"] == (Decimal("4.426"), "kWh")
    assert refused == ["1-0:1.8.0"]


def test_optical_readout_values_without_a_unit_are_refused() -> None:
    # IEC 62056-21 documents no unit per code: `1.7.0(1.2964)` may be W or kW
    mapped = map_datasets([DataSet("1.7.0", (DataValue("1.2964"),)),
                           DataSet("32.7.0", (DataValue("230.1", "V"),))])
    assert [(s.quantity, s.value) for s in mapped.samples] == [("voltage_l1", Decimal("230.1"))]
    assert [e.address for e in mapped.errors] == ["1.7.0"]
    assert "without a unit" in str(mapped.errors[0])


def test_hager_register_without_unit_is_not_guessed() -> None:
    hager = next(e for e in READOUTS if e["meter"].startswith("Hager"))
    mapped = map_datasets(decode_message((hager["ident_line"] + hager["readout_text"])
                                         .encode("latin-1")).datasets)
    values = {s.quantity: s.value for s in mapped.samples}
    assert "import_active_energy" not in values
    assert values["active_power_l2"] == Decimal("26")  # it had a unit
    assert [e.address for e in mapped.errors] == ["1-0:1.8.0*255"]


def test_corpus_telegrams_map_without_refusals() -> None:
    for entry in TELEGRAMS:
        telegram = P1Port(None, "p1-test")._decode(entry["telegram"].encode("latin-1"))
        assert telegram is not None
        assert telegram.mapped.errors == [], entry["version"]
