"""The quirks registry: what a make, version and device type does beyond EN 13757-3, as data.

Like zigpy's quirks, an entry is declarative (which layout decodes a manufacturer CI field or
the 0x0F manufacturer data, which storage number holds the billing-period value, whether the
payload is Diehl-scrambled); the decoder looks the entry up by the telegram's header and never
branches on a make itself. Entries live in makes.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from drivers.wmbus.quirks.formats import Layout


@dataclass(frozen=True, slots=True)
class Quirk:
    """What one family of meters (make, versions, device types) needs.

    - `ci_layouts`: manufacturer CI field (0xA0-0xB7) -> layout of the bytes after it;
    - `mfct_layout`: layout of the manufacturer data after a 0x0F DIF in a standard telegram;
    - `billing_storage`: the storage number whose values are the billing-period ("target")
      values, carried with that storage's date as the billing-date reading;
    - `tpl_layout`: the payload after a standard transport header (CI 0x7A / 0x72, after any
      decryption) is no EN 13757-3 record list but this layout;
    - `cipher`: how the bytes after a manufacturer CI field are protected: "" none, "prios"
      (Diehl LFSR scrambling), "apator_cbc" (AES-CBC over 16 bytes, apply.py);
    - `compact_formats`: the DIF/VIF headers of compact frames (CI 0x79 / 0x7B / 0x73) the make
      sends, so a compact frame decodes before the meter's first full frame.
    Empty `versions` / `device_types` match any.
    """

    name: str
    manufacturer: str
    versions: frozenset[int] = frozenset()
    device_types: frozenset[int] = frozenset()
    ci_layouts: Mapping[int, Layout] = field(default_factory=dict)
    mfct_layout: Layout | None = None
    tpl_layout: Layout | None = None
    billing_storage: int | None = None
    cipher: str = ""
    compact_formats: tuple[bytes, ...] = ()

    def matches(self, version: int, device_type: int) -> bool:
        return ((not self.versions or version in self.versions)
                and (not self.device_types or device_type in self.device_types))


class QuirkRegistry:
    """Entries indexed by manufacturer; the most specific match (versions and types named)
    wins over a make-wide entry."""

    def __init__(self, quirks: Iterable[Quirk]) -> None:
        self._by_make: dict[str, list[Quirk]] = {}
        for quirk in quirks:
            self._by_make.setdefault(quirk.manufacturer, []).append(quirk)
        for entries in self._by_make.values():
            entries.sort(key=lambda q: (not q.versions, not q.device_types))
        self._memo: dict[tuple[str, int, int], Quirk | None] = {}

    def find(self, manufacturer: str, version: int, device_type: int) -> Quirk | None:
        key = (manufacturer, version, device_type)
        if key in self._memo:
            return self._memo[key]
        found = next((q for q in self._by_make.get(manufacturer, ())
                      if q.matches(version, device_type)), None)
        if len(self._memo) < 4096:
            self._memo[key] = found
        return found

    def all(self) -> list[Quirk]:
        return [q for entries in self._by_make.values() for q in entries]
