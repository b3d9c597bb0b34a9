"""The simulated DLMS meter's links: the server side of HDLC (SNRM/UA negotiation, I/RR with
segmentation both ways, retransmission on RR, DISC) and of the TCP wrapper, hosted on the
transport kit's pty harness (`serve_pty`), on a TCP port (`serve_tcp`) or in memory
(`LoopbackStream`: the real client session against the simulator with no pty, no timing).

Faults: `silent` (the meter says nothing), `spoil_fcs` (the next N frames go with a bad FCS);
a refused association and a wrong key are `ServerSettings` of the application
(drivers/dlms/server.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from typing import Final, Protocol

from drivers.dlms.errors import NeedMore
from drivers.dlms.hdlc import (
    LLC_RESPONSE,
    Address,
    Control,
    FrameKind,
    HdlcFrame,
    build_frame,
    scan_frames,
)
from drivers.dlms.link import (
    LinkParameters,
    Reassembler,
    WrapperPdu,
    decode_parameters,
    decode_wrapper,
)
from drivers.dlms.server import CosemServer
from drivers.errors import FrameError
from drivers.iec62056.framing import ACK
from drivers.transport.sim import PtyLink
from drivers.transport.stream import ByteStream, LineSettings

MAX_SIGN_ON_BYTES: Final = 128


class Far(Protocol):
    """A simulated meter's side of a link: bytes in, the bytes it answers."""

    def feed(self, data: bytes) -> bytes: ...


SERVER_LIMITS = LinkParameters(max_info_tx=128, max_info_rx=128, window_tx=1, window_rx=1)


@dataclass
class LinkFaults:
    silent: bool = False
    spoil_fcs: int = 0  # the next N frames the meter sends have a wrong FCS
    spoil_frame: int | None = None  # the frame numbered so (frames_sent before it) goes bad
    frames_sent: int = 0
    bad_frames_received: int = 0
    unheard_bytes: int = 0  # what came while silent (the gateway kept trying)


@dataclass
class _Peer:
    """One client's HDLC connection state."""

    client: Address
    params: LinkParameters
    vs: int = 0
    vr: int = 0
    joiner: Reassembler = field(default_factory=Reassembler)
    outgoing: list[bytes] = field(default_factory=list)  # segments not sent yet
    window: list[HdlcFrame] = field(default_factory=list)  # sent, not acknowledged


class HdlcServerLink:
    """Server side of HDLC for one meter address: `feed(bytes)` -> the bytes to send back."""

    def __init__(self, app: CosemServer, address: Address,
                 limits: LinkParameters = SERVER_LIMITS) -> None:
        self.app, self.address, self.limits = app, address, limits
        self.faults = LinkFaults()
        self._buffer = b""
        self._peers: dict[Address, _Peer] = {}

    def feed(self, data: bytes) -> bytes:
        if self.faults.silent:
            self.faults.unheard_bytes += len(data)
            return b""  # a hung meter: nothing heard, nothing answered
        scan = scan_frames(self._buffer + data)  # resynchronises past noise and false starts
        self._buffer = scan.rest
        self.faults.bad_frames_received += len(scan.errors)
        out = b""
        for frame in scan.frames:
            if frame.destination == self.address:
                out += b"".join(self._emit(f) for f in self._frame(frame))
        return out

    @property
    def connected(self) -> bool:
        return bool(self._peers)

    def _emit(self, frame: HdlcFrame) -> bytes:
        raw = build_frame(frame)
        faults = self.faults
        spoil = faults.spoil_fcs > 0 or faults.spoil_frame == faults.frames_sent
        faults.frames_sent += 1
        if faults.spoil_fcs > 0:
            faults.spoil_fcs -= 1
        if spoil:
            raw = raw[:-3] + bytes([raw[-3] ^ 0xFF]) + raw[-2:]
        return raw

    def _frame(self, frame: HdlcFrame) -> list[HdlcFrame]:
        kind = frame.control.kind
        if kind is FrameKind.SNRM:
            return [self._connect(frame)]
        if kind is FrameKind.DISC:
            known = self._peers.pop(frame.source, None) is not None
            self.app.drop(frame.source.upper)
            return [self._reply(frame.source, FrameKind.DM if not known else FrameKind.UA)]
        peer = self._peers.get(frame.source)
        if peer is None:
            return [self._reply(frame.source, FrameKind.DM)]
        if kind is FrameKind.RR:
            return self._acknowledged(peer, frame.control.recv_seq)
        if kind is FrameKind.I:
            return self._information(peer, frame)
        return []

    def _connect(self, frame: HdlcFrame) -> HdlcFrame:
        asked = decode_parameters(frame.information)
        # the client's tx is our rx: grant the smaller of each
        granted = LinkParameters(min(self.limits.max_info_tx, asked.max_info_rx),
                                 min(self.limits.max_info_rx, asked.max_info_tx),
                                 min(self.limits.window_tx, asked.window_rx),
                                 min(self.limits.window_rx, asked.window_tx))
        self._peers[frame.source] = _Peer(frame.source, granted)
        self.app.drop(frame.source.upper)
        return HdlcFrame(frame.source, self.address, Control(FrameKind.UA), granted.encode())

    def _reply(self, client: Address, kind: FrameKind, recv: int = 0) -> HdlcFrame:
        return HdlcFrame(client, self.address, Control(kind, True, 0, recv))

    def _information(self, peer: _Peer, frame: HdlcFrame) -> list[HdlcFrame]:
        if frame.control.send_seq != peer.vr:
            return self._acknowledged(peer, frame.control.recv_seq) or [
                self._reply(peer.client, FrameKind.RR, peer.vr)]
        peer.vr = (peer.vr + 1) % 8
        apdu = peer.joiner.add(frame)
        if apdu is None:
            return [self._reply(peer.client, FrameKind.RR, peer.vr)] if (
                frame.control.poll_final) else []
        answer = LLC_RESPONSE + self.app.handle(apdu, peer.client.upper)
        size = peer.params.max_info_tx
        peer.outgoing = [answer[i:i + size] for i in range(0, len(answer), size)]
        peer.window = []
        return self._next_window(peer)

    def _next_window(self, peer: _Peer) -> list[HdlcFrame]:
        group = peer.outgoing[:peer.params.window_tx]
        peer.outgoing = peer.outgoing[len(group):]
        frames = []
        for i, chunk in enumerate(group):
            last = i == len(group) - 1
            frames.append(HdlcFrame(peer.client, self.address,
                                    Control(FrameKind.I, last, peer.vs, peer.vr), chunk,
                                    segmented=bool(peer.outgoing) or not last))
            peer.vs = (peer.vs + 1) % 8
        peer.window = frames
        return frames

    def _acknowledged(self, peer: _Peer, recv: int) -> list[HdlcFrame]:
        """An RR from the client: N(R) past our window -> the next one; else the frames from
        N(R) on again (lost or damaged on the way)."""
        if peer.window and recv != peer.vs:
            return [f for f in peer.window if _seq_from(f.control.send_seq, recv, peer.vs)]
        if peer.outgoing:
            return self._next_window(peer)
        return [self._reply(peer.client, FrameKind.RR, peer.vr)]


def _seq_from(seq: int, first: int, end: int) -> bool:
    """seq in [first, end) modulo 8."""
    return (seq - first) % 8 < (end - first) % 8


class WrapperServer:
    """Server side of the TCP wrapper: wrapper PDUs in, wrapper PDUs out."""

    def __init__(self, app: CosemServer, wport: int = 1) -> None:
        self.app, self.wport = app, wport
        self.faults = LinkFaults()
        self._buffer = b""
        self._clients: set[int] = set()

    def feed(self, data: bytes) -> bytes:
        if self.faults.silent:
            self.faults.unheard_bytes += len(data)
            return b""
        self._buffer += data
        out = b""
        while True:
            try:
                pdu, used = decode_wrapper(self._buffer)
            except NeedMore:
                break
            except FrameError:
                self._buffer = b""
                break
            self._buffer = self._buffer[used:]
            if pdu.destination_wport == self.wport:
                self._clients.add(pdu.source_wport)
                answer = self.app.handle(pdu.apdu, pdu.source_wport)
                out += WrapperPdu(self.wport, pdu.source_wport, answer).encode()
        return out

    def disconnected(self) -> None:
        for client in self._clients:
            self.app.drop(client)
        self._clients.clear()


class ModeEFront:
    """The simulated optical meter: text sign-on, then its HDLC link; back to the sign-on
    after the link is disconnected (a real meter drops to 300 baud)."""

    def __init__(self, far: HdlcServerLink, ident: bytes = b"/MGW5\\2SIMDLMS\r\n") -> None:
        self.far = far
        self.ident = ident
        self.hdlc = False
        self.sign_ons = 0
        self._linked = False
        self._text = b""

    def feed(self, data: bytes) -> bytes:
        if self.hdlc:
            answer = self.far.feed(data)
            self._linked = self._linked or self.far.connected
            if self._linked and not self.far.connected:
                self.hdlc = self._linked = False  # DISC: back to 300 baud and the sign-on
            return answer
        self._text += data
        out = b""
        while b"\n" in self._text:
            line, self._text = self._text.split(b"\n", 1)
            if line.startswith(b"/?") and line.endswith(b"!\r"):
                self.sign_ons += 1
                out += self.ident
            elif line[:1] == bytes([ACK]) and line[1:2] == b"2" and line[3:4] == b"2":
                self.hdlc = True
                rest, self._text = self._text, b""
                return out + (self.far.feed(rest) if rest else b"")
        self._text = self._text[-MAX_SIGN_ON_BYTES:]
        return out


class LoopbackStream(ByteStream):
    """A transport-kit stream whose far end is a simulated link, answered synchronously."""

    def __init__(self, far: Far, *, name: str = "loopback") -> None:
        super().__init__(name=name, protocol="dlms")
        self.far = far
        self._settings = LineSettings()

    @property
    def settings(self) -> LineSettings:
        return self._settings

    def set_line(self, settings: LineSettings) -> None:
        self._settings = settings

    async def _send(self, data: bytes) -> None:
        answer = self.far.feed(data)
        if answer:
            self._received(answer)

    def _shutdown(self) -> None:
        pass


class PtyMeter:
    """The HDLC side of a simulated meter on a pty (`gateway_path` is what the gateway opens)."""

    def __init__(self, far: Far, link_name: str | None = None) -> None:
        self.far = far
        self.link = PtyLink(link_name)
        self._fd: int | None = None

    async def start(self) -> PtyMeter:
        await self.link.start()
        self._fd = self.link.open_device()
        asyncio.get_running_loop().add_reader(self._fd, self._readable)
        return self

    @property
    def gateway_path(self) -> str:
        return self.link.gateway_path

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        answer = self.far.feed(data)
        if answer:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._fd, answer)

    async def stop(self) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        await self.link.stop()


class TcpMeter:
    """The wrapper side of a simulated meter on a TCP port (127.0.0.1, `port` after start)."""

    def __init__(self, app: CosemServer, port: int = 0) -> None:
        self.app = app
        self.port = port
        self.faults = LinkFaults()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpMeter:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        far = WrapperServer(self.app)
        far.faults = self.faults
        self._writers.add(writer)
        try:
            while data := await reader.read(4096):
                answer = far.feed(data)
                if answer:
                    writer.write(answer)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            far.disconnected()
            self._writers.discard(writer)
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None
