"""EN 13757-3 data records: DIF/DIFE/VIF/VIFE decoding with a cached parse plan, and an encoder.

Meters send the same record layout in every telegram, so the first walk over a payload records a
*plan* (where each value sits and how to convert it); later payloads with the same DIF/VIF bytes
skip the walk and only slice and convert.

Values are computed under core.numbers.BOUNDED. A value it cannot hold exactly (an extreme VIF
exponent, a 36-digit LVAR integer) becomes a record with `value=None`, its bytes in `raw` and a
FrameError message in `error`; it never raises out of the decoder. An invalid date or time
(all FF, all zero, month 15, day 0, the IV bit set...) is `value=None` with `raw` too.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, DecimalException
from operator import itemgetter
from typing import Final, NamedTuple

from core.numbers import BOUNDED, OutOfRange
from drivers.errors import FrameError
from drivers.mbus import values as X
from drivers.mbus import vif as V
from drivers.mbus.values import date_g, datetime_f, time_j

__all__ = ["Record", "RecordDecoder", "RecordSpec", "date_g", "datetime_f", "decode_records",
           "encode_record", "time_j"]

FUNCTIONS: Final = ("instantaneous", "maximum", "minimum", "error")
# Data length per DIF low nibble (0x0D is variable, 0x0F special).
_DATA_LEN: Final = (0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6, 8)
_MAX_DIFE: Final = 10   # EN 13757-3 allows at most 10 DIFE / VIFE bytes
_MAX_PLANS: Final = 256  # bound on cached layouts (a busy block has a few dozen meter types)


class Record(NamedTuple):
    """One decoded data record. `value` is exact: Decimal, or str for dates / text / raw hex;
    None when the meter sent no usable value (invalid date, value out of range), with the data
    bytes in `raw` and, for a value out of range, the FrameError message in `error`."""

    kind: str
    unit: str
    value: Decimal | str | None
    storage: int = 0
    tariff: int = 0
    subunit: int = 0
    function: str = "instantaneous"
    modifiers: tuple[str, ...] = ()
    raw: bytes | None = None
    error: str = ""


class RecordSpec(NamedTuple):
    """What the encoder needs to write one record (the inverse of a plain numeric Record)."""

    data_field: int          # DIF low nibble: 1-4, 6, 7 integers; 9-C, E BCD
    vif: int                 # primary VIF without extension bit (0x00-0x7A)
    raw: int                 # integer (or BCD digits as an int) before scaling
    storage: int = 0
    tariff: int = 0
    subunit: int = 0
    function: int = 0
    vifes: tuple[int, ...] = ()


# One record of a plan, a plain tuple (the decode loop unpacks it; a NamedTuple unpacks slower):
# (start, end, convert, factor, exponent, kind, unit, storage, tariff, subunit, function,
# modifiers): the data bytes are payload[start:end]; `convert` is values.int_value_fast for a
# binary integer scaled by scaleb(exponent, BOUNDED) (exponent <= 0), values.int_value_up for
# one multiplied by the proven `factor` (values.proven_power), else the converter called with
# (data, exponent); the rest are the Record's fields in order.
_Step = tuple
START, END, CONVERT, FACTOR, EXPONENT, KIND = range(6)


class _Plan(NamedTuple):
    spans: tuple[tuple[int, int], ...]
    headers: Callable[[bytes], object]   # a payload's DIF/VIF bytes (and fillers), cut in C
    signature: object                    # headers() of the payload the plan was built from
    steps: tuple[_Step, ...]
    dates: tuple[int, ...]   # steps that may give no value (invalid date): raw bytes kept


# ---- the walk: bytes -> plan ---------------------------------------------------

def _read_extensions(payload: bytes, pos: int, what: str) -> tuple[list[int], int]:
    """Read extension bytes while the previous byte had bit 7 set; returns (bytes, new pos)."""
    found: list[int] = []
    while payload[pos - 1] & 0x80:
        if pos >= len(payload):
            raise FrameError(f"record truncated in {what}", pos)
        if len(found) >= _MAX_DIFE:
            raise FrameError(f"more than {_MAX_DIFE} {what} bytes", pos)
        found.append(payload[pos])
        pos += 1
    return found, pos


def _storage_tariff_subunit(dif: int, difes: list[int]) -> tuple[int, int, int]:
    storage = (dif >> 6) & 1
    tariff = subunit = 0
    for index, dife in enumerate(difes):
        storage |= (dife & 0x0F) << (1 + 4 * index)
        tariff |= ((dife >> 4) & 0x03) << (2 * index)
        subunit |= ((dife >> 6) & 0x01) << index
    return storage, tariff, subunit


def _vif_info(payload: bytes, pos: int) -> tuple[V.VifInfo, list[int], int]:
    """Decode the VIF at `pos`; returns (meaning, remaining VIFE codes, position after header)."""
    code = payload[pos]
    pos += 1
    base = code & 0x7F
    if base == V.PLAIN_TEXT_VIF:
        if pos >= len(payload) or pos + 1 + payload[pos] > len(payload):
            raise FrameError("plain-text VIF runs past the payload", pos)
        size = payload[pos]
        unit = payload[pos + 1:pos + 1 + size][::-1].decode("latin-1")
        pos += 1 + size
        vifes: list[int] = []
        if code & 0x80:  # the VIF byte's own bit says a VIFE follows the text (not the text's)
            if pos >= len(payload):
                raise FrameError("record truncated in VIFE", pos)
            more, after = _read_extensions(payload, pos + 1, "VIFE")
            vifes, pos = [payload[pos], *more], after
        return V.VifInfo("plain_text_unit", unit, 0), vifes, pos
    vifes, pos = _read_extensions(payload, pos, "VIFE")
    if base in (0x7B, 0x7D):
        if not vifes:
            raise FrameError(f"extension VIF {code:02X} without VIFE", pos)
        table = V.EXT_FB if base == 0x7B else V.EXT_FD
        return table[vifes[0] & 0x7F], vifes[1:], pos
    if base == V.MANUFACTURER_VIF:
        return V.VifInfo("manufacturer_specific", "", 0, V.RAW), [], pos
    if base == V.ANY_VIF:
        return V.VifInfo("any", "", 0, V.RAW), vifes, pos
    return V.PRIMARY[base], vifes, pos


def _apply_vifes(info: V.VifInfo, vifes: list[int]) -> tuple[int, tuple[str, ...]]:
    exponent = info.exponent
    modifiers: list[str] = []
    for vife in vifes:
        code = vife & 0x7F
        if code in V.VIFE_EXPONENT_SHIFT:
            exponent += V.VIFE_EXPONENT_SHIFT[code]
        elif code in V.VIFE_NAMES:
            modifiers.append(V.VIFE_NAMES[code])
        elif code == 0:
            continue    # "no error" code some meters send anyway
        elif code < 0x20:
            modifiers.append(f"record_error_{code:02x}")
        else:
            modifiers.append(f"vife_{code:02x}")
    return exponent, tuple(modifiers)


def _variable_length(lvar: int, pos: int) -> tuple[int, X.Converter]:
    if lvar < 0xC0:
        return lvar, X.text_value
    if 0xC0 <= lvar <= 0xC9:
        return lvar - 0xC0, X.bcd_value
    if 0xD0 <= lvar <= 0xD9:
        return lvar - 0xD0, X.negative_bcd_value
    if 0xE0 <= lvar <= 0xEF:
        return lvar - 0xE0, X.int_value
    raise FrameError(f"unsupported LVAR {lvar:02X}", pos)


def _step_for(payload: bytes, pos: int) -> tuple[int, _Step | None]:
    """Walk one record at `pos`; returns (next position, step or None for a filler)."""
    head = pos
    dif = payload[pos]
    pos += 1
    if dif == 0x2F:
        return pos, None
    if dif in (0x0F, 0x1F):
        return len(payload), (pos, len(payload), X.raw_value, 1, 0,
                              "manufacturer_data", "", 0, 0, 0, "instantaneous", ())
    difes, pos = _read_extensions(payload, pos, "DIFE")
    if pos >= len(payload):
        raise FrameError("record has no VIF", pos)
    info, vifes, pos = _vif_info(payload, pos)
    exponent, modifiers = _apply_vifes(info, vifes)
    data_field = dif & 0x0F
    size = _DATA_LEN[data_field]
    convert = X.converter(data_field, info.interpret)
    if size < 0:
        if pos >= len(payload):
            raise FrameError("variable-length record without LVAR", pos)
        size, convert = _variable_length(payload[pos], pos)
        if info.interpret in (V.DATE, V.DATETIME):
            convert = X.date_value   # a date in an LVAR is no text: one we cannot read is null
        elif any(v & 0x7F in V.PROFILE_VIFES for v in vifes):   # kept as hex for profiles.py
            convert, modifiers = X.raw_value, (*modifiers, f"exponent_{exponent}")
        pos += 1
    if data_field == 0x0F:
        raise FrameError(f"special DIF {dif:02X} not allowed here", head)
    if pos + size > len(payload):
        raise FrameError(f"record data ({size} bytes) runs past the payload", pos)
    factor = 1
    if convert is X.int_value:
        if exponent <= 0:
            convert = X.int_value_fast
        else:
            power = X.proven_power(size, exponent)   # size <= 8 bytes (an LVAR int may have 15)
            if power is not None:
                convert, factor = X.int_value_up, power
    if difes:
        storage, tariff, subunit = _storage_tariff_subunit(dif, difes)
    else:
        storage, tariff, subunit = (dif >> 6) & 1, 0, 0
    kind = info.kind
    if info.interpret in _TIMES:   # a date/time VIF names what the size says: G date, J time
        if size == 2 and info.interpret == V.DATETIME:
            kind = "date"
        elif size == 3:
            kind = "time"
    return pos + size, (pos, pos + size, convert, factor, exponent, kind, info.unit, storage,
                        tariff, subunit, FUNCTIONS[(dif >> 4) & 0x03], modifiers)


_TIMES: Final = frozenset((V.DATE, V.DATETIME))


def _build_plan(payload: bytes) -> _Plan:
    spans: list[tuple[int, int]] = []
    steps: list[_Step] = []
    pos = 0
    while pos < len(payload):
        head = pos
        try:
            pos, step = _step_for(payload, pos)
        except (FrameError, IndexError) as exc:
            # Meters append manufacturer data without a 0x0F marker; keep it raw, do not guess.
            where = exc.offset if isinstance(exc, FrameError) else head
            step = (head, len(payload), X.raw_value, 1, 0, "unparsed", "", 0, 0, 0,
                    "instantaneous", (f"error_at_{where}",))
            pos = len(payload)
        if step is None:
            spans.append((head, pos))
        else:
            spans.append((head, step[START]))
            steps.append(step)
    headers = _cutter(spans)
    dates = tuple(i for i, step in enumerate(steps) if step[CONVERT] is X.date_value)
    return _Plan(tuple(spans), headers, headers(payload), tuple(steps), dates)


def _cutter(spans: list[tuple[int, int]]) -> Callable[[bytes], object]:
    """One C call that slices every header span out of a payload (adjacent spans joined)."""
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and merged[-1][1] == start:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    if not merged:
        return lambda _payload: ()
    return itemgetter(*(slice(start, end) for start, end in merged))


def _record(step: _Step, payload: bytes) -> Record:
    """One record; a value out of range or an invalid date gives value None, raw bytes kept."""
    start, end, convert, _factor, exponent, kind, unit, storage, tariff, subunit, function, \
        modifiers = step
    data = payload[start:end]
    try:
        value = convert(data, exponent)   # the markers are converters too (values.py)
    except (DecimalException, OutOfRange):
        error = FrameError(f"{kind} record value out of range ({data.hex()})", start)
        return Record(kind, unit, None, storage, tariff, subunit, function, modifiers, data,
                      str(error))
    if value is None:
        return Record(kind, unit, None, storage, tariff, subunit, function, modifiers, data)
    return Record(kind, unit, value, storage, tariff, subunit, function, modifiers)


class RecordDecoder:
    """Decodes record payloads, caching one plan per DIF/VIF layout seen."""

    def __init__(self) -> None:
        self._plans: dict[int, list[_Plan]] = {}

    def decode(self, payload: bytes) -> list[Record]:
        """Decode every record of `payload` (the application data after the TPL header)."""
        return self.decode_plan(payload)[0]

    def decode_plan(self, payload: bytes) -> tuple[list[Record], object, bool]:
        """Decode `payload`; also returns its layout (an opaque plan, identical for repeats)
        and whether that layout was new (not from the plan cache)."""
        plan = self._cached(payload)
        fresh = plan is None
        if plan is None:
            try:
                plan = _build_plan(payload)
            except IndexError as exc:  # a length byte promised more than there is
                raise FrameError("record truncated", len(payload)) from exc
            self._remember(len(payload), plan)
        new, from_bytes, bounded = tuple.__new__, int.from_bytes, BOUNDED
        fast, up = X.int_value_fast, X.int_value_up
        try:   # the hot loop: fields unpacked and the Record tuple built in one go
            records = [
                new(Record, (kind, unit,
                             Decimal(from_bytes(payload[a:b], "little", signed=True))
                             .scaleb(exp, bounded) if convert is fast
                             else Decimal(from_bytes(payload[a:b], "little", signed=True)
                                          * factor) if convert is up   # proven: no context
                             else convert(payload[a:b], exp),
                             storage, tariff, subunit, function, modifiers, None, ""))
                for (a, b, convert, factor, exp, kind, unit, storage, tariff, subunit, function,
                     modifiers) in plan.steps
            ]
        except (DecimalException, OutOfRange):  # rare: find the record(s) one by one
            records = [_record(step, payload) for step in plan.steps]
        for index in plan.dates:
            if records[index].value is None:  # an invalid date: keep what the meter sent
                step = plan.steps[index]
                records[index] = records[index]._replace(raw=payload[step[START]:step[END]])
        return records, plan, fresh

    def layout(self, payload: bytes) -> tuple[tuple[bytes, int], ...]:
        """The DIF/VIF headers and data sizes of `payload` (decoding it first if needed)."""
        plan = self._cached(payload)
        if plan is None:
            self.decode(payload)
            plan = self._cached(payload)
        assert plan is not None
        return _layout_of(plan, payload)

    @staticmethod
    def layout_of(plan: object, payload: bytes) -> tuple[tuple[bytes, int], ...]:
        """Like layout(), for the plan decode_plan() just returned for `payload` (no lookup)."""
        assert isinstance(plan, _Plan)
        return _layout_of(plan, payload)

    def _cached(self, payload: bytes) -> _Plan | None:
        for plan in self._plans.get(len(payload), ()):
            if plan.headers(payload) == plan.signature:
                return plan
        return None

    def _remember(self, size: int, plan: _Plan) -> None:
        if sum(len(p) for p in self._plans.values()) >= _MAX_PLANS:
            self._plans.clear()
        self._plans.setdefault(size, []).append(plan)


_DEFAULT = RecordDecoder()


def decode_records(payload: bytes) -> list[Record]:
    """Decode records with the module's shared plan cache."""
    return _DEFAULT.decode(payload)


# ---- encoder (for simulators and round-trip tests) -------------------------------------

def encode_record(spec: RecordSpec) -> bytes:
    """Build the bytes of one numeric record; inverse of decoding for integer and BCD fields."""
    size = _DATA_LEN[spec.data_field]
    if size <= 0 or spec.data_field == 0x5 or not 0 <= spec.vif <= 0x7A:
        raise ValueError(f"cannot encode data field {spec.data_field:X} / VIF {spec.vif:02X}")
    difes = _encode_difes(spec.storage >> 1, spec.tariff, spec.subunit)
    dif = spec.data_field | (spec.function << 4) | ((spec.storage & 1) << 6)
    dif |= 0x80 if difes else 0
    vif = spec.vif | (0x80 if spec.vifes else 0)
    vifes = [v | 0x80 for v in spec.vifes[:-1]] + list(spec.vifes[-1:])
    return bytes([dif, *difes, vif, *vifes]) + _encode_value(spec.data_field, size, spec.raw)


def _encode_difes(storage: int, tariff: int, subunit: int) -> list[int]:
    difes: list[int] = []
    while storage or tariff or subunit:
        difes.append((storage & 0x0F) | ((tariff & 0x03) << 4) | ((subunit & 1) << 6))
        storage, tariff, subunit = storage >> 4, tariff >> 2, subunit >> 1
    for index in range(len(difes) - 1):
        difes[index] |= 0x80
    return difes


def _encode_value(data_field: int, size: int, raw: int) -> bytes:
    if data_field in X.BCD_NIBBLES:
        digits = f"{abs(raw):0{size * 2}d}"
        if raw < 0:
            digits = "f" + digits[1:]
        if len(digits) != size * 2:
            raise ValueError(f"{raw} does not fit {size} BCD bytes")
        return bytes.fromhex(digits)[::-1]
    return raw.to_bytes(size, "little", signed=True)


def _layout_of(plan: _Plan, payload: bytes) -> tuple[tuple[bytes, int], ...]:
    """(header bytes, data size) per record, fillers excluded: what a compact frame omits."""
    sizes = {step[START]: step[END] - step[START] for step in plan.steps}
    layout = []
    for head, end in plan.spans:
        size = sizes.get(end)
        if size is not None:
            layout.append((payload[head:end], size))
    return tuple(layout)
