"""OBIS codes (IEC 62056-6-1): the code type and its text forms, `A-B:C.D.E*F` and `A-B:C.D.E.F`.

Group values are kept as the text the meter wrote, not as integers: EDIS letter codes (`C.1.0`,
`F.F`, `L`, `P`) live in groups C and D, and the quantity tables are keyed by that text. A and B
come together or not at all (`1-0:` or nothing); E absent means 0; F absent means "current value"
like 255. `&` before F (a billing period reset by hand) parses like `*`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

_CODE: Final = re.compile(
    r"^(?:(?P<a>\d{1,3})-(?P<b>\d{1,3}):)?(?P<c>[0-9]{1,3}|[CFLP])\.(?P<d>[0-9]{1,3}|[F])"
    r"(?:\.(?P<e>\d{1,3})(?:\.(?P<dotted_f>\d{1,3}))?)?(?:[*&](?P<f>\d{1,3}))?$"
)
CURRENT_F: Final = "255"  # F of a current value; historic ones count billing periods back


@dataclass(frozen=True, slots=True)
class ObisCode:
    a: str | None
    b: str | None
    c: str
    d: str
    e: str
    f: str | None

    @property
    def cde(self) -> tuple[str, str, str]:
        """The part the quantity tables are keyed by (medium and channel are checked apart)."""
        return (self.c, self.d, self.e)

    @property
    def current(self) -> bool:
        """A current value (F absent or 255), not a historic one (`1.8.1*1`)."""
        return self.f in (None, CURRENT_F)

    def text(self, *, dotted_f: bool = False) -> str:
        """`1-0:1.8.1*255` (IEC 62056-21, DSMR) or, with `dotted_f`, `1-0:1.8.1.255` (DLMS)."""
        if (self.a is None) != (self.b is None):
            raise ValueError(f"groups A and B come together: a={self.a!r}, b={self.b!r}")
        head = "" if self.a is None else f"{self.a}-{self.b}:"
        tail = "" if self.f is None else f"{'.' if dotted_f else '*'}{self.f}"
        return f"{head}{self.c}.{self.d}.{self.e}{tail}"


PARSED_CODES_KEPT: Final = 1024


# A meter sends the same few dozen addresses in every telegram: parse each once (bounded, so
# a stream of odd addresses cannot grow it; ObisCode is frozen, so sharing one is safe).
@functools.lru_cache(maxsize=PARSED_CODES_KEPT)
def parse_code(address: str) -> ObisCode | None:
    """`1-0:1.8.1*255`, `1-0:1.8.1.255`, `1.8.1`, `32.7`, `F.F`, `C.1.0` -> ObisCode; None if the
    address is not an OBIS code (a manufacturer's own data set, `0.0.0.0.0.0.0`)."""
    match = _CODE.match(address.strip())
    if match is None:
        return None
    g = match.groupdict()
    if g["dotted_f"] is not None and g["f"] is not None:
        return None  # `1.8.1.255*1`: two F groups
    return ObisCode(g["a"], g["b"], g["c"], g["d"], g["e"] or "0", g["dotted_f"] or g["f"])
