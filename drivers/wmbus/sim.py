"""iM871A / AMB8465 / line-receiver simulators on the transport kit's pty harness, fed from
telegram fixtures.

The simulator speaks the dongle framing of drivers.wmbus.dongles (link-mode setup, reset, ping,
received-telegram indications with RSSI), emits its telegrams at a configurable pace, and can
inject garbage, CRC errors, silence (a hung dongle, cured by a reset) and unplugging (the
harness's gateway-side pty and its path disappear; `replug()` brings a new one behind the same
path). `sim.link` is the harness itself, for the line's own faults.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import threading
from dataclasses import dataclass
from pathlib import Path

from drivers.transport.simthread import LinkThread
from drivers.wmbus import dongles as D

LOGGER = logging.getLogger(__name__)
POLL_S = 0.02            # command polling granularity of the simulator thread
RSSI_RAW = 0x40          # a plausible mid-range RSSI byte


@dataclass
class Faults:
    """Fault injection, as probabilities per emitted telegram."""

    garbage: float = 0.0      # random bytes before the frame
    crc_error: float = 0.0    # one payload byte flipped after the checksum was computed
    dropout: float = 0.0      # telegram silently not sent


class DongleSimulator:
    """A simulated USB receiver. `path` is a stable symlink to the gateway side's pty."""

    def __init__(self, kind: str, telegrams: list[bytes], path: str | Path, *,
                 interval_s: float = 0.05, faults: Faults | None = None,
                 seed: int = 1, repeat: bool = True) -> None:
        if kind not in ("im871a", "amb8465", "lines"):
            raise ValueError(f"unknown dongle kind {kind!r}")
        self.kind = kind
        self.path = Path(path)
        self.telegrams = list(telegrams)
        self.interval_s = interval_s
        self.faults = faults or Faults()
        self.repeat = repeat
        self.link_mode: int | None = None
        self.silent = False          # a hung dongle: ignores everything until reset
        self.resets = 0
        self.sent = 0
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self.link: LinkThread | None = None
        self._fd = -1  # the device side of the harness
        self._plugged = False  # a pulled stick sends nothing
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.link = LinkThread(self.path, name=f"sim-{self.kind}-link").start()
        self._fd = self.link.open_device()
        self._plugged = True
        self._thread = threading.Thread(target=self._run, name=f"sim-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd = -1
        if self.link is not None:
            self.link.stop()
            self.link = None
        self.path.unlink(missing_ok=True)

    def unplug(self) -> None:
        """The USB stick is pulled: the gateway's pty and its path disappear."""
        with self._lock:
            self._plugged = False
        if self.link is not None:
            self.link.unplug()

    def replug(self) -> None:
        if self.link is not None:
            self.link.replug()
        with self._lock:
            self._plugged = True

    # ---- the device loop ---------------------------------------------------------------
    def _run(self) -> None:
        buffer = bytearray()
        index = 0
        next_emit = 0.0
        clock = 0.0
        while not self._stop.is_set():
            with self._lock:
                fd = self._fd if self._plugged else -1
            if fd < 0:
                self._stop.wait(POLL_S)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], POLL_S)
                if ready:
                    buffer += os.read(fd, 1024)
                    self._handle_commands(buffer)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                continue    # closed while reading (stopping)
            clock += POLL_S
            if clock >= next_emit and self.telegrams and not self.silent and self._configured():
                if index >= len(self.telegrams) and not self.repeat:
                    continue
                self._emit(self.telegrams[index % len(self.telegrams)])
                index += 1
                next_emit = clock + self.interval_s

    def _configured(self) -> bool:
        return self.kind == "lines" or self.link_mode is not None

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._fd >= 0 and self._plugged:
                # a full harness queue is like a host that stopped reading: not an error
                with contextlib.suppress(OSError):
                    os.write(self._fd, data)

    def _emit(self, frame: bytes) -> None:
        if self._random.random() < self.faults.dropout:
            return
        encoded = self._encode_telegram(frame)
        if self._random.random() < self.faults.crc_error and self.kind != "lines":
            damaged = bytearray(encoded)
            damaged[len(damaged) // 2] ^= 0x5A
            encoded = bytes(damaged)
        if self._random.random() < self.faults.garbage:
            garbage = bytes(self._random.randrange(256) for _ in range(self._random.randint(1, 12)))
            encoded = (garbage + b"\n" if self.kind == "lines" else garbage) + encoded
        self._write(encoded)
        self.sent += 1

    def _encode_telegram(self, frame: bytes) -> bytes:
        body = frame[1:]   # dongles deliver from the C field
        if self.kind == "im871a":
            return D.im871a_encode(D.IM_EP_RADIOLINK, D.IM_WMBUS_MSG_IND, body, rssi=RSSI_RAW)
        if self.kind == "amb8465":
            return D.amb8465_encode(D.AMB_DATA_IND, body + bytes([RSSI_RAW]))
        return f"T1;1;1;2026-01-01 00:00:00.000;{97};148;00000000;0x{frame.hex()}\n".encode()

    # ---- commands ----------------------------------------------------------------------
    def _handle_commands(self, buffer: bytearray) -> None:
        if self.kind == "lines":
            buffer.clear()
            return
        framer = D.Im871aFramer() if self.kind == "im871a" else D.Amb8465Framer(False)
        frames = framer.feed(bytes(buffer))
        buffer.clear()
        for frame in frames:
            if self.kind == "im871a":
                self._im871a_command(frame)
            else:
                self._amb8465_command(frame)

    def _im871a_command(self, frame: D.DongleFrame) -> None:
        endpoint, message = frame.command >> 8, frame.command & 0xFF
        if endpoint != D.IM_EP_DEVMGMT:
            return
        if message == D.IM_RESET_REQ:
            self._reset()
            self._write(D.im871a_encode(D.IM_EP_DEVMGMT, D.IM_RESET_RSP, b"\x00"))
        elif self.silent:
            return
        elif message == D.IM_PING_REQ:
            self._write(D.im871a_encode(D.IM_EP_DEVMGMT, D.IM_PING_RSP))
        elif message == D.IM_SET_CONFIG_REQ and len(frame.payload) >= 3:
            self.link_mode = frame.payload[2]
            self._write(D.im871a_encode(D.IM_EP_DEVMGMT, D.IM_SET_CONFIG_RSP, b"\x00"))

    def _amb8465_command(self, frame: D.DongleFrame) -> None:
        if frame.command == D.AMB_RESET_REQ:
            self._reset()
            self._write(D.amb8465_encode(D.AMB_RESET_REQ | D.AMB_RESPONSE, b"\x00"))
        elif self.silent:
            return
        elif frame.command == D.AMB_SERIALNO_REQ:
            self._write(D.amb8465_encode(D.AMB_SERIALNO_REQ | D.AMB_RESPONSE, b"\x12\x34\x56\x78"))
        elif frame.command == D.AMB_SET_MODE_REQ and frame.payload:
            self.link_mode = frame.payload[0]
            self._write(D.amb8465_encode(D.AMB_SET_MODE_REQ | D.AMB_RESPONSE, b"\x00"))

    def _reset(self) -> None:
        self.resets += 1
        self.silent = False
        self.link_mode = None
        LOGGER.debug("sim_dongle_reset", extra={"kind": self.kind, "resets": self.resets})
