"""How a quantity sits in a meter's registers: data types, word orders, spans and registers
(shared by the profile loader, the value codec and the writable section)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

# Data type -> number of 16-bit registers it occupies.
TYPE_WORDS: Final[dict[str, int]] = {
    "uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2, "uint64": 4, "int64": 4,
}
WORD_ORDERS: Final[frozenset[str]] = frozenset({"big", "little"})


@dataclass(frozen=True, slots=True)
class Span:
    """A run of registers holding one raw number (one part of a quantity)."""

    function: int
    address: int
    dtype: str
    word_order: str
    scale: Decimal

    @property
    def words(self) -> int:
        return TYPE_WORDS[self.dtype]


@dataclass(frozen=True, slots=True)
class Register:
    """One quantity of a meter: the sum of its spans' scaled values (usually one span)."""

    quantity: str
    unit: str
    spans: tuple[Span, ...]
    ratio: str | None = None
