"""A simulated DLMS push port (a HAN / P1 customer port) on the pty harness.

`PushSim` pushes data-notifications every `interval_s`: each one a plain APDU (a corpus
frame's), optionally general-glo-ciphered with the meter's keys and a fresh invocation
counter, in HDLC frames of at most `segment_bytes` of information each (the segmentation
bit set on all but the last) or in wired M-Bus long frames (CI 0x00.. then 0x1x). A script
entry may also be a fault: `garbage` (bytes that are no frame), `bad_fcs` (the next push with
its last frame's FCS broken), `replay` (the last ciphered push again, byte for byte).
After the script the port goes quiet, unless `repeat` is set. With a `lead`, the sim pushes
that APDU (freshly sealed each time) until `play()`, then the script: a test waits until the
gateway stores the lead, so it knows the gateway listens before the script's faults come.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from drivers import ft12
from drivers.dlms.hdlc import LLC_RESPONSE, Address, Control, FrameKind, HdlcFrame, build_frame
from drivers.dlms.link import MBUS_LAST_SEGMENT
from drivers.dlms.security import SC_AUTHENTICATED, SC_ENCRYPTED, Keys, seal
from drivers.transport.simthread import DeviceThread

FAULTS: Final = ("garbage", "bad_fcs", "replay")
GARBAGE: Final = bytes.fromhex("00FF7E7E13A0DEADBEEF7EA0")  # flags and a false frame start
MBUS_CONTROL: Final = 0x53
MBUS_STSAP_DTSAP: Final = b"\x01\x67"


@dataclass(frozen=True)
class PushMeterSim:
    """The meter behind the port: its system title and keys (None: plain pushes)."""

    system_title: bytes = b"KFM\x00\x00\x00\x00\x01"
    keys: Keys | None = None
    control: int = SC_ENCRYPTED | SC_AUTHENTICATED
    first_counter: int = 1


def hdlc_frames(apdu: bytes, segment_bytes: int = 128) -> list[bytes]:
    """The push in UI frames to the all-station address, as HAN meters send it."""
    info = LLC_RESPONSE + apdu
    parts = [info[i:i + segment_bytes] for i in range(0, len(info), segment_bytes)]
    control = Control(FrameKind.UI, poll_final=False)
    return [build_frame(HdlcFrame(Address(0x10), Address(1, 1, 2), control, part,
                                  segmented=n < len(parts) - 1))
            for n, part in enumerate(parts)]


def mbus_frames(apdu: bytes, segment_bytes: int = 200) -> list[bytes]:
    parts = [apdu[i:i + segment_bytes] for i in range(0, len(apdu), segment_bytes)]
    return [ft12.build_frame(ft12.LongFrame(
        MBUS_CONTROL, 0xFF, n | (MBUS_LAST_SEGMENT if n == len(parts) - 1 else 0),
        MBUS_STSAP_DTSAP + part)) for n, part in enumerate(parts)]


def _checked(script: Sequence[bytes | str]) -> list[bytes | str]:
    unknown = [s for s in script if isinstance(s, str) and s not in FAULTS]
    if unknown:
        raise ValueError(f"unknown push faults {unknown}; known: {FAULTS}")
    return list(script)


class PushSim(DeviceThread):
    """Pushes `script` (plain APDUs and fault names) on a pty, one entry every interval."""

    def __init__(self, script: Sequence[bytes | str], meter: PushMeterSim | None = None, *,
                 interval_s: float = 0.5, framing: str = "hdlc", segment_bytes: int = 128,
                 repeat: bool = False, lead: bytes | None = None) -> None:
        super().__init__("dlms-push-sim")
        self.script = _checked(script)
        self.meter = meter or PushMeterSim()
        self.interval_s = interval_s
        self.framing = framing
        self.segment_bytes = segment_bytes
        self.repeat = repeat
        self.counter = self.meter.first_counter
        self.sent = 0
        self._last = b""
        self._break_fcs = False
        self.lead = lead
        self._playing = threading.Event()
        self._lock = threading.Lock()
        self._pending: list[bytes | str] | None = None
        if lead is None:
            self._playing.set()

    def play(self, script: Sequence[bytes | str] | None = None) -> None:
        """End the lead: the script's entries follow from the next interval; a new `script`
        replaces the old one from its start (the counter and the last push carry on)."""
        with self._lock:
            self._pending = None if script is None else _checked(script)
        self._playing.set()

    def wire(self, plain: bytes) -> bytes:
        """The bytes of one push of `plain`: sealed with the next counter when keyed."""
        apdu = plain
        if self.meter.keys is not None:
            apdu = seal(plain, self.meter.keys, self.meter.system_title, self.counter,
                        self.meter.control)
            self.counter += 1
        if self.framing == "mbus":
            return b"".join(mbus_frames(apdu, self.segment_bytes))
        return b"".join(hdlc_frames(apdu, self.segment_bytes))

    def _next(self, entry: bytes | str) -> bytes:
        if entry == "garbage":
            return GARBAGE
        if entry == "bad_fcs":
            self._break_fcs = True
            return b""
        if entry == "replay":
            return self._last
        assert isinstance(entry, bytes)
        data = self.wire(entry)
        if self._break_fcs:  # the checksum before the closing flag / stop byte
            self._break_fcs = False
            return data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:]
        self._last = data  # a replay repeats a push that was good on the wire
        return data

    def _serve(self) -> None:
        index = 0
        while not self._stop.wait(self.interval_s):
            with self._lock:
                if self._pending is not None:
                    self.script, index, self._pending = self._pending, 0, None
            if not self._playing.is_set():
                assert self.lead is not None
                data = self._next(self.lead)
            elif index >= len(self.script) and not self.repeat:
                continue
            else:
                data = self._next(self.script[index % len(self.script)])
                index += 1
            if data:
                os.write(self._fd, data)
                self.sent += 1
