"""Benchmark: DLMS frames decoded per second on one core, and the wire time of a daily read of
a 15-minute load profile at 9600 baud.

Decode rate: CPU time on a pinned core for the HAN push path (HDLC frame checked, LLC
stripped, data-notification parsed, objects with exact values from the Kamstrup profile) and
for the polled path (one I frame carrying a GET-response block of a load profile, its A-XDR
buffer decoded). Wire time: the real frames the gateway and the meter exchange for one day of
96 rows (GET with range access, block transfer with HDLC segmentation and RR polls; apart,
the session around it: SNRM/UA, HLS-GMAC AARQ/AARE and reply_to_HLS_authentication, release,
DISC), counted in characters of 10 bits. The meter's reaction time per frame is not in it.
Medians with min and max, one JSON object on the last line.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Final

from drivers.dlms.acse import (
    RLRE,
    RLRQ,
    Aare,
    Aarq,
    InitiateRequest,
    InitiateResponse,
    Release,
    conformance_block,
)
from drivers.dlms.apdu import (
    NEXT,
    Access,
    ActionRequest,
    ActionResponse,
    Descriptor,
    GetRequest,
    GetResponse,
    parse_service,
)
from drivers.dlms.axdr import Data, Tag, decode_data, encode_data
from drivers.dlms.cosem import CaptureObject, ScalerUnit, profile_rows
from drivers.dlms.hdlc import (
    LLC_REQUEST,
    LLC_RESPONSE,
    Address,
    Control,
    FrameKind,
    HdlcFrame,
    build_frame,
    decode_frame,
    strip_llc,
)
from drivers.dlms.link import LinkParameters, Reassembler
from drivers.dlms.push import profiles, push_objects
from drivers.dlms.security import Keys, hls_gmac_response, seal
from drivers.dlms.timefields import CosemDate, CosemDateTime, CosemTime

# Kamstrup list 2 push from the corpus (roarfred/AmsToMqttBridge, HAN 20171019 xibriz4.txt)
KAMSTRUP_FRAME: Final = bytes.fromhex(
    "7EA12D2B21134718E6E7000F00000000090C07E10A1405050005FF80000002230A0E4B616D73747275705F56"
    "3030303109060101000005FF0A103537303635363732373433383937303209060101600101FF0A1236383431"
    "313231424E32343331303130343009060101010700FF0600000CF009060101020700FF06000000000906010103"
    "0700FF060000000009060101040700FF06000001B9090601011F0700FF060000053309060101330700FF0600"
    "0000D509060101470700FF060000052509060101200700FF1200E609060101340700FF1200E2090601014807"
    "00FF1200E809060001010000FF090C07E10A1405050005FF80000009060101010800FF06000685B709060101"
    "020800FF060000000009060101030800FF060000005009060101040800FF060000F1975C837E")
BAUD: Final = 9600
BITS_PER_CHAR: Final = 10  # 8N1
ROWS_PER_DAY: Final = 96  # 15-minute periods
ENERGY_COLUMNS: Final = 4  # +A, -A, +R, -R besides the clock and the status
MAX_INFO: Final = 128  # HDLC information field without negotiation (IEC 62056-46 default)
PDU_SIZE: Final = 1024  # a GET-response block: the meter's usual max PDU
RUNS: Final = 7
BATCH: Final = 2000
CLIENT: Final = Address(16)  # public client 0x10
SERVER: Final = Address(1, 17, 2)
CLIENT_TITLE: Final = b"GWY\x00\x00\x00\x00\x01"
METER_TITLE: Final = b"MMM\x00\x00\xbcaN"
GLO_INITIATE_REQUEST: Final = 0x21
GLO_INITIATE_RESPONSE: Final = 0x28


CAPTURE: Final = [CaptureObject(8, "0-0:1.0.0.255", 2), CaptureObject(1, "0-0:96.10.1.255", 2)] + [
    CaptureObject(3, f"1-0:{c}.8.0.255", 2) for c in range(1, ENERGY_COLUMNS + 1)]
SCALERS: Final = {f"1-0:{c}.8.0.255": ScalerUnit(0, "Wh") for c in range(1, ENERGY_COLUMNS + 1)}


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


def _row(minute: int) -> Data:
    stamp = CosemDateTime(CosemDate(2026, 12, 3, 4), CosemTime(minute // 60, minute % 60, 0, 0),
                          -60, 0)
    cells = [Data(Tag.OCTET_STRING, stamp.encode()), Data(Tag.UNSIGNED, 0)]
    cells += [Data(Tag.DOUBLE_LONG_UNSIGNED, 1_234_567 + minute * k)
              for k in range(1, ENERGY_COLUMNS + 1)]
    return Data(Tag.STRUCTURE, tuple(cells))


def day_buffer() -> bytes:
    return encode_data(Data(Tag.ARRAY, tuple(_row(15 * i) for i in range(ROWS_PER_DAY))))


def _segments(info: bytes, source: Address, destination: Address) -> list[bytes]:
    parts = [info[i:i + MAX_INFO] for i in range(0, len(info), MAX_INFO)]
    return [build_frame(HdlcFrame(destination, source, Control(FrameKind.I), part,
                                  i < len(parts) - 1)) for i, part in enumerate(parts)]


def _rr() -> bytes:
    return build_frame(HdlcFrame(SERVER, CLIENT, Control(FrameKind.RR)))


def _exchange(request: bytes, response: bytes) -> tuple[int, int, int, int]:
    """Characters client->meter and meter->client, frames each way, of one request and its
    response (each further segment of the response is asked for with an RR)."""
    sent = _segments(LLC_REQUEST + request, CLIENT, SERVER)
    got = _segments(LLC_RESPONSE + response, SERVER, CLIENT)
    polls = len(got) - 1
    return (sum(map(len, sent)) + polls * len(_rr()), sum(map(len, got)), len(sent) + polls,
            len(got))


def _association() -> list[tuple[bytes, bytes]]:
    """HLS-GMAC association and release as the session will send them (keys: the Green
    Book's), as request/response APDU pairs."""
    keys = Keys(bytes(range(16)), bytes(range(0xD0, 0xE0)))
    initiate = InitiateRequest(conformance_block(["get", "set", "action", "selective_access",
                                                  "block_transfer_with_get_or_read"]), PDU_SIZE)
    aarq = Aarq(3, CLIENT_TITLE, 5, b"K56iVagY", seal(initiate.build(), keys, CLIENT_TITLE, 1,
                                                      0x30, GLO_INITIATE_REQUEST)).build()
    aare = Aare(0, 14, 1, 3, METER_TITLE, 5, b"P6wRJ21F", seal(
        InitiateResponse(0x001E1D, PDU_SIZE).build(), keys, METER_TITLE, 1, 0x30,
        GLO_INITIATE_RESPONSE)).build()
    answer = hls_gmac_response(keys, CLIENT_TITLE, 2, b"P6wRJ21F")
    hls = ActionRequest(Descriptor(15, bytes.fromhex("0000280000FF"), 1),
                        Data(Tag.OCTET_STRING, answer)).build()
    hls_ok = ActionResponse(0, Data(Tag.OCTET_STRING, answer)).build()
    return [(aarq, aare), (hls, hls_ok), (Release(RLRQ).build(), Release(RLRE).build())]


def _link_frames() -> int:
    """SNRM/UA and DISC/UA: characters of the link set-up and tear-down."""
    snrm = build_frame(HdlcFrame(SERVER, CLIENT, Control(FrameKind.SNRM),
                                 LinkParameters(MAX_INFO, MAX_INFO).encode()))
    ua = build_frame(HdlcFrame(CLIENT, SERVER, Control(FrameKind.UA),
                               LinkParameters(MAX_INFO, MAX_INFO).encode()))
    disc = build_frame(HdlcFrame(SERVER, CLIENT, Control(FrameKind.DISC)))
    return len(snrm) + len(ua) + len(disc) + len(build_frame(HdlcFrame(CLIENT, SERVER, Control(
        FrameKind.UA))))


def load_profile_wire() -> dict[str, object]:
    """The daily read, frame by frame, in characters on the line."""
    buffer = day_buffer()
    blocks = [buffer[i:i + PDU_SIZE - 16] for i in range(0, len(buffer), PDU_SIZE - 16)]
    profile = Descriptor(7, bytes.fromhex("0100630100FF"), 2)
    stamp = Data(Tag.OCTET_STRING, bytes(12))
    access = Access(1, Data(Tag.STRUCTURE, (Data(Tag.STRUCTURE, ()), stamp, stamp,
                                            Data(Tag.ARRAY, ()))))
    totals = [0, 0, 0, 0]
    for number, block in enumerate(blocks, start=1):
        request = (GetRequest(1, 0xC1, ((profile, access),)) if number == 1
                   else GetRequest(NEXT, 0xC1, (), number - 1)).build()
        response = GetResponse(NEXT, 0xC1, (), number == len(blocks), number, block).build()
        totals = [a + b for a, b in zip(totals, _exchange(request, response), strict=True)]
    session = _link_frames() + sum(sum(_exchange(q, r)[:2]) for q, r in _association())
    chars = totals[0] + totals[1]
    return {"rows": ROWS_PER_DAY, "buffer_bytes": len(buffer), "blocks": len(blocks),
            "client_to_meter_chars": totals[0], "meter_to_client_chars": totals[1],
            "client_frames": totals[2], "meter_frames": totals[3], "max_info": MAX_INFO,
            "pdu_size": PDU_SIZE, "baud": BAUD,
            "profile_wire_s": round(chars * BITS_PER_CHAR / BAUD, 2),
            "session_wire_s": round(session * BITS_PER_CHAR / BAUD, 2),
            "total_wire_s": round((chars + session) * BITS_PER_CHAR / BAUD, 2)}


def _push_once() -> None:
    frame, _ = decode_frame(KAMSTRUP_FRAME)
    push = parse_service(strip_llc(frame.information))
    push_objects(push.body, profiles()["kamstrup"])  # type: ignore[union-attr]


def day_frames() -> list[bytes]:
    """The meter's HDLC frames of the daily read (every block, segmented at MAX_INFO)."""
    buffer = day_buffer()
    blocks = [buffer[i:i + PDU_SIZE - 16] for i in range(0, len(buffer), PDU_SIZE - 16)]
    frames = []
    for number, block in enumerate(blocks, start=1):
        response = GetResponse(NEXT, 0xC1, (), number == len(blocks), number, block).build()
        frames += _segments(LLC_RESPONSE + response, SERVER, CLIENT)
    return frames


def _profile_day(frames: list[bytes]) -> None:
    """What the client does with them: frames checked, segments joined, blocks parsed, the
    buffer decoded and its rows dated with exact values."""
    reassembler = Reassembler()
    raw = b""
    for wire in frames:
        frame, _ = decode_frame(wire)
        apdu = reassembler.add(frame)
        if apdu is not None:
            response = parse_service(apdu)
            assert isinstance(response, GetResponse) and isinstance(response.raw_data, bytes)
            raw += response.raw_data
    profile_rows(CAPTURE, decode_data(raw), SCALERS)


def _rate(action: Callable[[], None], frames: int, batch: int) -> dict[str, float]:
    """Frames per CPU second: `action` handles `frames` frames, run `batch` times a run."""
    rates = []
    for _ in range(RUNS):
        start = time.process_time()
        for _ in range(batch):
            action()
        rates.append(frames * batch / (time.process_time() - start))
    return {"median_per_s": round(statistics.median(rates)), "min_per_s": round(min(rates)),
            "max_per_s": round(max(rates))}


def main() -> None:
    _pin()
    frames = day_frames()
    print(json.dumps({
        "han_push_frames": _rate(_push_once, 1, BATCH),
        "han_push_frame_bytes": len(KAMSTRUP_FRAME),
        "profile_day_frames": _rate(lambda: _profile_day(frames), len(frames),
                                    BATCH // len(frames)),
        "profile_day_frame_count": len(frames),
        "load_profile_day_9600": load_profile_wire(),
    }))


if __name__ == "__main__":
    main()
