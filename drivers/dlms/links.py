"""The client's DLMS links over a transport-kit byte stream: an HDLC connection (IEC 62056-46)
and the TCP wrapper (IEC 62056-47). Both move one APDU out and one APDU back (`request`).

HDLC: SNRM / UA negotiate the window and the max information field length per direction; a
long request goes out in segments (segmentation bit, window by window, the last frame of a
window with P set, the server's RR acknowledging it), a long answer comes in segments the
client asks for with RR. N(S) / N(R) are checked; a frame that does not come, or comes
damaged, is asked for again with RR (the server resends what it has not had acknowledged) at
most `FRAME_RETRIES` times before the link gives up with the error.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from dataclasses import dataclass
from typing import Final, Protocol

from drivers.dlms.hdlc import (
    LLC_REQUEST,
    Address,
    Control,
    FrameKind,
    HdlcFrame,
    build_frame,
    decode_frame,
    frame_end,
)
from drivers.dlms.link import (
    LinkParameters,
    Reassembler,
    WrapperPdu,
    decode_parameters,
    decode_wrapper,
    wrapper_end,
)
from drivers.errors import DeviceRejected, DeviceTimeout, FrameError
from drivers.transport.stream import ByteStream

LOGGER = logging.getLogger(__name__)

# How long a meter may take to start answering, and the longest silence inside one frame.
RESPONSE_TIMEOUT_S: Final = 3.0
INTER_BYTE_TIMEOUT_S: Final = 0.5
FRAME_RETRIES: Final = 2  # a lost or damaged frame is polled for again this often
# recovered by an RR poll: a frame that did not come, or came damaged (noise on the line)
LINK_RETRYABLE: Final = (DeviceTimeout, FrameError)
PUBLIC_CLIENT: Final = 16  # the client SAP of the public client (no authentication)
DEFAULT_SERVER: Final = Address(1, 17, 2)  # management logical device, physical 17 (common)
PROPOSED: Final = LinkParameters(max_info_tx=128, max_info_rx=128, window_tx=1, window_rx=1)
MAX_WINDOW: Final = 7  # modulo-8 sequence numbers


class LinkState(enum.Enum):
    CLOSED = "closed"
    CONNECTED = "connected"
    FAILED = "failed"  # a protocol error left the sequence numbers unknown: reconnect


class Link(Protocol):
    """What the association needs from a link: one APDU out, one back."""

    async def open(self) -> None: ...

    async def request(self, apdu: bytes) -> bytes: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    response_s: float = RESPONSE_TIMEOUT_S
    inter_byte_s: float = INTER_BYTE_TIMEOUT_S


class HdlcLink:
    """A client's HDLC connection to one server address on a serial line (or a pty)."""

    def __init__(self, stream: ByteStream, client: Address, server: Address = DEFAULT_SERVER,
                 *, proposed: LinkParameters = PROPOSED, timeouts: Timeouts = Timeouts()) -> None:
        self.stream = stream
        self.client, self.server = client, server
        self.proposed = proposed
        self.timeouts = timeouts
        self.agreed = LinkParameters()
        self.state = LinkState.CLOSED
        self._vs = 0  # V(S): N(S) of our next I frame
        self._vr = 0  # V(R): N(S) we expect from the server next
        self.retries = 0  # frames asked for again (a counter the plugin reports)
        self._last_window: list[HdlcFrame] = []  # sent, not yet known to be received

    async def open(self) -> None:
        self.stream.discard_input()
        reply = await self._exchange_unnumbered(FrameKind.SNRM, self.proposed.encode())
        if reply.control.kind is FrameKind.DM:
            raise DeviceRejected(f"{self.stream.name}: the meter refused the connection (DM)")
        if reply.control.kind is not FrameKind.UA:
            raise FrameError(f"SNRM answered with {reply.control.kind.value}, not UA", 0)
        granted = decode_parameters(reply.information)
        agreed = self.proposed.agreed_with(granted)
        self.agreed = LinkParameters(agreed.max_info_tx, agreed.max_info_rx,
                                     max(1, min(agreed.window_tx, MAX_WINDOW)),
                                     max(1, min(agreed.window_rx, MAX_WINDOW)))
        self._vs = self._vr = 0
        self.state = LinkState.CONNECTED

    async def close(self) -> None:
        """DISC (answered with UA or DM); a silent meter does not keep the link open."""
        if self.state is LinkState.CONNECTED:
            # a silent meter drops the link after its inactivity timeout anyway
            with contextlib.suppress(DeviceTimeout, FrameError):
                await self._exchange_unnumbered(FrameKind.DISC, b"")
        self.state = LinkState.CLOSED

    async def request(self, apdu: bytes) -> bytes:
        if self.state is not LinkState.CONNECTED:
            raise FrameError("HDLC link is not connected", 0)
        try:
            await self._send_information(LLC_REQUEST + apdu)
            return await self._receive_information()
        except BaseException:
            self.state = LinkState.FAILED
            raise

    # ---- sending ---------------------------------------------------------------------------
    async def _send_information(self, info: bytes) -> None:
        size = self.agreed.max_info_tx
        chunks = [info[i:i + size] for i in range(0, len(info), size)] or [b""]
        window = self.agreed.window_tx
        for first in range(0, len(chunks), window):
            group = chunks[first:first + window]
            last_group = first + window >= len(chunks)
            frames = []
            for i, chunk in enumerate(group):
                final_of_window = i == len(group) - 1
                frames.append(HdlcFrame(self.server, self.client,
                                        Control(FrameKind.I, final_of_window, self._vs, self._vr),
                                        chunk, segmented=not (last_group and final_of_window)))
                self._vs = (self._vs + 1) % 8
            self._last_window = frames
            for frame in frames:
                await self.stream.write(build_frame(frame))
            if not last_group:
                await self._await_ack(frames)

    async def _await_ack(self, frames: list[HdlcFrame]) -> None:
        """The server's RR for a window of segments; lost ones are sent again."""
        for attempt in range(FRAME_RETRIES + 1):
            try:
                reply = await self._read_frame()
            except LINK_RETRYABLE:
                if attempt == FRAME_RETRIES:
                    raise
                self.retries += 1
                await self._resend(frames)
                continue
            if reply.control.kind is FrameKind.RR and reply.control.recv_seq == self._vs:
                return
            if reply.control.kind is FrameKind.RR:
                await self._resend(frames)
                continue
            raise FrameError(f"expected RR for segments, got {reply.control.kind.value}", 0)
        raise DeviceTimeout(f"{self.stream.name}: segments not acknowledged")

    async def _resend(self, frames: list[HdlcFrame]) -> None:
        for frame in frames:
            await self.stream.write(build_frame(frame))

    # ---- receiving -------------------------------------------------------------------------
    async def _receive_information(self) -> bytes:
        joiner = Reassembler()
        polls = 0
        while True:
            try:
                frame = await self._read_frame()
            except LINK_RETRYABLE:
                if polls >= FRAME_RETRIES:
                    raise
                polls += 1
                self.retries += 1
                await self._send_rr()  # "send me frame V(R)": the server repeats it
                continue
            if frame.control.kind is FrameKind.RR:
                if frame.control.recv_seq != self._vs:  # our request never arrived
                    if polls >= FRAME_RETRIES:
                        raise FrameError("the meter did not receive the request", 0)
                    polls += 1
                    self.retries += 1
                    await self._resend(self._last_window)
                continue
            if frame.control.kind is not FrameKind.I:
                raise FrameError(f"expected an I frame, got {frame.control.kind.value}", 0)
            if frame.control.send_seq != self._vr:
                if polls >= FRAME_RETRIES:
                    raise FrameError(f"I frame N(S) {frame.control.send_seq}, expected "
                                     f"{self._vr}", 0)
                polls += 1
                await self._send_rr()
                continue
            self._vr = (self._vr + 1) % 8
            polls = 0
            apdu = joiner.add(frame)
            if apdu is not None:
                return apdu
            if frame.control.poll_final:
                await self._send_rr()

    async def _send_rr(self) -> None:
        await self.stream.write(build_frame(HdlcFrame(
            self.server, self.client, Control(FrameKind.RR, True, 0, self._vr))))

    async def _exchange_unnumbered(self, kind: FrameKind, info: bytes) -> HdlcFrame:
        frame = build_frame(HdlcFrame(self.server, self.client, Control(kind), info))
        for attempt in range(FRAME_RETRIES + 1):
            await self.stream.write(frame)
            try:
                return await self._read_frame()
            except LINK_RETRYABLE:
                if attempt == FRAME_RETRIES:
                    raise
                self.retries += 1
        raise AssertionError("unreachable")

    async def _read_frame(self) -> HdlcFrame:
        """The next frame from our server to us (frames to other clients on a shared line
        are skipped)."""
        while True:
            raw = await self.stream.read_message(frame_end, self.timeouts.response_s,
                                                 self.timeouts.inter_byte_s, "HDLC frame")
            try:
                frame, _ = decode_frame(raw)
            except FrameError:
                self.stream.discard_input()  # what followed the damage is no frame start
                raise
            if frame.destination == self.client and frame.source == self.server:
                return frame
            LOGGER.debug("dlms_frame_not_ours", extra={"meter": self.stream.meter,
                                                        "source": str(frame.source)})


CLIENT_WPORT_PUBLIC: Final = 16
SERVER_WPORT_MANAGEMENT: Final = 1


class WrapperLink:
    """A client over the TCP wrapper: no link connection, one wrapper PDU each way."""

    def __init__(self, stream: ByteStream, client_wport: int, server_wport: int = 1, *,
                 timeouts: Timeouts = Timeouts()) -> None:
        self.stream = stream
        self.client_wport, self.server_wport = client_wport, server_wport
        self.timeouts = timeouts
        self.retries = 0

    async def open(self) -> None:
        self.stream.discard_input()

    async def close(self) -> None:
        pass  # the TCP connection is the stream's; its owner closes it

    async def request(self, apdu: bytes) -> bytes:
        await self.stream.write(WrapperPdu(self.client_wport, self.server_wport, apdu).encode())
        while True:
            raw = await self.stream.read_message(wrapper_end, self.timeouts.response_s,
                                                 self.timeouts.inter_byte_s, "wrapper PDU")
            pdu, _ = decode_wrapper(raw)
            if pdu.destination_wport == self.client_wport:
                return pdu.apdu
