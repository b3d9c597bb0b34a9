"""The quirk entries, one per meter family, as data (facts from public format descriptions).

Sources: the public format descriptions of wmbusmeters' drivers (apator162, mkradio3/3a/4,
fhkvdataiii, compact5, izar) and EN 13757-3 / OMS. Only the layout facts are used here; the
code that reads them is ours (formats.py). Which storage is the billing value is named per
entry (`billing_storage`).
"""

from __future__ import annotations

from typing import Final

from drivers.wmbus.quirks.apply import APATOR_CBC, PRIOS
from drivers.wmbus.quirks.formats import (
    APATOR_PACKED,
    BCD,
    DATE_G,
    SECONDS_2000,
    TECHEM_DATE,
    UINT_BE,
    Field,
    FixedLayout,
    PrefixedLayout,
    SelectLayout,
    Sum,
    TaggedLayout,
)
from drivers.wmbus.quirks.kamstrup import KAMSTRUP_COMPACT
from drivers.wmbus.quirks.registry import Quirk, QuirkRegistry

BILLING: Final = 1   # the storage number the Techem and Apator quirks give billing values

# ---- Apator 162 (water): the payload is no record list: after the fillers a 0x0F (newer) or
# 0x80 (older meters) byte, 7 status bytes, then tag-coded fields; tag 0x10
# is the total volume in litres (4 bytes), the others have fixed body sizes.
_APATOR_SIZES: Final[dict[int, int]] = {
    0x00: 4, 0x01: 3, 0x10: 4, 0x11: 2, 0x40: 6, 0x41: 2, 0x42: 4, 0x43: 2, 0x44: 3,
    **{0x71 + n: 1 + 4 * (n + 2) for n in range(12)},          # 0x71..0x7C: count byte + history
    **dict.fromkeys((0x80, 0x81, 0x82, 0x83, 0x84, 0x86, 0x87), 10),
    **dict.fromkeys((0x85, 0x88, 0x8F), 11),
    0x8A: 9, 0x8B: 6, 0x8C: 6, 0x8E: 7,
    0xA0: 4, 0xA1: 4, 0xA2: 1, 0xA3: 7, 0xA4: 4, 0xA5: 1, 0xA6: 3, 0xA9: 1, 0xAF: 1,
    **dict.fromkeys((0xA7, 0xA8, 0xAA, 0xAB, 0xAC, 0xAD), 2),
    0xB0: 5, 0xB1: 8, 0xB2: 16, 0xB3: 8, 0xB4: 2, 0xB5: 16,
    **dict.fromkeys(range(0xB6, 0xC8), 3),                     # 0xB6..0xBF and 0xC0..0xC7
    0xD0: 3, 0xD3: 3, 0xF0: 4,
}
APATOR_162: Final = TaggedLayout(     # the whole payload: fillers, then 0x0F or 0x80
    skip=7, sizes=_APATOR_SIZES, leads=frozenset({0x0F, 0x80}),
    values={0x10: Field(0, 4, "volume", "m3", -3)},
)

# ---- Techem: manufacturer CI 0xA0-0xA2, fixed fields after the CI byte. A Techem meter sends
# the value at the last billing date and the consumption since; the register is their sum.
_TENTH_M3: Final = ("volume", "m3", -1)
MKRADIO3: Final = FixedLayout(
    fields=(
        Field(1, 2, "date", encoding=TECHEM_DATE, storage=BILLING),
        Field(3, 2, *_TENTH_M3, storage=BILLING),
        Field(7, 2, "volume_since_billing", "m3", -1),
    ),
    sums=(Sum("volume", "m3", (1, 2)),),
)
MKRADIO4: Final = FixedLayout(
    fields=(
        Field(3, 2, *_TENTH_M3, storage=BILLING),
        Field(7, 2, "volume_since_billing", "m3", -1),
    ),
    sums=(Sum("volume", "m3", (0, 1)),),
)
FHKV_III: Final = FixedLayout(
    fields=(
        Field(1, 2, "date", encoding=TECHEM_DATE, storage=BILLING),
        Field(3, 2, "heat_cost_allocation", "HCA", storage=BILLING),
        Field(7, 2, "heat_cost_allocation", "HCA"),
    ),
)
COMPACT_V: Final = FixedLayout(
    fields=(
        Field(3, 3, "energy", "Wh", 3, storage=BILLING),
        Field(7, 3, "energy_since_billing", "Wh", 3),
    ),
    sums=(Sum("energy", "Wh", (0, 1)),),
)
VARIO_451: Final = FixedLayout(     # values in MJ (the meter counts 1/1000 GJ)
    fields=(
        Field(3, 2, "energy", "J", 6, storage=BILLING),
        Field(7, 2, "energy_since_billing", "J", 6),
    ),
    sums=(Sum("energy", "J", (0, 1)),),
)
MKRADIO3A: Final = FixedLayout(fields=(Field(4, 2, *_TENTH_M3),))
_TECHEM_CIS: Final = (0xA0, 0xA1, 0xA2)

# ---- Apator: NA-1 (CI 0xA0/0xA1, one AES block: packed litres and the meter clock), e-ITN
# heat cost allocators (CI 0xA0, or 0xB6 with a counted prefix), 08 (litres x 1/3).
APATOR_NA1: Final = FixedLayout(fields=(
    Field(1, 4, "volume", "m3", -3, APATOR_PACKED),
    Field(5, 4, "datetime", encoding=SECONDS_2000),
))
APATOR_EITN: Final = FixedLayout(fields=(
    Field(3, 2, "heat_cost_allocation", "HCA", storage=BILLING),
    Field(7, 2, "heat_cost_allocation", "HCA"),
))
APATOR_08: Final = FixedLayout(fields=(Field(0, 4, "volume", "m3", -3, divisor=3),))

# ---- BFW 240 radio (heat cost allocator): a TPL 0x7A telegram whose payload is no record list;
# big-endian units at the last billing date and now.
BFW_240: Final = FixedLayout(fields=(
    Field(4, 2, "heat_cost_allocation", "HCA", encoding=UINT_BE, storage=BILLING),
    Field(6, 2, "heat_cost_allocation", "HCA", encoding=UINT_BE),
))

# ---- Zenner (0x0B water): after the 0x0F byte a status word, then the billing value and the
# register, both in 1/256 litres.
ZENNER_0B: Final = FixedLayout(fields=(
    Field(4, 4, "volume", "m3", -3, storage=BILLING, divisor=256),
    Field(8, 4, "volume", "m3", -3, divisor=256),
))

# ---- Qundis (QDS, and its LSE brand): a 53-byte block with VIF FF 5F. Byte 9 is the block's
# unit VIF; then the error date, the current register (8 BCD digits), the year-end date and
# value (storage 1) and the last month-end date and value (storage 17), then 12 half-month
# deltas. The billing ("target") value is the month-end one: storage 17.
QUNDIS_MONTH: Final = 17


def _qundis(kind: str, unit: str, exponent: int) -> FixedLayout:
    return FixedLayout(fields=(
        Field(12, 4, kind, unit, exponent, BCD),
        Field(16, 2, "date", encoding=DATE_G, storage=1),
        Field(18, 4, kind, unit, exponent, BCD, storage=1),
        Field(22, 2, "date", encoding=DATE_G, storage=QUNDIS_MONTH),
        Field(24, 4, kind, unit, exponent, BCD, storage=QUNDIS_MONTH),
    ))


QUNDIS_BLOCK: Final = SelectLayout(at=9, size=53, choices={
    0x13: _qundis("volume", "m3", -3),
    0x05: _qundis("energy", "Wh", 2), 0x06: _qundis("energy", "Wh", 3),
    0x0D: _qundis("energy", "J", 5), 0x0E: _qundis("energy", "J", 6),
})
_QUNDIS_TYPES: Final = frozenset({0x06, 0x07, 0x37})

# ---- Diehl IZAR / PRIOS (Hydrometer, Sappel, Diehl): CI 0xA0-0xA3, scrambled (apply.py); plain:
# the check byte, the register and the last month-end value in litres, that value's date.
IZAR: Final = FixedLayout(fields=(
    Field(1, 4, "volume", "m3", -3),
    Field(5, 4, "volume", "m3", -3, storage=BILLING),
    Field(9, 2, "date", encoding=DATE_G, storage=BILLING),
))
_PRIOS_MAKES: Final = ("HYD", "SAP", "DME")

QUIRKS: Final = QuirkRegistry((
    Quirk("apator162", "APA", frozenset({0x05}), frozenset({0x06, 0x07}),
          tpl_layout=APATOR_162),
    Quirk("techem_mkradio3", "TCH", frozenset({0x74}), frozenset({0x62, 0x72}),
          ci_layouts=dict.fromkeys(_TECHEM_CIS, MKRADIO3), billing_storage=BILLING),
    Quirk("techem_mkradio4", "TCH", frozenset({0x95, 0x70}), frozenset({0x62, 0x72}),
          ci_layouts=dict.fromkeys(_TECHEM_CIS, MKRADIO4), billing_storage=BILLING),
    Quirk("techem_fhkv_data_iii", "TCH", frozenset({0x69, 0x94}), frozenset({0x80}),
          ci_layouts=dict.fromkeys(_TECHEM_CIS, FHKV_III), billing_storage=BILLING),
    Quirk("techem_compact_v", "TCH", frozenset({0x45, 0x22, 0x39}),
          frozenset({0x04, 0xC3, 0x43}),
          ci_layouts=dict.fromkeys(_TECHEM_CIS, COMPACT_V), billing_storage=BILLING),
    Quirk("techem_vario451", "TCH", frozenset({0x27}), frozenset({0x04, 0xC3}),
          ci_layouts=dict.fromkeys(_TECHEM_CIS, VARIO_451), billing_storage=BILLING),
    Quirk("techem_mkradio3a", "TCH", frozenset({0x50}), frozenset({0x62, 0x72}),
          ci_layouts=dict.fromkeys(_TECHEM_CIS, MKRADIO3A)),
    Quirk("apator_na1", "APA", frozenset({0x14}), frozenset({0x07}), cipher=APATOR_CBC,
          ci_layouts=dict.fromkeys((0xA0, 0xA1), APATOR_NA1)),
    *(Quirk(f"apator_eitn_{make.lower()}", make, frozenset({0x04}), frozenset({0x08}),
            ci_layouts={0xA0: APATOR_EITN, 0xB6: PrefixedLayout(APATOR_EITN, 0xA0)},
            billing_storage=BILLING) for make in ("APA", "APT")),
    Quirk("apator_08", "APT", frozenset({0x03, 0x0F}), frozenset({0x03, 0x0F}),
          ci_layouts={0xA0: APATOR_08}),
    Quirk("bfw_240_radio", "BFW", frozenset({0x02}), frozenset({0x08}), tpl_layout=BFW_240,
          billing_storage=BILLING),
    Quirk("zenner_0b", "ZRI", frozenset({0x0B}), frozenset({0x16}), mfct_layout=ZENNER_0B,
          billing_storage=BILLING),
    *(Quirk(f"diehl_prios_{make.lower()}", make, cipher=PRIOS,
            ci_layouts=dict.fromkeys((0xA0, 0xA1, 0xA2, 0xA3), IZAR)) for make in _PRIOS_MAKES),
    *(Quirk(f"kamstrup_{make.lower()}", make, compact_formats=KAMSTRUP_COMPACT,
            billing_storage=BILLING) for make in ("KAM", "KAW")),
    *(Quirk(f"qundis_{make.lower()}", make, device_types=_QUNDIS_TYPES,
            mfct_layout=QUNDIS_BLOCK, billing_storage=QUNDIS_MONTH) for make in ("QDS", "LSE")),
))
