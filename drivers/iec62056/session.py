"""IEC 62056-21 sessions over one kit stream: sign-on, modes A/B/C readout, programming mode.

Timing follows IEC 62056-21: the meter answers within the reaction time tr (200 ms..1500 ms, or
from 20 ms when the manufacturer id's third letter is lowercase) and keeps characters within
ta = 1500 ms of each other. In mode C the master sends the acknowledgement at 300 baud, waits until
it has left the line, then switches; the meter switches after its reaction time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Final

from drivers.errors import DeviceRejected, DriverError, FrameError
from drivers.iec62056.datasets import DataSet, parse_line
from drivers.iec62056.framing import (
    ACK,
    ETX,
    INITIAL_BAUD,
    MODE_C_BAUD,
    MODE_PROGRAMMING,
    MODE_READOUT,
    NAK,
    SOH,
    STX,
    Identification,
    build_ack,
    build_command,
    build_request,
    check_data_frame,
    frame_command,
    parse_identification,
)
from drivers.transport.stream import ByteStream, EndFinder

LOGGER = logging.getLogger(__name__)

# tr is at most 1500 ms; 500 ms more absorbs USB-serial adapter latency.
REACTION_TIMEOUT_S: Final = 2.0
# ta: at most 1500 ms between two characters of one message.
INTER_CHAR_TIMEOUT_S: Final = 1.5
# After the acknowledgement has left the line and before the new rate: well under the 20 ms
# minimum reaction of the fastest meters, long enough for the UART's last stop bit.
BAUD_SWITCH_GUARD_S: Final = 0.01
# Lines before the identification we tolerate (echo of our request, blank lines, noise).
MAX_LINES_BEFORE_IDENT: Final = 4


def _line_end(buf: bytes) -> int | None:
    end = buf.find(b"\n")
    return None if end < 0 else end + 1


def _bcc_frame_end(buf: bytes, start_byte: int) -> int | None:
    start = buf.find(bytes([start_byte]))
    if start < 0:
        return None
    etx = buf.find(bytes([ETX]), start + 1)
    return etx + 2 if 0 <= etx < len(buf) - 1 else None


def data_frame_end(buf: bytes) -> int | None:
    return _bcc_frame_end(buf, STX)


def command_reply_end(buf: bytes) -> int | None:
    """A lone ACK/NAK, or a whole SOH/STX ... ETX BCC message."""
    stripped = buf.lstrip(b"\r\n")
    if not stripped:
        return None
    skipped = len(buf) - len(stripped)
    if stripped[0] in (ACK, NAK):
        return skipped + 1
    end = _bcc_frame_end(stripped, stripped[0]) if stripped[0] in (SOH, STX) else None
    return None if end is None else skipped + end


def choose_mode_c_baud(offered: int, max_baud: int) -> tuple[str, int]:
    """Highest mode C rate not above what the meter offers and what the line allows."""
    rates = [(char, rate) for char, rate in MODE_C_BAUD.items() if rate <= min(offered, max_baud)]
    return max(rates, key=lambda item: item[1])


@dataclass
class RegisterReads:
    """Programming-mode reads: data sets by requested address, and refusals by address."""

    values: dict[str, DataSet] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class Session:
    """One meter's conversation; the caller holds the bus for its whole duration."""

    def __init__(self, line: ByteStream, meter_id: str, echo: bool) -> None:
        self.line = line
        line.meter = meter_id  # the wire trace names the meter being read
        self.meter_id = meter_id
        self.echo = echo

    async def _send(self, data: bytes) -> None:
        await self.line.write(data)
        if self.echo:
            await self.line.expect_echo(data, REACTION_TIMEOUT_S)

    async def _receive(self, find_end: EndFinder, what: str) -> bytes:
        return await self.line.read_message(
            find_end, REACTION_TIMEOUT_S, INTER_CHAR_TIMEOUT_S, f"{what} from {self.meter_id}"
        )

    async def sign_on(self, address: str) -> tuple[Identification, bytes]:
        """`/?address!` at 300 baud; returns the identification and its raw line."""
        self.line.set_baud(INITIAL_BAUD)
        self.line.discard_input()
        request = build_request(address)
        await self._send(request)
        for _ in range(MAX_LINES_BEFORE_IDENT):
            raw = await self._receive(_line_end, "identification")
            start = raw.find(b"/")
            if start < 0 or raw[start:].rstrip() == request.rstrip():
                continue  # blank line, noise, or an unexpected echo of our request
            return parse_identification(raw[start:]), raw[start:]
        raise FrameError(f"{self.meter_id}: no identification line after {address!r} request")

    async def _switch_after_ack(self, baud_char: str, mode_char: str) -> int:
        await self._send(build_ack(baud_char, mode_char))
        await asyncio.sleep(BAUD_SWITCH_GUARD_S)
        baud = MODE_C_BAUD[baud_char]
        self.line.set_baud(baud)
        return baud

    async def readout(self, address: str, mode: str, max_baud: int) -> tuple[bytes, int]:
        """Sign on and read the data readout; returns (identification line + frame, baud)."""
        ident, ident_raw = await self.sign_on(address)
        baud = INITIAL_BAUD
        if mode == "C" and ident.mode_c_baud is not None:
            char, _ = choose_mode_c_baud(ident.mode_c_baud, max_baud)
            baud = await self._switch_after_ack(char, MODE_READOUT)
        elif mode == "B" and ident.mode_b_baud is not None:
            baud = ident.mode_b_baud  # mode B: both sides switch right after the identification
            await asyncio.sleep(BAUD_SWITCH_GUARD_S)
            self.line.set_baud(baud)
        frame = await self._receive(data_frame_end, "data readout")
        LOGGER.debug("iec_readout_received", extra={"meter": self.meter_id, "bytes": len(frame),
                                                     "baud": baud})
        return ident_raw + frame, baud

    async def read_registers(
        self, address: str, max_baud: int, password: str | None, registers: list[str],
        command: str = "R1",
    ) -> tuple[Identification, RegisterReads]:
        """Programming mode: P0 prompt, P1 password, one R1/R5 per register, then B0."""
        ident, _ = await self.sign_on(address)
        offered = ident.mode_c_baud or INITIAL_BAUD
        char, _ = choose_mode_c_baud(offered, max_baud)
        await self._switch_after_ack(char, MODE_PROGRAMMING)
        try:
            prompt = await self._receive(command_reply_end, "P0 password prompt")
            if frame_command(prompt.lstrip(b"\r\n"))[0] != "P0":
                raise FrameError(f"{self.meter_id}: expected P0, got {prompt[:8]!r}", 0)
            if password is not None:
                await self._login(password)
            reads = RegisterReads()
            for register in registers:
                await self._read_one(register, command, reads)
            return ident, reads
        finally:
            with contextlib.suppress(DriverError, OSError):
                await self._send(build_command("B0"))

    async def _login(self, password: str) -> None:
        await self._send(build_command("P1", f"({password})"))
        reply = await self._receive(command_reply_end, "password reply")
        if reply.lstrip(b"\r\n")[:1] != bytes([ACK]):
            raise DeviceRejected(f"{self.meter_id}: password refused ({reply[:8]!r})")

    async def _read_one(self, register: str, command: str, reads: RegisterReads) -> None:
        await self._send(build_command(command, f"{register}()"))
        reply = (await self._receive(command_reply_end, f"{register} value")).lstrip(b"\r\n")
        if reply[:1] == bytes([NAK]):
            reads.errors[register] = "NAK"
            return
        data = check_data_frame(reply).decode("latin-1")
        sets = parse_line(data.strip())
        if not sets or not sets[0].address:
            reads.errors[register] = data.strip()  # "(ERROR)" style refusal, address-less
            return
        reads.values[register] = sets[0]

