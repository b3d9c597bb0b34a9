"""Wall-clock trust: has the clock been synchronised, and did it just jump?

A Pi has no RTC: it boots with the time of the last shutdown (fake-hwclock) or 1970, and NTP
corrects it minutes later, possibly by years. Readings taken before the first sync carry
`synced=False` so the head end can re-date them from their sequence; records are ordered by
sequence, never by wall clock. Jumps are measured against the monotonic clock, which never jumps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOGGER = logging.getLogger(__name__)

SYNC_FLAG_FILE = Path("/run/systemd/timesync/synchronized")  # touched by timesyncd on sync
TIMEDATECTL_TIMEOUT_S = 5.0  # a D-Bus round trip; longer means systemd itself is busy
JUMP_TOLERANCE_MS = 2000  # NTP slews smaller errors; anything above is a step worth reporting
TIME_ERROR = 5  # adjtimex(2) return value: clock not synchronised
STA_UNSYNC = 0x0040  # adjtimex(2) status bit: clock not synchronised


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex from <sys/timex.h> (Linux, LP64 and ILP32 alike thanks to c_long)."""

    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long), ("time", _Timeval), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


def adjtimex_synced() -> bool | None:
    """The kernel's view (read-only adjtimex call); None when it cannot be asked."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        timex = _Timex()  # modes = 0: read only, no privilege needed
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR and not timex.status & STA_UNSYNC


def parse_timedatectl(text: str) -> dict[str, str]:
    """`timedatectl show` output (KEY=value lines) as a dict."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def timedatectl_synced(command: str = "timedatectl") -> bool | None:
    try:
        out = subprocess.run([command, "show"], capture_output=True, text=True, check=True,
                             timeout=TIMEDATECTL_TIMEOUT_S).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    value = parse_timedatectl(out).get("NTPSynchronized")
    return None if value is None else value == "yes"


class ClockSync:
    """Answers "is the wall clock trustworthy yet?"; once true it stays true for the process."""

    def __init__(self, *, flag_file: Path = SYNC_FLAG_FILE,
                 probes: tuple[Callable[[], bool | None], ...] = (adjtimex_synced,
                                                                   timedatectl_synced)) -> None:
        self._flag_file = flag_file
        self._probes = probes
        self._synced = False

    def is_synced(self) -> bool:
        if self._synced:
            return True
        if self._flag_file.exists():
            self._synced = True
        else:
            for probe in self._probes:
                answer = probe()
                if answer is not None:
                    self._synced = answer
                    break
        if self._synced:
            LOGGER.info("clock_synchronised", extra={"wall_ms": time.time_ns() // 1_000_000})
        return self._synced


@dataclass(frozen=True, slots=True)
class Stamp:
    ts_ms: int
    synced: bool


@dataclass(frozen=True, slots=True)
class ClockJump:
    jump_ms: int  # positive: the wall clock moved forward more than real time elapsed
    wall_ms: int


class ClockWatch:
    """Time stamps marked with sync state, and wall-clock jumps measured against monotonic."""

    def __init__(self, sync: ClockSync, *, wall_ns: Callable[[], int] = time.time_ns,
                 mono_ns: Callable[[], int] = time.monotonic_ns,
                 tolerance_ms: int = JUMP_TOLERANCE_MS) -> None:
        self._sync = sync
        self._wall_ns = wall_ns
        self._mono_ns = mono_ns
        self._tolerance_ms = tolerance_ms
        self._anchor = (wall_ns(), mono_ns())

    def stamp(self) -> Stamp:
        return Stamp(ts_ms=self._wall_ns() // 1_000_000, synced=self._sync.is_synced())

    def check_jump(self) -> ClockJump | None:
        """Compare wall and monotonic progress since the last call; a step beyond tolerance is
        returned (and logged) once, and the anchor moves so it is not reported again."""
        wall, mono = self._wall_ns(), self._mono_ns()
        drift_ms = ((wall - self._anchor[0]) - (mono - self._anchor[1])) // 1_000_000
        self._anchor = (wall, mono)
        if abs(drift_ms) <= self._tolerance_ms:
            return None
        jump = ClockJump(jump_ms=drift_ms, wall_ms=wall // 1_000_000)
        LOGGER.warning("clock_jump", extra={"jump_ms": jump.jump_ms, "wall_ms": jump.wall_ms,
                                            "synced": self._sync.is_synced()})
        return jump
