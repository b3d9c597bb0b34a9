"""Whole-telegram decoding: link header, CI chain (ELL, AFL, TPL, compact), security, records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.errors import ChecksumError, DriverError, FrameError
from drivers.mbus import frame as wired
from drivers.mbus.records import Record, RecordDecoder
from drivers.wmbus import link
from drivers.wmbus import security as sec
from drivers.wmbus.ci_names import refusal
from drivers.wmbus.crc import crc_en13757
from drivers.wmbus.quirks import apply as quirks
from drivers.wmbus.quirks.makes import QUIRKS
from drivers.wmbus.quirks.registry import Quirk

KeyLookup = Callable[[str], "bytes | None"]

ELL_SIZES = {0x8C: 2, 0x8D: 8, 0x8E: 10, 0x8F: 16}
CI_AFL = 0x90
CI_LONG, CI_SHORT, CI_NONE = 0x72, 0x7A, 0x78
CI_COMPACT_NONE, CI_COMPACT_SHORT, CI_COMPACT_LONG = 0x79, 0x7B, 0x73
_TPL_CIS = frozenset((CI_LONG, CI_SHORT, CI_NONE, CI_COMPACT_NONE, CI_COMPACT_SHORT,
                      CI_COMPACT_LONG))
_COMPACT_CIS = frozenset((CI_COMPACT_NONE, CI_COMPACT_SHORT, CI_COMPACT_LONG))
_FILLER = b"\x2f\x2f"
_AFL_MAC_SIZES = {4: 4, 5: 8, 6: 12, 7: 16}   # MCL authentication type -> MAC length
_MAX_FORMATS = 512   # learnt compact-frame formats kept (a few per meter)


_KNOWN: dict[int, tuple[tuple[bytes, int], ...]] = {}


def _known_formats() -> dict[int, tuple[tuple[bytes, int], ...]]:
    """Compact formats the quirks name (Kamstrup's), by signature: built once, shared."""
    if not _KNOWN:
        for quirk in QUIRKS.all():
            for headers in quirk.compact_formats:
                _KNOWN[crc_en13757(headers)] = quirks.format_layout(headers)
    return _KNOWN


class PlaintextRefused(DriverError):
    """A meter with a configured key sent an unencrypted telegram (possible spoofing)."""


class UnknownFormat(DriverError):
    """A compact frame whose format signature was not learnt from a full frame yet."""


@dataclass(slots=True)
class Telegram:
    """A decoded telegram: who sent it, how it was secured, and its data records."""

    manufacturer: str
    meter_id: str
    version: int
    device_type: int
    c_field: int
    ci_chain: list[str]
    security_mode: int = 0
    access_number: int | None = None
    status: int | None = None
    decrypted: bool = False
    records: list[Record] = field(default_factory=list)
    link_id: str = ""
    layout: object = None   # the record plan: the same object for every same-layout telegram
    quirk: str = ""         # the quirks entry that decoded part of it (quirks/makes.py)
    billing_storage: int | None = None   # storage number of the billing-period values

    def header_json(self) -> dict:
        return {
            "manufacturer": self.manufacturer, "id": self.meter_id, "link_id": self.link_id,
            "version": self.version, "device_type": self.device_type, "c_field": self.c_field,
            "ci_chain": self.ci_chain, "security_mode": self.security_mode,
            "access_number": self.access_number, "status": self.status,
            "decrypted": self.decrypted, "quirk": self.quirk or None,
            "billing_storage": self.billing_storage,
        }


@dataclass(slots=True)
class _State:
    """Working state while walking the CI chain of one frame."""

    frame: bytes
    pos: int
    m_field: bytes
    a_field: bytes
    telegram: Telegram
    key: bytes | None
    afl_counter: bytes | None = None
    afl_mac: bytes | None = None
    afl_mac_input: bytes = b""
    ell_encrypted: bool = False
    tpl_start: int = 0


class TelegramDecoder:
    """Decodes frames; remembers record layouts and compact-frame formats between telegrams."""

    def __init__(self, key_for: KeyLookup | None = None) -> None:
        self._key_for = key_for or (lambda _meter: None)
        self._records = RecordDecoder()
        # format signature (CRC of the DIF/VIF bytes) -> layout; the same for every meter
        self._formats: dict[int, tuple[tuple[bytes, int], ...]] = {}
        self._quirks = QUIRKS
        self._quirk_layouts: dict[tuple[int, tuple], tuple[object, tuple]] = {}

    def decode(self, frame: bytes, *, crcs_stripped: bool = False) -> Telegram:
        """Decode one frame (wireless from the L field, or a wired long frame)."""
        if wired.is_wired_long_frame(frame):
            return self._decode_wired(frame)
        if not crcs_stripped or len(frame) != frame[0] + 1:
            frame = link.normalize_frame(frame)
        header = link.parse_link_header(frame)
        telegram = Telegram(header.manufacturer, header.meter_id, header.version,
                            header.device_type, header.c_field, [], link_id=header.meter_id)
        state = _State(frame, 10, header.m_field, header.a_field, telegram,
                       self._key_for(header.meter_id))
        self._walk(state)
        return telegram

    def _decode_wired(self, frame: bytes) -> Telegram:
        c_field, address, body = wired.unwrap_wired_frame(frame)
        if not body or body[0] != CI_LONG:
            raise FrameError(f"wired frame CI {body[:1].hex()} is not a 0x72 data response", 6)
        # The walk goes by the frame's length, never its L byte: a wired frame may carry up to
        # 252 bytes, more than a wireless L field holds, so the synthetic L is capped.
        inner = bytes([min(len(body) + 9, 0xFF), c_field]) + bytes(8) + body
        telegram = Telegram("", "", 0, 0, c_field, [], link_id=f"primary:{address}")
        state = _State(inner, 10, bytes(2), bytes(6), telegram, None)
        self._walk(state)
        state.key = None
        return telegram

    def _walk(self, s: _State) -> None:
        while True:
            if s.pos >= len(s.frame):
                raise FrameError("frame ends before a transport layer CI", s.pos)
            ci = s.frame[s.pos]
            s.telegram.ci_chain.append(f"{ci:02X}")
            if ci in ELL_SIZES:
                self._ell(s, ci)
            elif ci == CI_AFL:
                self._afl(s)
            elif ci in _TPL_CIS:
                self._apply_quirk(s.telegram, self._transport(s, ci))
                return
            else:
                self._manufacturer_ci(s, ci)
                return

    # ---- manufacturer formats (quirks) -------------------------------------------------
    def _quirk_of(self, t: Telegram) -> Quirk | None:
        return self._quirks.find(t.manufacturer, t.version, t.device_type)

    def _manufacturer_ci(self, s: _State, ci: int) -> None:
        t = s.telegram
        quirk = self._quirk_of(t)
        layout = quirk.ci_layouts.get(ci) if quirk is not None else None
        if quirk is None or layout is None:
            raise FrameError(refusal(ci), s.pos)
        body = quirks.unprotect(quirk.cipher, s.m_field + s.a_field, s.frame[s.pos:], s.key,
                                t.meter_id)
        t.decrypted = bool(quirk.cipher)
        t.records = [*layout.decode(body), Record("manufacturer_data", "", body.hex())]
        t.layout = self._quirk_layout(quirk.name, t.records)
        t.quirk, t.billing_storage = quirk.name, quirk.billing_storage

    def _quirk_layout(self, base: object, records: list[Record]) -> object:
        """One layout object per record header sequence a quirk produced (what a layout finds
        varies), so the sample selection is cached like a standard layout's."""
        key = (id(base), tuple(r[:2] + r[3:8] for r in records))
        found = self._quirk_layouts.get(key)
        if found is None or found[0] is not base:
            if len(self._quirk_layouts) >= _MAX_FORMATS:
                self._quirk_layouts.clear()
            found = self._quirk_layouts[key] = (base, key[1])
        return found

    def _apply_quirk(self, t: Telegram, quirk: Quirk | None) -> None:
        if quirk is None:
            return
        t.quirk, t.billing_storage = quirk.name, quirk.billing_storage
        if quirk.mfct_layout is not None:
            extra = quirks.manufacturer_records(quirk.mfct_layout, t.records)
            if extra:
                t.records = t.records + extra
                t.layout = self._quirk_layout(t.layout, extra)

    # ---- extended link layer -----------------------------------------------------------
    def _ell(self, s: _State, ci: int) -> None:
        size = ELL_SIZES[ci]
        start = s.pos + 1
        if start + size > len(s.frame):
            raise FrameError(f"ELL {ci:02X} truncated", s.pos)
        cc = s.frame[start]
        s.telegram.access_number = s.frame[start + 1]
        s.pos = start + size
        if ci in (0x8E, 0x8F):
            s.m_field, s.a_field = s.frame[start + 2:start + 4], s.frame[start + 4:start + 10]
        if ci in (0x8D, 0x8F):
            session = s.frame[s.pos - 6:s.pos - 2]
            if int.from_bytes(session, "little") >> 29:
                self._ell_decrypt(s, cc, session)

    def _ell_decrypt(self, s: _State, cc: int, session: bytes) -> None:
        crc_at = s.pos - 2
        body = s.frame[crc_at:]
        if s.key is not None:
            iv = sec.ell_iv(s.m_field, s.a_field, cc, session)
            body = sec.ctr_crypt(s.key, iv, body)
            s.telegram.decrypted = True
        if crc_en13757(body[2:]) != int.from_bytes(body[:2], "little"):
            if s.key is None:
                raise sec.KeyRequired(f"meter {s.telegram.meter_id}: ELL-encrypted, no key")
            raise sec.WrongKey(f"wrong key or corrupt telegram (meter {s.telegram.meter_id})")
        s.frame = s.frame[:crc_at] + body
        s.ell_encrypted = True

    # ---- authentication and fragmentation layer ----------------------------------------
    def _afl(self, s: _State) -> None:
        size = s.frame[s.pos + 1] if s.pos + 1 < len(s.frame) else 0
        start = s.pos + 2
        end = start + size
        if size < 2 or end > len(s.frame):
            raise FrameError("AFL truncated", s.pos)
        fcl = int.from_bytes(s.frame[start:start + 2], "little")
        pos = start + 2
        mcl = b""
        if fcl & 0x2000:
            mcl = s.frame[pos:pos + 1]
            pos += 1
        if fcl & 0x0200:
            pos += 2    # key information: key version is not needed to pick our single key
        if fcl & 0x0800:
            s.afl_counter = s.frame[pos:pos + 4]
            pos += 4
        if fcl & 0x0400:
            mac_size = _AFL_MAC_SIZES.get(mcl[0] & 0x0F if mcl else 5, 8)
            s.afl_mac = s.frame[pos:pos + mac_size]
            pos += mac_size
        message_length = s.frame[pos:pos + 2] if fcl & 0x1000 else b""
        s.afl_mac_input = mcl + (s.afl_counter or b"") + message_length
        s.pos = end

    def _check_afl_mac(self, s: _State, key: bytes) -> None:
        if s.afl_mac is None:
            return
        if s.afl_counter is None:
            raise FrameError("AFL MAC without message counter", s.pos)
        kmac = sec.mode7_key(key, 0x01, s.afl_counter, s.a_field[:4])
        expected = sec.cmac(kmac, s.afl_mac_input + s.frame[s.tpl_start:])
        if not sec.macs_equal(expected, s.afl_mac):
            raise sec.WrongKey(f"wrong key or corrupt telegram (meter {s.telegram.meter_id})")

    # ---- transport layer and payload ---------------------------------------------------
    def _transport(self, s: _State, ci: int) -> Quirk | None:
        """The TPL header, security and records; returns the telegram's quirk (or None)."""
        t, frame = s.telegram, s.frame
        s.tpl_start = s.pos
        pos = s.pos + 1
        mode = blocks = 0
        if ci in (CI_LONG, CI_COMPACT_LONG):
            if pos + 12 > len(frame):
                raise FrameError("long transport header truncated", pos)
            s.a_field = frame[pos:pos + 4] + frame[pos + 6:pos + 8]
            s.m_field = frame[pos + 4:pos + 6]
            t.meter_id = link.id_text(s.a_field[:4])
            t.manufacturer = link.manufacturer_name(s.m_field)
            t.version, t.device_type = s.a_field[4], s.a_field[5]
            s.key = self._key_for(t.meter_id) if t.meter_id != t.link_id else s.key
            pos += 8
        if ci in (CI_LONG, CI_SHORT, CI_COMPACT_SHORT, CI_COMPACT_LONG):
            if pos + 4 > len(frame):
                raise FrameError("short transport header truncated", pos)
            t.access_number, t.status = frame[pos], frame[pos + 1]
            config = int.from_bytes(frame[pos + 2:pos + 4], "little")
            mode, blocks = (config >> 8) & 0x1F, (config >> 4) & 0x0F
            pos += 5 if mode == 7 else 4   # mode 7 adds a configuration extension byte
        t.security_mode = mode
        s.pos = pos
        payload = self._unsecure(s, mode, blocks)
        quirk = self._quirk_of(t)
        if quirk is not None and quirk.tpl_layout is not None:   # the bytes stay, named raw
            t.records = [*quirk.tpl_layout.decode(payload),
                         Record("manufacturer_data", "", payload.hex())]
            t.layout = self._quirk_layout(quirk.name, t.records)
            t.quirk, t.billing_storage = quirk.name, quirk.billing_storage
            return None   # nothing else of the quirk applies to a payload it decoded whole
        if ci in _COMPACT_CIS:
            payload = self._expand_compact(t.meter_id, payload, pos)
            t.records, t.layout, _fresh = self._records.decode_plan(payload)
        else:
            t.records, t.layout, fresh = self._records.decode_plan(payload)
            if fresh or not self._formats:
                self._learn_format(self._records.layout_of(t.layout, payload))
        return quirk

    def _unsecure(self, s: _State, mode: int, blocks: int) -> bytes:
        payload = s.frame[s.pos:]
        meter = s.telegram.meter_id
        if mode == 0:
            if s.key is not None and not s.ell_encrypted:
                raise PlaintextRefused(f"meter {meter}: plaintext telegram but a key is configured")
            return payload
        if mode not in (5, 7):
            raise FrameError(f"meter {meter}: unsupported security mode {mode}", s.pos)
        if s.key is None:
            if payload.startswith(_FILLER):   # delivered already decrypted
                return payload
            raise sec.KeyRequired(f"meter {meter}: encrypted (mode {mode}) and no key configured")
        if mode == 5:
            iv = sec.mode5_iv(s.m_field, s.a_field, s.telegram.access_number or 0)
        else:
            if s.afl_counter is None:
                raise FrameError(f"meter {meter}: mode 7 without AFL message counter", s.pos)
            self._check_afl_mac(s, s.key)
            iv = bytes(16)
            s.key = sec.mode7_key(s.key, 0x00, s.afl_counter, s.a_field[:4])
        plain = sec.decrypt_blocks(s.key, iv, payload, blocks)
        if not plain.startswith(_FILLER):
            raise sec.WrongKey(f"wrong key or corrupt telegram (meter {meter})")
        s.telegram.decrypted = True
        return plain

    # ---- compact frames ----------------------------------------------------------------
    def _learn_format(self, layout: tuple[tuple[bytes, int], ...]) -> None:
        headers = b"".join(header for header, _size in layout)
        if len(self._formats) >= _MAX_FORMATS:
            self._formats.clear()
        self._formats[crc_en13757(headers)] = layout

    def _expand_compact(self, meter: str, payload: bytes, offset: int) -> bytes:
        if len(payload) < 4:
            raise FrameError("compact frame truncated", offset)
        signature = int.from_bytes(payload[:2], "little")
        layout = self._formats.get(signature) or _known_formats().get(signature)
        if layout is None:
            raise UnknownFormat(f"meter {meter}: compact format {signature:04X} not learnt yet")
        values = payload[4:]
        parts: list[bytes] = []
        pos = 0
        for header, size in layout:
            parts.append(header)
            parts.append(values[pos:pos + size])
            pos += size
        if pos != len(values):
            raise FrameError(f"meter {meter}: compact frame has {len(values)} value bytes, "
                             f"format {signature:04X} expects {pos}", offset + 4)
        full = b"".join(parts)
        if crc_en13757(full) != int.from_bytes(payload[2:4], "little"):
            raise ChecksumError(f"meter {meter}: compact frame data CRC mismatch", offset + 2)
        return full
