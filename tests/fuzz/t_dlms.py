"""DLMS/COSEM messages through `drivers.dlms.decode.decode` (what `dlms decode` and the push
receiver run): the flag byte picks the link the mutated APDU is wrapped in again (as
captured, HDLC UI frames with HCS/FCS and segmentation, the TCP wrapper, wired M-Bus
segments) and whether it is sealed with the fuzz key first (general-glo-ciphering, SC 0x30),
so the parsers behind the checksums and the GCM tag are reached; flag bit 3 also runs the
push stream's resynchronising `scan_frames` over the wire bytes."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from typing import Any, Final

from drivers.dlms.decode import decode
from drivers.dlms.hdlc import (
    LLC_RESPONSE,
    Address,
    Control,
    FrameKind,
    HdlcFrame,
    build_frame,
    scan_frames,
)
from drivers.dlms.link import WrapperPdu
from drivers.dlms.security import Keys, open_protected, parse_protected, seal
from drivers.errors import DriverError
from drivers.readings import Sample
from tests.drivers.dlms import vectors
from tests.fuzz import corpus
from tests.fuzz.harness import Target
from tests.fuzz.sinks import check_samples

LINK_MASK: Final = 0x03  # 0 as captured, 1 HDLC, 2 TCP wrapper, 3 wired M-Bus
AS_CAPTURED, HDLC, WRAPPER, MBUS = 0, 1, 2, 3
ENCRYPT: Final = 0x04
SCAN: Final = 0x08  # the wire bytes also go through the push stream's resynchronising scan
KEY: Final = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AUTH_KEY: Final = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
TITLE: Final = b"FUZ\x00\x00\x00\x00\x01"
CORPUS_FILES: Final = ("frames.json",)
SEGMENT_BYTES: Final = 200  # HDLC and M-Bus segments of this size exercise reassembly
TOKENS: Final = (
    b"\x7e", b"\xa0", b"\xa8", b"\xe6\xe7\x00", b"\xe6\xe6\x00", b"\x13", b"\x0f", b"\xdb\x08",
    b"\x09\x06", b"\x09\x0c", b"\x02\x02\x0f", b"\x16", b"\x01\x82\xff\xff", b"\x84\xff\xff\xff",
    b"\xc4\x01\xc1", b"\xc4\x02\xc1", b"\xc7\x01", b"\xd8\x01\x06", b"\x60", b"\x61", b"\xbe",
    b"\x5f\x1f\x04\x00", b"\x17\x7f\xc0\x00\x00", b"\x13\x02\x02", b"\x19", b"\x80\x00",
)


def _hdlc(apdu: bytes) -> bytes:
    info = LLC_RESPONSE + apdu
    parts = [info[i:i + SEGMENT_BYTES] for i in range(0, len(info), SEGMENT_BYTES)] or [b""]
    return b"".join(build_frame(HdlcFrame(Address(16), Address(1, 17, 2), Control(
        FrameKind.UI), part, i < len(parts) - 1)) for i, part in enumerate(parts))


def _mbus(apdu: bytes) -> list[bytes]:
    parts = [apdu[i:i + SEGMENT_BYTES] for i in range(0, len(apdu), SEGMENT_BYTES)] or [b""]
    frames = []
    for i, part in enumerate(parts):
        ci = (i & 0x0F) | (0x10 if i == len(parts) - 1 else 0)
        body = bytes([0x53, 0xFF, ci, 0x01, 0x67]) + part
        frames.append(bytes([0x68, len(body), len(body), 0x68]) + body
                      + bytes([sum(body) & 0xFF, 0x16]))
    return frames


def wire_frames(data: bytes) -> list[bytes]:
    """The link frames the decoder sees for one fuzz input (flag byte, then the APDU)."""
    flags, apdu = (data[0], data[1:]) if data else (0, b"")
    if flags & ENCRYPT:
        apdu = seal(apdu, Keys(KEY, AUTH_KEY), TITLE, 1, 0x30)
    link = flags & LINK_MASK
    if link == HDLC:
        return [_hdlc(apdu)]
    if link == WRAPPER:
        return [WrapperPdu(1, 1, apdu).encode()]
    if link == MBUS and len(apdu) <= SEGMENT_BYTES * 16:
        return _mbus(apdu)
    return [apdu]


def _wire(data: bytes) -> bytes:
    return b"".join(wire_frames(data))


def _as_sample(item: dict[str, Any]) -> Sample:
    value = item["value"]
    return Sample(item["quantity"], Decimal(value) if item["unit"] else value, item["unit"])


def run_dlms(data: bytes) -> str:
    frames = wire_frames(data)
    if data and data[0] & SCAN:
        scan = scan_frames(b"".join(frames))
        for frame in scan.frames:
            build_frame(frame)  # every frame found must be one the builder can write again
    result = decode([f.hex() for f in frames], key=KEY.hex(), auth_key=AUTH_KEY.hex())
    json.dumps(result)  # the CLI prints it: all of it must be JSON
    check_samples(_as_sample(s) for s in result["samples"])
    return str(result["apdu"].get("type", "apdu"))


def _plain_apdu(entry: dict[str, Any]) -> bytes | None:
    """The APDU inside a corpus entry (deciphered when it names a key)."""
    frames = [bytes.fromhex(f) for f in entry.get("frames_hex") or []]
    if not frames:
        return None
    with contextlib.suppress(DriverError, ValueError):
        result = decode([f.hex() for f in frames], key=entry.get("key_hex"),
                        auth_key=entry.get("auth_key_hex"),
                        system_title=entry.get("system_title_hex"))
        if "plaintext_hex" in result:
            return bytes.fromhex(result["plaintext_hex"])
    raw = frames[0]
    if raw[:1] == b"\x7e":
        return None  # kept as captured below
    key = entry.get("key_hex")
    with contextlib.suppress(DriverError, ValueError):
        if key:
            return open_protected(parse_protected(raw), Keys(bytes.fromhex(key)))
    return raw[3:] if raw[:2] == b"\xe6\xe7" else raw


def _entries() -> list[dict[str, Any]]:
    """Entries of the DLMS corpus files in every corpus directory (the shared one and its
    copy in tests/corpus)."""
    out: list[dict[str, Any]] = []
    for base in corpus.CORPUS_DIRS:
        for name in CORPUS_FILES:
            path = base / "dlms" / name
            if path.is_file():
                out += json.loads(path.read_text(encoding="utf-8"))
    return out


def _seeds() -> list[bytes]:
    seeds = []
    for entry in _entries():
        captured = b"".join(bytes.fromhex(f) for f in entry.get("frames_hex") or [])
        if captured:
            seeds += [bytes([AS_CAPTURED]) + captured, bytes([AS_CAPTURED | SCAN]) + captured]
        apdu = _plain_apdu(entry)
        if apdu:
            seeds += _wrapped_seeds(apdu)
    return seeds + _built_seeds()


def _wrapped_seeds(apdu: bytes) -> list[bytes]:
    return [bytes([HDLC]) + apdu, bytes([HDLC | ENCRYPT]) + apdu,
            bytes([WRAPPER | ENCRYPT]) + apdu, bytes([MBUS | ENCRYPT]) + apdu]


def _built_seeds() -> list[bytes]:
    """The hand-built vectors (tests/drivers/dlms/vectors.py): their plaintexts wrapped and
    sealed as above, and ciphered messages sealed there with the fuzz key (each security
    control, UDP-wrapped, a get-request, inside an AARQ and an AARE) as captured, so mutations
    start from frames that open."""
    def glo(plain: bytes, title: bytes, counter: int, control: int = vectors.SC_BOTH) -> bytes:
        return vectors.general_glo(plain, title, counter, control, KEY, AUTH_KEY)

    def initiate(tag: int, plain: bytes, title: bytes) -> bytes:
        return vectors.service_glo(tag, plain, title, 1, vectors.SC_BOTH, KEY, AUTH_KEY)

    plains = (vectors.PUSH, vectors.GET_REQUEST, vectors.INITIATE_REQUEST,
              vectors.INITIATE_RESPONSE)
    ciphered = [glo(vectors.PUSH, TITLE, n + 1, control) for n, control in enumerate(
        (vectors.SC_BOTH, vectors.SC_AUTHENTICATED, vectors.SC_ENCRYPTED))]
    ciphered += [
        vectors.wrapped(ciphered[0]),
        glo(vectors.GET_REQUEST, TITLE, 9),
        vectors.aarq(initiate(vectors.GLO_INITIATE_REQUEST, vectors.INITIATE_REQUEST,
                              vectors.CLIENT_TITLE)),
        vectors.aare(initiate(vectors.GLO_INITIATE_RESPONSE, vectors.INITIATE_RESPONSE,
                              vectors.METER_TITLE)),
    ]
    seeds = [seed for plain in plains for seed in _wrapped_seeds(plain)]
    return seeds + [bytes([flags]) + raw for raw in ciphered for flags in (AS_CAPTURED, SCAN)]


TARGETS: Final = (
    Target("dlms_frame", _seeds, run_dlms, tokens=TOKENS, protect=1, wire=_wire),
)
