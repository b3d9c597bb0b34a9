"""Match decoded records against the reference reader's values in the public corpus."""

from __future__ import annotations

import json
import os
from decimal import Decimal

from drivers.errors import DriverError
from drivers.mbus.records import Record
from drivers.wmbus.telegram import TelegramDecoder
from tests.corpus import CORPUS as CORPUS_ROOT

CORPUS = CORPUS_ROOT / "wmbus" / "telegrams.json"
# The reference reader prints dates the telegram marks invalid (2000-00-00, or a type F time
# whose IV bit is set); the gateway decodes those to null and keeps the bytes.
INVALID_IN_TELEGRAM = "invalid in the telegram: null, bytes kept"
TOLERANCE = Decimal("0.0000006")  # the reference prints doubles rounded to 6 decimals

_TO_BASE = {  # unit -> (base unit, factor)
    "Wh": ("kWh", Decimal("0.001")), "J": ("kWh", Decimal(1) / Decimal(3600000)),
    "m3": ("m3", Decimal(1)), "m3/h": ("m3/h", Decimal(1)), "m3/min": ("m3/h", Decimal(60)),
    "m3/s": ("m3/h", Decimal(3600)), "W": ("kW", Decimal("0.001")),
    "J/h": ("kW", Decimal(1) / Decimal(3600000)), "C": ("C", Decimal(1)), "K": ("C", Decimal(1)),
    "V": ("V", Decimal(1)), "HCA": ("HCA", Decimal(1)),
    "s": ("h", Decimal(1) / 3600), "min": ("h", Decimal(1) / 60), "h": ("h", Decimal(1)),
    "d": ("h", Decimal(24)),
}
_KINDS = {
    "_m3": ({"volume"}, "m3"), "_kwh": ({"energy"}, "kWh"),
    "_hca": ({"heat_cost_allocation"}, "HCA"),
    "_m3h": ({"volume_flow"}, "m3/h"), "power_kw": ({"power"}, "kW"),
    "flow_return_temperature_difference_c": ({"temperature_difference"}, "C"),
    "flow_temperature_c": ({"flow_temperature"}, "C"),
    "return_temperature_c": ({"return_temperature"}, "C"),
    "external_temperature_c": ({"external_temperature"}, "C"),
    "battery_v": ({"voltage"}, "V"), "on_time_h": ({"on_time"}, "h"),
    "operating_time_h": ({"operating_time"}, "h"),
    "actuality_duration_s": ({"actuality_duration"}, "s"),
    "actuality_duration_h": ({"actuality_duration"}, "h"),
}
_IDENTS = {
    "fabrication_no": "fabrication_number", "enhanced_id": "enhanced_identification",
    "software_version": "software_version", "model_version": "model_version",
    "parameter_set": "parameter_set", "customer": "customer",
    "firmware_version": "firmware_version", "access_counter": "access_number",
}


def load_corpus() -> list[dict]:
    return json.loads(CORPUS.read_text())


# Diehl / Sappel / Hydrometer meters ship with a published default key; the corpus names it in
# one entry (implicit_default_key_hex) and a configured gateway has it as those meters' key.
_DIEHL_MAKES = ("HYD", "SAP", "DME")
_PRIOS_CIS = ("A0", "A1", "A2", "A3")   # a PRIOS-scrambled telegram (not their OMS ones)


def _diehl_default_key(corpus: list[dict]) -> str | None:
    return next((e["implicit_default_key_hex"] for e in corpus
                 if e.get("implicit_default_key_hex")
                 and e["link_info"].get("mfct") in _DIEHL_MAKES), None)


_DIEHL_KEY = _diehl_default_key(load_corpus())


def extra_diehl_keys() -> list[str]:
    """Further Diehl default keys (hex, comma separated) from CORPUS_DIEHL_KEYS: the corpus
    holds one; a key not in it is not committed, but can be given to check the descrambler."""
    return [k.strip() for k in os.environ.get("CORPUS_DIEHL_KEYS", "").split(",") if k.strip()]


def entry_keys(entry: dict) -> list[bytes | None]:
    """The keys a configured gateway may have for the entry's meter (one is the right one)."""
    key_hex = entry["key_hex"] or entry.get("implicit_default_key_hex")
    info = entry["link_info"]
    if key_hex is None and info.get("mfct") in _DIEHL_MAKES and \
            (info.get("ci_chain") or [""])[0] in _PRIOS_CIS:
        return [bytes.fromhex(k) for k in [_DIEHL_KEY, *extra_diehl_keys()] if k]
    return [bytes.fromhex(key_hex) if key_hex else None]


def decode_entry(entry: dict) -> list[Record]:
    """Decode an entry (and the frames it depends on) the way a configured gateway would."""
    keys = entry_keys(entry)
    for key in keys[:-1]:
        try:
            return _decode_with(entry, key)
        except DriverError:
            continue
    return _decode_with(entry, keys[-1])


def _decode_with(entry: dict, key: bytes | None) -> list[Record]:
    decoder = TelegramDecoder(lambda _meter: key)
    telegram = None
    for frame in entry.get("telegram_sequence_hex") or [entry["telegram_hex"]]:
        telegram = decoder.decode(bytes.fromhex(frame))
    assert telegram is not None
    return telegram.records


def telegram_shares(results: list[dict[str, str]]) -> tuple[int, int]:
    """(telegrams whose every standard value is reproduced, telegrams with standard values)."""
    with_values = [r for r in results if r]
    good = sum(all(v in ("ok", INVALID_IN_TELEGRAM) for v in r.values()) for r in with_values)
    return good, len(with_values)


def _numeric_candidates(records: list[Record], kinds: set[str], base: str) -> list[Decimal]:
    found = []
    for record in records:
        if record.kind in kinds and isinstance(record.value, Decimal):
            unit_base, factor = _TO_BASE.get(record.unit, (None, Decimal(1)))
            if base == "s" and unit_base == "h":
                factor, unit_base = factor * 3600, "s"
            if unit_base == base:
                found.append(record.value * factor)
    return found


def _matches_date(records: list[Record], expected: str) -> bool:
    wanted = expected.replace(" ", "T")
    return any(
        isinstance(r.value, str) and r.kind in ("date", "datetime") and
        (r.value.startswith(wanted) or (len(wanted) == 10 and r.value[:10] == wanted))
        for r in records
    )


def _printed(raw: bytes) -> str | None:
    """What the reference reader shows for date bytes: the fields as they are (IV ignored)."""
    if len(raw) == 2:
        day, month = raw[0] & 0x1F, raw[1] & 0x0F
        year = ((raw[0] & 0xE0) >> 5) | ((raw[1] & 0xF0) >> 1)
        return f"{2000 + year:04d}-{month:02d}-{day:02d}"
    if len(raw) in (4, 6):
        minute, hour = raw[-4] & 0x3F, raw[-3] & 0x1F
        seconds = f":{raw[0] & 0x3F:02d}" if len(raw) == 6 else ""
        return f"{_printed(raw[-2:])}T{hour:02d}:{minute:02d}{seconds}"
    return None


# The reference turns an all-zero type G date (day 0 of month 0 of 2000) into the day before
# month 0 of 2000 (1999-11-30, C mktime normalisation) and prints null for an all-FF one.
_ZERO_DATE_SHOWN = "1999-11-30"


def null_date_matches(records: list[Record], expected: str | None) -> bool:
    """True when a date record is null and its bytes hold what the reference reader shows."""
    nulls = [r for r in records
             if r.kind in ("date", "datetime") and r.value is None and r.raw is not None]
    if expected is None:
        return bool(nulls)
    wanted = expected.replace(" ", "T")
    for record in nulls:
        assert record.raw is not None
        shown = _printed(record.raw)
        if wanted == _ZERO_DATE_SHOWN and not any(record.raw):
            return True
        if shown is not None and (shown.startswith(wanted) or shown[:10] == wanted[:10] == wanted):
            return True
    return False


def field_matches(records: list[Record], name: str, expected: object) -> bool:
    """True when some decoded record carries the reference value of field `name`."""
    if name.endswith(("_date", "_datetime")):
        return _matches_date(records, str(expected))
    if name in _IDENTS:
        want = str(expected).lstrip("0") or "0"
        return any(r.kind == _IDENTS[name] and
                   (str(r.value).lstrip("0") or "0").upper() == want.upper() for r in records)
    for suffix, (kinds, base) in _KINDS.items():
        if name.endswith(suffix) or name == suffix:
            target = Decimal(str(expected))
            return any(abs(v - target) <= TOLERANCE for v in
                       _numeric_candidates(records, kinds, base))
    raise KeyError(f"no matcher for reference field {name}")


def check_entry(entry: dict) -> dict[str, str]:
    """Field -> "ok" or a failure reason, for every standard field of the entry."""
    fields = [f for f in entry.get("standard_record_fields_guess") or []
              if f in entry["expected"]]
    try:
        records = decode_entry(entry)
    except DriverError as exc:
        return {f: f"decode error: {exc}" for f in fields}
    return {f: _status(records, f, entry["expected"][f]) for f in fields}


def _status(records: list[Record], name: str, expected: object) -> str:
    if expected is not None and field_matches(records, name, expected):
        return "ok"
    if name.endswith(("_date", "_datetime")) and null_date_matches(
            records, None if expected is None else str(expected)):
        return INVALID_IN_TELEGRAM
    return "value not found"
