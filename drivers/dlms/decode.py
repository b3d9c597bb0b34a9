"""`decode(frames_hex, key=..., auth_key=...)`: DLMS frames as hex -> a JSON-able dict.

The pure function behind the CLI's `dlms decode` (wired later): it finds the link (HDLC,
wired M-Bus, the TCP/UDP wrapper, an LLC header or a bare APDU), joins segments, opens a
ciphered APDU with the keys given, decodes the APDU and, for a push, lists its `objects`
(`{"obis", "value", "unit", "scaler"}`, exact values as text). Anything the bytes cannot be is
a `DriverError` with a clear message; no other exception leaves (tests/fuzz holds it to that).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from drivers.dlms import acse
from drivers.dlms.apdu import NEXT, SERVICE_NAMES, GetResponse, parse_service
from drivers.dlms.axdr import BitString, CompactArray, Data, decode_data
from drivers.dlms.errors import CipherError, NeedMore
from drivers.dlms.hdlc import FLAG, LLC_REQUEST, LLC_RESPONSE, decode_frame
from drivers.dlms.link import Reassembler, decode_wrapper, join_mbus_segments
from drivers.dlms.notification import DataNotification
from drivers.dlms.push import choose_profile, push_objects, samples
from drivers.dlms.security import (
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    SERVICE_CIPHERED,
    Keys,
    is_ciphered,
    open_protected,
    parse_protected,
)
from drivers.dlms.timefields import CosemDate, CosemDateTime, CosemTime
from drivers.errors import FrameError
from drivers.mbus.frame import is_wired_long_frame

JsonDict = dict[str, Any]
_GENERAL_NAMES: Final = {GENERAL_GLO_CIPHERING: "general-glo-ciphering",
                         GENERAL_DED_CIPHERING: "general-ded-ciphering"}
MAX_FRAMES: Final = 256  # a message of more segments is not one a meter sends
_ASSOCIATION_NAMES: Final = {acse.AARQ: "aarq", acse.AARE: "aare", acse.RLRQ: "rlrq",
                             acse.RLRE: "rlre"}


def _unhex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise FrameError(f"{what} is not hex", 0) from None


def _keys(key: str | None, auth_key: str | None) -> Keys | None:
    if key is None:
        return None
    try:
        return Keys(_unhex(key, "key"), _unhex(auth_key, "authentication key")
                    if auth_key else b"")
    except ValueError as error:
        raise CipherError(str(error)) from None


def decode(frames_hex: Sequence[str], *, key: str | None = None, auth_key: str | None = None,
           profile: str | None = None, system_title: str | None = None) -> JsonDict:
    """Decode one DLMS message given as its link frames in order (hex)."""
    frames = [_unhex(f, f"frame {i + 1}") for i, f in enumerate(frames_hex[:MAX_FRAMES + 1])]
    if not frames or not any(frames):
        raise FrameError("no bytes to decode", 0)
    if len(frames) > MAX_FRAMES:
        raise FrameError(f"more than {MAX_FRAMES} frames in one message", 0)
    link, apdu = _unwrap(frames)
    out: JsonDict = {"link": link}
    keys = _keys(key, auth_key)
    title = None if system_title is None else _unhex(system_title, "system title")
    if is_ciphered(apdu):
        out["security"], apdu = _open(apdu, keys, title)
        out["plaintext_hex"] = apdu.hex().upper()
    decoded, objects = _decode_apdu(apdu, keys, title, profile)
    out["apdu"] = decoded
    out["objects"] = [o.to_json() for o in objects]
    out["samples"] = [{"quantity": s.quantity, "value": str(s.value), "unit": s.unit}
                      for s in samples(objects)]
    return out


def _unwrap(frames: list[bytes]) -> tuple[JsonDict, bytes]:
    first = frames[0]
    if first[:1] == bytes([FLAG]):
        return _hdlc(frames)
    if is_wired_long_frame(first):
        return {"transport": "mbus", "segments": len(frames)}, join_mbus_segments(frames)
    if len(frames) == 1 and first[:2] == b"\x00\x01" and len(first) >= 8:
        pdu, end = decode_wrapper(first)
        if end != len(first):
            raise FrameError(f"{len(first) - end} bytes after the wrapper PDU", end)
        return {"transport": "wrapper", "source_wport": pdu.source_wport,
                "destination_wport": pdu.destination_wport}, pdu.apdu
    if len(frames) != 1:
        raise FrameError("several frames, but not HDLC nor M-Bus ones", 0)
    if first[:3] in (LLC_REQUEST, LLC_RESPONSE):
        return {"transport": "llc", "llc": first[:3].hex().upper()}, first[3:]
    return {"transport": "apdu"}, first


def _hdlc(frames: list[bytes]) -> tuple[JsonDict, bytes]:
    stream = b"".join(frames)
    reassembler = Reassembler()
    described = []
    at = 0
    while at < len(stream):
        try:
            frame, used = decode_frame(stream[at:])
        except NeedMore as more:
            raise FrameError(f"HDLC message cut short: {more}", at) from None
        described.append(_frame_json(frame))
        at += used
        apdu = reassembler.add(frame)
        if apdu is not None:
            if stream[at:].strip(bytes([FLAG])):
                raise FrameError("bytes after the last HDLC segment", at)
            return {"transport": "hdlc", "frames": described}, apdu
    raise FrameError("HDLC message without its final segment", at)


def _frame_json(frame: Any) -> JsonDict:
    control = frame.control
    return {"destination": dataclasses.asdict(frame.destination),
            "source": dataclasses.asdict(frame.source), "kind": control.kind.value,
            "poll_final": control.poll_final, "send_seq": control.send_seq,
            "recv_seq": control.recv_seq, "segmented": frame.segmented,
            "information_bytes": len(frame.information)}


def _open(apdu: bytes, keys: Keys | None, title: bytes | None) -> tuple[JsonDict, bytes]:
    protected = parse_protected(apdu)
    header: JsonDict = {
        "apdu": SERVICE_CIPHERED.get(apdu[0], (_GENERAL_NAMES.get(apdu[0], ""), 0))[0],
        "system_title": None if protected.system_title is None
        else protected.system_title.hex().upper(),
        "security_control": f"0x{protected.security_control:02X}",
        "authenticated": protected.authenticated, "encrypted": protected.encrypted,
        "invocation_counter": protected.invocation_counter}
    if keys is None:
        raise CipherError(f"{header['apdu']} (system title {header['system_title']}, SC "
                          f"{header['security_control']}, IC {protected.invocation_counter})"
                          ": a key is needed")
    return header, open_protected(protected, keys, title)


def _decode_apdu(apdu: bytes, keys: Keys | None, title: bytes | None,
                 profile: str | None) -> tuple[JsonDict, list[Any]]:
    if not apdu:
        raise FrameError("empty APDU", 0)
    tag = apdu[0]
    if tag in (acse.AARQ, acse.AARE, acse.RLRQ, acse.RLRE):
        return _association(apdu, keys, title), []
    if tag == acse.INITIATE_REQUEST:
        return {"type": "initiate-request", **to_json(acse.InitiateRequest.parse(apdu))}, []
    if tag == acse.INITIATE_RESPONSE:
        return {"type": "initiate-response", **to_json(acse.InitiateResponse.parse(apdu))}, []
    service = parse_service(apdu)
    body = to_json(service)
    body["type"] = SERVICE_NAMES[tag]
    if isinstance(service, GetResponse) and _whole_block(service):
        assert isinstance(service.raw_data, bytes)
        try:  # the value came in one block: show it; the APDU stands even when it is not Data
            body["data"] = to_json(decode_data(service.raw_data))
        except FrameError as error:
            body["data_error"] = str(error)
    if isinstance(service, DataNotification):
        chosen = choose_profile(service.body, profile)
        if chosen is not None:
            body["profile"] = chosen.name
        return body, push_objects(service.body, chosen)
    return body, []


def _association(apdu: bytes, keys: Keys | None, title: bytes | None) -> JsonDict:
    """AARQ / AARE / RLRQ / RLRE; a ciphered user-information is opened with the AP title
    the APDU itself carries (the sender's system title)."""
    association: acse.Aarq | acse.Aare | acse.Release
    if apdu[0] == acse.AARQ:
        association = acse.Aarq.parse(apdu)
        title = association.calling_ap_title or title
    elif apdu[0] == acse.AARE:
        association = acse.Aare.parse(apdu)
        title = association.responding_ap_title or title
    else:
        association = acse.Release.parse(apdu)
    body: JsonDict = {"type": _ASSOCIATION_NAMES[apdu[0]], **to_json(association)}
    if isinstance(association, acse.Aare):
        body["reason"] = association.reason()
    if association.user_information is not None:
        body["user_information"] = _user_information(association.user_information, keys,
                                                      title)
    return body


def _whole_block(response: GetResponse) -> bool:
    return (response.kind == NEXT and response.last_block and response.block_number == 1
            and isinstance(response.raw_data, bytes))


def _user_information(raw: bytes, keys: Keys | None, title: bytes | None) -> JsonDict:
    if is_ciphered(raw):
        if keys is None:
            return {"ciphered": raw.hex().upper()}
        header, raw = _open(raw, keys, title)
        return {"security": header, "plaintext_hex": raw.hex().upper(),
                **_user_information(raw, None, None)}
    if raw[:1] == bytes([acse.INITIATE_REQUEST]):
        return {"type": "initiate-request", **to_json(acse.InitiateRequest.parse(raw))}
    if raw[:1] == bytes([acse.INITIATE_RESPONSE]):
        return {"type": "initiate-response", **to_json(acse.InitiateResponse.parse(raw))}
    service = parse_service(raw)  # a confirmed-service-error (initiate refused)
    return {"type": SERVICE_NAMES[raw[0]], **to_json(service)}


def to_json(value: Any) -> Any:
    """Typed values -> JSON: bytes as hex, Decimals as text, Data as {type, value}."""
    if isinstance(value, Data):
        return {"type": value.tag.name.lower().replace("_", "-"), "value": to_json(value.value)}
    if isinstance(value, CosemDateTime | CosemDate | CosemTime):
        return value.text()
    if isinstance(value, BitString):
        return value.bits
    if isinstance(value, CompactArray):
        return {"elements": [to_json(e) for e in value.elements]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.repr}  # repr=False fields are keys and passwords: never shown
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    return value
