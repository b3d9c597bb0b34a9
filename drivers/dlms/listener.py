"""The sans-IO side of a DLMS push port: bytes in, (meter id, samples) out.

`PushListener.feed(chunk)` cuts the stream into link frames (HDLC, resynchronising after
damage, or DLMS segments in wired M-Bus long frames), joins segmented pushes, opens a
general-glo-ciphering APDU with the meter's keys (found by the system title it carries), refuses
an invocation counter that is not above the last one accepted for that system title (kept in
the invocation counter file, so a restart keeps refusing), and maps the data-notification's
list through the meter's HAN profile to the gateway's quantities. Nothing the bytes hold ends
the listener: every bad frame is counted, and logged once per meter and kind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from drivers import ft12
from drivers.dlms.axdr import Reader
from drivers.dlms.errors import CipherError, NeedMore, ReplayRefused
from drivers.dlms.hdlc import LLC_RESPONSE, scan_frames
from drivers.dlms.link import Reassembler, decode_mbus_segment
from drivers.dlms.notification import DATA_NOTIFICATION, DataNotification
from drivers.dlms.push import MeterProfile, choose_profile, push_objects, samples
from drivers.dlms.security import (
    GENERAL_GLO_CIPHERING,
    InvocationCounterGuard,
    Keys,
    Protected,
    open_protected,
    parse_protected,
)
from drivers.errors import ChecksumError, DriverError, FrameError
from drivers.readings import Sample

LOGGER = logging.getLogger(__name__)
FRAMINGS: Final = ("hdlc", "mbus")
MAX_BUFFER: Final = 8192  # bytes kept while a frame is incomplete
COUNTERS: Final = ("pushes", "checksum", "frame_errors", "decrypt_failures", "replays",
                   "unknown_lists", "unknown_meters", "port_errors")
ANY_METER: Final = ""  # the system title of "the one meter on this port"


@dataclass(frozen=True)
class PushMeter:
    """One configured meter on the port: how its pushes are recognised, opened and read."""

    meter_id: str
    system_title: bytes | None = None  # None: the one meter on this port
    keys: Keys | None = field(default=None, repr=False)
    profile: str | None = None  # a HAN profile name; None: recognised from the list


Guard = Callable[[bytes], InvocationCounterGuard]  # system title -> its counter guard


class PushListener:
    """Feed it the port's bytes; it returns what the meters pushed, ready for `accept`."""

    def __init__(self, meters: Sequence[PushMeter], guard: Guard, framing: str = "hdlc",
                 *, port: str = "push") -> None:
        if framing not in FRAMINGS:
            raise ValueError(f"framing {framing!r} is not one of {FRAMINGS}")
        self._by_title = {m.system_title: m for m in meters if m.system_title is not None}
        self._default = next((m for m in meters if m.system_title is None), None)
        self._guard = guard
        self._framing = framing
        self._port = port
        self._buffer = b""
        self._hdlc = Reassembler()
        self._segments: list[bytes] = []
        self.counts: dict[str, dict[str, int]] = {}  # meter id ("" the port) -> counter -> n
        self._logged: set[tuple[str, str]] = set()

    def count(self, meter: str | None = None) -> dict[str, int]:
        """The counters of one meter, or of the whole port (every meter summed)."""
        if meter is not None:
            return {name: self.counts.get(meter, {}).get(name, 0) for name in COUNTERS}
        return {name: sum(c.get(name, 0) for c in self.counts.values()) for name in COUNTERS}

    def feed(self, chunk: bytes) -> list[tuple[str, list[Sample]]]:
        self._buffer += chunk
        apdus = self._hdlc_apdus() if self._framing == "hdlc" else self._mbus_apdus()
        if len(self._buffer) > MAX_BUFFER:
            self._refuse(None, "frame_errors", f"{len(self._buffer)} bytes without a frame")
            self._buffer = b""
        out = []
        for apdu in apdus:
            got = self._apdu(apdu)
            if got is not None:
                out.append(got)
        return out

    # ---- links ---------------------------------------------------------------------------
    def _hdlc_apdus(self) -> list[bytes]:
        scan = scan_frames(self._buffer)
        self._buffer = scan.rest
        for error in scan.errors:
            self._refuse(None, "checksum" if isinstance(error, ChecksumError)
                         else "frame_errors", str(error))
        apdus = []
        for frame in scan.frames:
            if self._hdlc.pending and frame.information[:3] == LLC_RESPONSE:
                self._hdlc.reset()  # a push begins: the one before lost its last segment
                self._refuse(None, "frame_errors", "a segmented push without its last segment")
            try:
                apdu = self._hdlc.add(frame)
            except FrameError as error:
                self._refuse(None, "frame_errors", str(error))
                continue
            if apdu is not None:
                apdus.append(apdu)
        return apdus

    def _mbus_apdus(self) -> list[bytes]:
        frames, junk, used = ft12.scan(self._buffer)
        self._buffer = self._buffer[used:]
        for bad in junk:
            self._refuse(None, "checksum" if bad.checksum else "frame_errors", bad.reason)
        apdus = []
        for frame in frames:
            if not isinstance(frame, ft12.LongFrame):
                continue  # an M-Bus ACK or request on the line: not a push
            try:
                segment = decode_mbus_segment(ft12.build_frame(frame))
            except FrameError as error:
                self._refuse(None, "frame_errors", str(error))
                continue
            if segment.segment != len(self._segments):
                self._segments = []  # a lost segment: this push is gone
                if segment.segment != 0:
                    self._refuse(None, "frame_errors", f"M-Bus segment {segment.segment} "
                                 "without the ones before it")
                    continue
            self._segments.append(segment.data)
            if segment.last:
                apdus.append(b"".join(self._segments))
                self._segments = []
        return apdus

    # ---- APDUs ---------------------------------------------------------------------------
    def _apdu(self, apdu: bytes) -> tuple[str, list[Sample]] | None:
        meter = self._default
        try:
            protected = None
            if apdu[:1] == bytes([GENERAL_GLO_CIPHERING]):
                protected = parse_protected(apdu)
                meter = self._by_title.get(protected.system_title or b"", self._default)
            if meter is None:
                self._refuse(None, "unknown_meters", "a push from no configured meter")
                return None
            if protected is not None:
                apdu = self._open(meter, protected)
            elif meter.keys is not None:
                self._refuse(meter.meter_id, "decrypt_failures",
                             "a plain push from a meter with a key (ciphered pushes expected)")
                return None
            return meter.meter_id, self._samples(meter, apdu)
        except _Refused as refused:
            self._refuse(refused.meter, refused.counter, refused.reason)
        except ReplayRefused as error:
            self._refuse(meter.meter_id if meter else None, "replays", str(error))
        except CipherError as error:
            self._refuse(meter.meter_id if meter else None, "decrypt_failures", str(error))
        except (FrameError, NeedMore, DriverError) as error:
            self._refuse(meter.meter_id if meter else None, "frame_errors", str(error))
        return None

    def _open(self, meter: PushMeter, protected: Protected) -> bytes:
        if meter.keys is None:
            raise _Refused(meter.meter_id, "decrypt_failures", "a ciphered push, and no "
                           "encryption key for this meter in the DLMS key file")
        guard = self._guard(protected.system_title or b"")
        guard.check(protected.invocation_counter)
        plain = open_protected(protected, meter.keys)
        guard.accept(protected.invocation_counter)  # only a push that opened counts
        return plain

    def _samples(self, meter: PushMeter, apdu: bytes) -> list[Sample]:
        if apdu[:1] != bytes([DATA_NOTIFICATION]):
            raise _Refused(meter.meter_id, "unknown_lists",
                           f"APDU 0x{apdu[0]:02X} is not a data-notification" if apdu
                           else "an empty APDU")
        reader = Reader(apdu, 1)
        notification = DataNotification.read(reader)
        profile: MeterProfile | None = choose_profile(notification.body, meter.profile)
        try:
            got = samples(push_objects(notification.body, profile))
        except FrameError as error:
            raise _Refused(meter.meter_id, "unknown_lists", str(error)) from None
        if not got:
            raise _Refused(meter.meter_id, "unknown_lists", "a list without a known quantity")
        self._counter(meter.meter_id, "pushes")
        return got

    def _counter(self, meter: str | None, name: str) -> None:
        counts = self.counts.setdefault(meter or "", {})
        counts[name] = counts.get(name, 0) + 1

    def _refuse(self, meter: str | None, counter: str, reason: str) -> None:
        self._counter(meter, counter)
        first = (meter or "", counter) not in self._logged
        self._logged.add((meter or "", counter))
        LOGGER.log(logging.WARNING if first else logging.DEBUG, "dlms_push_refused",
                   extra={"port": self._port, "meter": meter, "counter": counter,
                          "reason": reason})


class _Refused(DriverError):
    """A push refused (counted under `counter`, logged once per meter and reason)."""

    def __init__(self, meter: str | None, counter: str, reason: str) -> None:
        super().__init__(reason)
        self.meter, self.counter, self.reason = meter, counter, reason
