"""Wired M-Bus link layer (EN 13757-2): C fields, the FCB / FCV rules, timing, echo stripping.

Timing is in bit times of the current baud, 11 bits per character (8E1: start, 8 data, even
parity, stop). A slave answers 11 to 330 bit times + 50 ms after the request's last stop bit;
the 50 ms is the standard's allowance for slow slaves and repeaters, so it does not scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from drivers import ft12
from drivers.errors import FrameError

# ---- C field (EN 13757-2 table 3) --------------------------------------------------------
PRM: Final = 0x40          # set in master -> slave frames
FCB: Final = 0x20          # frame count bit (master); ACD in slave frames
FCV: Final = 0x10          # frame count bit valid (master); DFC in slave frames
SND_NKE: Final = 0x40      # link reset: FCV = 0
SND_UD: Final = 0x53       # send user data: FCV = 1
REQ_UD2: Final = 0x5B      # request class 2 data: FCV = 1
REQ_UD1: Final = 0x5A      # request class 1 (alarm) data
RSP_UD: Final = 0x08       # slave answer, function 8 (ACD / DFC may be set)
_FUNCTION: Final = 0x0F

# ---- timing --------------------------------------------------------------------------------
BITS_PER_CHAR: Final = 11
ANSWER_TIMEOUT_BITS: Final = 330      # latest answer start: 330 bit times ...
ANSWER_TIMEOUT_EXTRA_S: Final = 0.050  # ... + 50 ms
# Between two characters of one answer: the standard wants none, but USB level converters
# deliver in chunks; two characters of silence plus the same 50 ms allowance cuts a frame.
INTER_BYTE_BITS: Final = 2 * BITS_PER_CHAR
INTER_BYTE_EXTRA_S: Final = 0.050
# After a telegram nobody answers (broadcast to 255, a select) a slave may still be acting on it
# for as long as it could have taken to answer: the line stays quiet for the answer window.
BROADCAST_IDLE_BITS: Final = ANSWER_TIMEOUT_BITS
BROADCAST_IDLE_EXTRA_S: Final = ANSWER_TIMEOUT_EXTRA_S
ATTEMPTS: Final = 3                   # EN 13757-2: a request is sent at most three times
BAUD_RATES: Final = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400)


def wire_time_s(n_bytes: int, baud: int) -> float:
    """Seconds `n_bytes` take on the wire at `baud` (8E1)."""
    return n_bytes * BITS_PER_CHAR / baud


def answer_timeout_s(baud: int) -> float:
    """How long after a request the first byte of the answer may come: 330 bit times + 50 ms."""
    return ANSWER_TIMEOUT_BITS / baud + ANSWER_TIMEOUT_EXTRA_S


def inter_byte_timeout_s(baud: int) -> float:
    return INTER_BYTE_BITS / baud + INTER_BYTE_EXTRA_S


def broadcast_idle_s(baud: int) -> float:
    """The quiet time after a telegram that gets no answer, before the next one."""
    return BROADCAST_IDLE_BITS / baud + BROADCAST_IDLE_EXTRA_S


# ---- FCB / FCV -----------------------------------------------------------------------------

def master_control(function: int, fcb: bool) -> int:
    """C field of a request with FCV = 1 (SND_UD, REQ_UD2, REQ_UD1) and the given FCB."""
    return function | (FCB if fcb else 0)


@dataclass
class FcbState:
    """The master's frame count bit per address.

    FCV = 1 requests carry the FCB; the master toggles it after each exchange that got a valid
    answer, so a slave seeing the same FCB again knows its answer was lost and repeats it (a
    multi-telegram meter moves on to its next telegram only when the FCB toggles). A retry
    keeps the FCB. SND_NKE (FCV = 0) resets the slave, whose next FCV = 1 frame carries
    FCB = 1. Selecting a meter by secondary address starts the selected address (253) anew."""

    _next: dict[int, bool] = field(default_factory=dict)

    def current(self, address: int) -> bool:
        return self._next.get(address, True)

    def confirmed(self, address: int) -> None:
        """A valid answer came: the next request to `address` flips the bit."""
        self._next[address] = not self.current(address)

    def reset(self, address: int) -> None:
        self._next.pop(address, None)

    def reset_all(self) -> None:
        self._next.clear()


# ---- echo and answer ends ------------------------------------------------------------------

def strip_echo(received: bytes, sent: bytes) -> bytes | None:
    """`received` without a level converter's echo of `sent`; None while the echo is still
    arriving. A slave frame never starts like a master one (PRM, start bytes), so an exact echo
    is recognised without configuration; anything else is the answer itself."""
    if sent and received[:len(sent)] == sent:
        return received[len(sent):]
    if sent and received == sent[:len(received)]:
        return None
    return received


@dataclass(frozen=True, slots=True)
class AnswerFinder:
    """An end finder for the answer to `sent`: the end index once the echo (if any) and one
    whole frame have arrived, None while more may come. Bytes that are no frame (a collision,
    noise) also give None: the read then ends at the inter-byte silence and the caller sees
    every byte, which is what the secondary search needs to call a collision."""

    sent: bytes
    address_width: int = 1

    def __call__(self, buf: bytes) -> int | None:
        rest = strip_echo(buf, self.sent)
        if rest is None:
            return None
        outcome = ft12.find_frame(rest, self.address_width)
        if isinstance(outcome, ft12.Found):
            return len(buf) - len(rest) + outcome.size
        return None


def split_answer(received: bytes, sent: bytes, address_width: int = 1) -> ft12.Frame:
    """The one frame of an answer (echo stripped); FrameError for anything else: garbled bytes,
    a bad checksum, a cut frame, bytes after the frame."""
    rest = strip_echo(received, sent)
    if rest is None:
        raise FrameError("only (part of) the echo of the request came back", len(received))
    return ft12.parse_frame(rest, address_width)


def is_slave_control(control: int) -> bool:
    return not control & PRM and control & _FUNCTION == RSP_UD


def check_request_control(control: int) -> None:
    if not control & PRM:
        raise FrameError(f"C field {control:02X} is no master frame", 1)
