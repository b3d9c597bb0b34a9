"""Conformance with the public wired M-Bus corpus (tests/corpus/mbus, copied from
../shared/corpus/mbus): every frame decoded, every published value reproduced or listed here
with its reason (docs/mbus.md has the same list), every malformed frame refused with a
FrameError and nothing else."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from drivers import ft12
from drivers.errors import FrameError
from drivers.mbus_wired import requests as rq
from drivers.mbus_wired.link import PRM
from drivers.mbus_wired.responses import ApplicationErrorFrame, RspUd, decode_rsp_ud

sys.path.insert(0, str(Path(__file__).parent))
from mbus_conformance import compare, expected_values, load

ERROR_BCD = "BCD with nibbles A-F (the meter's error-state filler): kept as bytes, no number"
INVALID_DATE = "date 00-00 is no calendar date: null with the bytes kept (reference prints it)"
VIF_7B = ("VIF 0x7B without the extension bit (no VIFE): a malformed record, so the telegram "
          "is refused; the reference skips the record by its DIF length")
KNOWN_MISSES: dict[str, tuple[str, set[str]]] = {
    "libmbus/ELS_Elster-F96-Plus": (ERROR_BCD, {"4", "5"}),
    "libmbus/abb_f95": (ERROR_BCD, {"2", "3"}),
    "libmbus/itron_bm_+m": (INVALID_DATE, {"2"}),
}
REFUSED_GOOD_FRAMES = {
    "libmbus/sen_pollutherm": VIF_7B,
    "pyMeterBus/test_unknown_pl/self.frame": "CI 0x76: values most significant byte first",
}
REPRODUCED, TOTAL = 623, 643


def _bytes(entry: dict[str, Any]) -> bytes:
    text: str = entry["frame_hex"]
    return bytes.fromhex(text[:len(text) // 2 * 2])   # one source has an odd nibble: dropped


FRAMES = load("frames.json")
ERRORS = load("error_frames.json")


def test_every_published_value_is_reproduced_or_listed() -> None:
    reproduced = total = 0
    misses: dict[str, set[str]] = {}
    for entry in FRAMES:
        expected = entry["expected"]
        if not expected or not expected.get("records"):
            continue
        count = expected_values(expected)
        total += count
        if entry["name"] in REFUSED_GOOD_FRAMES:
            with pytest.raises(FrameError):
                decode_rsp_ud(_bytes(entry))
            continue
        found = compare(decode_rsp_ud(_bytes(entry)), expected)
        reproduced += count - len(found)
        if found:
            misses[entry["name"]] = {key for key, _ in found}
    assert misses == {name: ids for name, (_, ids) in KNOWN_MISSES.items()}
    assert (reproduced, total) == (REPRODUCED, TOTAL)


def _decoded(data: bytes) -> object:
    """A frame decoded as what it is: an answer, a request, or (no PRM, function 8 in a short
    frame) an FT1.2 frame only."""
    frame = ft12.parse_frame(data)
    if isinstance(frame, ft12.SingleChar):
        return decode_rsp_ud(data)
    if frame.control & PRM:
        return rq.parse_request(data)
    if isinstance(frame, ft12.ShortFrame):
        return frame
    return decode_rsp_ud(data)


@pytest.mark.parametrize("entry", FRAMES, ids=[e["name"] for e in FRAMES])
def test_every_frame_decodes(entry: dict[str, Any]) -> None:
    if entry["name"] in REFUSED_GOOD_FRAMES:
        with pytest.raises(FrameError):
            decode_rsp_ud(_bytes(entry))
        return
    decoded = _decoded(_bytes(entry))
    if isinstance(decoded, RspUd):
        assert all(record.kind != "unparsed" for record in decoded.records)


ACCEPTED_ERROR_FRAMES = {
    "libmbus/unsupported-frames/svm_f22_telegram2": pytest.mark.xfail(
        strict=True, reason="well formed: DIF 0x1F then manufacturer data (one record)"),
}


def _error_params() -> list[Any]:
    return [pytest.param(e, id=e["name"], marks=ACCEPTED_ERROR_FRAMES.get(e["name"], ()))
            for e in ERRORS]


@pytest.mark.parametrize("entry", _error_params())
def test_every_malformed_frame_is_a_frame_error(entry: dict[str, Any]) -> None:
    with pytest.raises(FrameError) as caught:
        decode_rsp_ud(_bytes(entry))
    if entry["expected_error"]:
        assert isinstance(caught.value, ApplicationErrorFrame)
        wording = entry["expected_error"].replace("\u00c2\u00b4", "'")   # the source's mojibake
        assert str(caught.value).startswith(wording)


@pytest.mark.parametrize("name", ["libmbus/unsupported-frames/manual_frame4",
                                  "libmbus/unsupported-frames/manual_frame5"])
def test_master_frames_among_the_errors_are_requests(name: str) -> None:
    (entry,) = [e for e in ERRORS if e["name"] == name]
    assert isinstance(rq.parse_request(_bytes(entry)), rq.SndUd | rq.SetPrimaryAddress)
