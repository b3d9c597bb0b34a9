"""WmbusReceiver: a dongle (or line source) -> decoded telegrams of the configured meters.

The port `board/` opened becomes a transport-kit serial stream in push mode: every chunk goes
to the dongle's framer as it arrives, on the event loop. A supervisor pings a silent dongle,
resets a hung or garbling one, and reopens the port (with capped backoff) when it is unplugged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

from drivers.errors import DeviceTimeout, DriverError, PortUnavailable
from drivers.transport.serial import SerialStream, take_descriptor
from drivers.transport.stream import ByteStream, LineSettings
from drivers.wmbus import dongles as D
from drivers.wmbus import security as sec
from drivers.wmbus.billing import telegram_readings_with_billing
from drivers.wmbus.keys import KeyStore
from drivers.wmbus.receiver_types import (
    HeardMeter,
    MeterConfig,
    MeterTelegram,
    WmbusEvent,
    frame_sender,
)
from drivers.wmbus.telegram import PlaintextRefused, TelegramDecoder

LOGGER = logging.getLogger(__name__)
__all__ = ["DONGLE_BAUD", "HeardMeter", "MeterConfig", "MeterTelegram", "WmbusEvent",
           "WmbusReceiver", "frame_sender"]

SETUP_TIMEOUT_S: Final = 2.0       # the dongles answer a command within milliseconds
SILENCE_S: Final = 120.0           # no byte for this long: ask the dongle whether it is alive
PING_TIMEOUT_S: Final = 2.0        # a live dongle answers a ping at once
SUPERVISE_EVERY_S: Final = 1.0     # how often the supervisor looks at the dongle
GARBLE_LIMIT: Final = 20           # bad frames per supervision window before a reset
RECONNECT_FIRST_S: Final = 0.5     # first retry after an unplug (USB re-enumeration is quick)
RECONNECT_MAX_S: Final = 30.0      # backoff cap: a dongle plugged back is found within this
DUPLICATE_WINDOW_S: Final = 10.0   # repeaters re-send within seconds; meters every >= 16 s
QUEUE_SIZE: Final = 1000           # telegrams waiting for the service; oldest dropped beyond
EVENT_QUEUE_SIZE: Final = 200      # events waiting for the service; oldest dropped beyond
PROTOCOL: Final = "wmbus"  # the wire logger: drivers.wmbus.wire
# Factory line speeds of the dongles (the "lines" source is whatever the SDR tool writes).
DONGLE_BAUD: Final = {"im871a": 57600, "amb8465": 9600, "lines": 115200}


class WmbusReceiver:
    """Receives, filters, decrypts and decodes telegrams; see module docstring."""

    def __init__(self, open_port: Callable[[], Any], dongle: str, link_mode: str,
                 keys: KeyStore, meters: Mapping[str, MeterConfig | None], *,
                 clock: Callable[[], float] = time.time) -> None:
        if dongle not in ("im871a", "amb8465", "lines"):
            raise DriverError(f"unknown wmbus dongle kind {dongle!r}")
        if dongle != "lines" and link_mode not in D.LINK_MODES:
            raise DriverError(f"unknown wmbus link mode {link_mode!r}; one of {D.LINK_MODES}")
        self._open_port = open_port
        self._dongle = dongle
        self._link_mode = link_mode
        self._keys = keys
        self._meters = {m.upper(): (c or MeterConfig()) for m, c in meters.items()}
        self._clock = clock
        self._decoder = TelegramDecoder(keys.get)
        self._queue: asyncio.Queue[MeterTelegram] = asyncio.Queue(QUEUE_SIZE)
        self.events: asyncio.Queue[WmbusEvent] = asyncio.Queue(EVENT_QUEUE_SIZE)
        self._heard: dict[str, HeardMeter] = {}
        self._recent: dict[bytes, float] = {}
        self._warned: set[tuple[str, str]] = set()
        self._value_errors: dict[str, int] = {}   # meter -> records with a value out of range
        self._counters = dict.fromkeys(
            ("frames", "telegrams", "duplicates", "unknown", "decode_errors", "wrong_key",
             "plaintext_refused", "no_key", "type_mismatch", "dropped", "resets",
             "reconnects", "bad_frames"), 0)
        self._stream: ByteStream | None = None
        self._framer: D.Im871aFramer | D.Amb8465Framer | None = None
        self._line_buffer = b""
        self._last_rx = 0.0
        self._response: asyncio.Future[D.DongleFrame] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False

    # ---- public API --------------------------------------------------------------------
    async def start(self, *, wait_for_port: bool = False) -> None:
        """Open the port and set the link mode; raises PortUnavailable / DeviceTimeout, or with
        `wait_for_port` (a USB stick enumerating after the service) pushes one `port_unavailable`
        event and leaves the opening to the supervisor's reconnect backoff."""
        self._closed = False
        try:
            await self._connect()
        except DriverError as exc:
            if not wait_for_port:
                raise
            LOGGER.warning("wmbus_port_unavailable", extra={
                "dongle": self._dongle, "error": str(exc), "retry_s": RECONNECT_FIRST_S})
            self._push_event(WmbusEvent("port_unavailable", None, self._now_ms(), str(exc)))
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def telegrams(self, *, wait_for_port: bool = False) -> AsyncIterator[MeterTelegram]:
        """Decoded telegrams of configured meters, as they arrive (starts the receiver)."""
        if self._supervisor is None:
            await self.start(wait_for_port=wait_for_port)
        while not self._closed:
            yield await self._queue.get()

    def unknown_meters(self) -> list[HeardMeter]:
        return sorted(self._heard.values(), key=lambda h: (-h.count, h.meter))

    def meter_counters(self, meter: str) -> dict[str, int]:
        """Per-meter counts: `value_errors`, records whose value was out of range (FrameError)."""
        return {"value_errors": self._value_errors.get(meter.upper(), 0)}

    @property
    def connected(self) -> bool:
        """The dongle's port is open (False from a lost port until the reconnect)."""
        return self._stream is not None

    def counters(self) -> dict[str, int]:
        framer = self._framer
        return self._counters | {"bad_frames": framer.bad_frames if framer else 0}

    async def close(self) -> None:
        """Stop receiving; `start()` / `telegrams()` start again (a restarted source)."""
        self._closed = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        self._disconnect()

    # ---- port handling -----------------------------------------------------------------
    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            opened = await loop.run_in_executor(None, self._open_port)
            stream = self._stream_of(opened)
        except (OSError, ValueError) as exc:
            raise PortUnavailable(f"wmbus dongle port: {exc}") from exc
        except Exception as exc:   # pyserial's SerialException derives from OSError/IOError
            raise PortUnavailable(f"wmbus dongle port: {exc}") from exc
        self._stream = stream
        self._framer = (D.Im871aFramer() if self._dongle == "im871a" else
                        D.Amb8465Framer() if self._dongle == "amb8465" else None)
        self._line_buffer = b""
        stream.push_to(self._on_data, self._on_lost)
        self._last_rx = loop.time()
        try:
            await self._setup()
        except BaseException:
            self._disconnect()
            raise

    def _stream_of(self, opened: Any) -> ByteStream:
        """A kit stream over what the opener gave: a port from board/, or a stream (tests)."""
        if isinstance(opened, ByteStream):
            return opened
        return SerialStream(take_descriptor(opened), LineSettings(DONGLE_BAUD[self._dongle]),
                            name=f"wmbus {self._dongle}", protocol=PROTOCOL, half_duplex=False)

    def _disconnect(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    async def _setup(self) -> None:
        if self._dongle == "im871a":
            mode = D.IM_LINK_MODES[self._link_mode]
            # NVM 0 (RAM only), IIFlag1 0x02 (link mode follows), link mode, IIFlag2 0x00
            await self._command(D.im871a_encode(D.IM_EP_DEVMGMT, D.IM_SET_CONFIG_REQ,
                                                bytes([0, 0x02, mode, 0])))
        elif self._dongle == "amb8465":
            mode = D.AMB_LINK_MODES[self._link_mode]
            await self._command(D.amb8465_encode(D.AMB_SET_MODE_REQ, bytes([mode])))

    async def _command(self, frame: bytes, timeout: float = SETUP_TIMEOUT_S) -> D.DongleFrame:
        if self._stream is None:
            raise PortUnavailable(f"wmbus {self._dongle}: port not open")
        self._response = asyncio.get_running_loop().create_future()
        try:
            await self._stream.write(frame)
            async with asyncio.timeout(timeout):
                return await self._response
        except TimeoutError as exc:
            raise DeviceTimeout(f"wmbus {self._dongle} did not answer") from exc
        finally:
            self._response = None

    def _on_lost(self, reason: str) -> None:
        LOGGER.warning("wmbus_port_lost", extra={"dongle": self._dongle, "error": reason})
        self._disconnect()  # the supervisor reopens the port

    def _on_data(self, data: bytes) -> None:
        self._last_rx = asyncio.get_running_loop().time()
        for frame in self._frames(data):
            if frame.frame is not None:
                self._on_telegram(frame.frame, frame.rssi_dbm)
            elif self._response is not None and not self._response.done():
                self._response.set_result(frame)

    def _frames(self, data: bytes) -> list[D.DongleFrame]:
        if self._framer is not None:
            return self._framer.feed(data)
        lines = (self._line_buffer + data).split(b"\n")
        self._line_buffer = lines.pop()[-D.MAX_BUFFER:]
        frames = []
        for line in lines:
            try:
                parsed = D.parse_line(line.decode("ascii", "replace"))
            except ValueError:
                self._counters["bad_frames"] += 1
                continue
            if parsed is not None:
                frames.append(parsed)
        return frames

    # ---- telegrams ---------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _is_duplicate(self, frame: bytes) -> bool:
        """Same bytes from M on (repeaters change C) within the window: a duplicate."""
        now = asyncio.get_running_loop().time()
        key = frame[2:]
        seen = self._recent.get(key)
        if len(self._recent) > QUEUE_SIZE:
            self._recent = {k: t for k, t in self._recent.items()
                            if now - t < DUPLICATE_WINDOW_S}
        self._recent[key] = now
        return seen is not None and now - seen < DUPLICATE_WINDOW_S

    def _on_telegram(self, frame: bytes, rssi: int | None) -> None:
        self._counters["frames"] += 1
        if len(frame) < 12 or self._is_duplicate(frame):
            self._counters["duplicates" if len(frame) >= 12 else "decode_errors"] += 1
            return
        meter, manufacturer, device_type = frame_sender(frame)
        config = self._meters.get(meter)
        if config is None:
            self._count_unknown(meter, manufacturer, device_type, rssi)
            return
        if ((config.manufacturer and config.manufacturer.upper() != manufacturer) or
                (config.device_type is not None and config.device_type != device_type)):
            self._counters["type_mismatch"] += 1
            self._warn_once(meter, "wmbus_meter_mismatch", manufacturer=manufacturer,
                            device_type=device_type)
            return
        self._decode(meter, frame, rssi)

    def _decode(self, meter: str, frame: bytes, rssi: int | None) -> None:
        try:
            telegram = self._decoder.decode(frame, crcs_stripped=self._dongle != "lines")
        except PlaintextRefused as exc:
            self._counters["plaintext_refused"] += 1
            self._event_once(meter, "plaintext_from_keyed_meter", str(exc))
            return
        except sec.WrongKey:
            self._counters["wrong_key"] += 1
            self._event_once(meter, "wrong_key", "wrong key or corrupt telegram")
            return
        except sec.KeyRequired:
            self._counters["no_key"] += 1
            self._warn_once(meter, "wmbus_key_missing")
            return
        except DriverError as exc:
            self._counters["decode_errors"] += 1
            LOGGER.debug("wmbus_decode_error", extra={"meter": meter, "error": str(exc)})
            return
        self._warned -= {(meter, "wrong_key"), (meter, "plaintext_from_keyed_meter")}
        samples, errors = telegram_readings_with_billing(telegram)
        if errors:  # those records give no sample; the rest of the telegram is stored
            self._value_errors[meter] = self._value_errors.get(meter, 0) + len(errors)
            self._warn_once(meter, "wmbus_value_out_of_range", records=len(errors),
                            error=str(errors[0]))
        item = MeterTelegram(meter, self._now_ms(), rssi, samples, telegram.manufacturer,
                             telegram.device_type)
        if self._queue.full():
            self._queue.get_nowait()
            self._counters["dropped"] += 1
        self._queue.put_nowait(item)
        self._counters["telegrams"] += 1

    def _count_unknown(self, meter: str, manufacturer: str, device_type: int,
                       rssi: int | None) -> None:
        self._counters["unknown"] += 1
        heard = self._heard.get(meter)
        if heard is None:
            if len(self._heard) >= QUEUE_SIZE:
                return   # a scan list of a thousand neighbours is enough
            heard = self._heard[meter] = HeardMeter(meter, manufacturer, device_type, 0, None, 0)
        heard.count += 1
        heard.last_rssi_dbm = rssi
        heard.last_seen_ms = self._now_ms()

    def _warn_once(self, meter: str, event: str, **fields: object) -> None:
        if (meter, event) in self._warned:
            LOGGER.debug(event, extra={"meter": meter, **fields})
            return
        self._warned.add((meter, event))
        LOGGER.warning(event, extra={"meter": meter, **fields})

    def _event_once(self, meter: str | None, kind: str, detail: str) -> None:
        if meter is not None and (meter, kind) in self._warned:
            return
        if meter is not None:
            self._warn_once(meter, kind)
        self._push_event(WmbusEvent(kind, meter, self._now_ms(), detail))

    def _push_event(self, event: WmbusEvent) -> None:
        if self.events.full():
            self.events.get_nowait()
        self.events.put_nowait(event)

    # ---- supervision -------------------------------------------------------------------
    async def _supervise(self) -> None:
        backoff = RECONNECT_FIRST_S
        bad_before = 0
        while True:
            await asyncio.sleep(SUPERVISE_EVERY_S if self._stream is not None else backoff)
            if self._stream is None:
                backoff = await self._reconnect(backoff)
                continue
            backoff = RECONNECT_FIRST_S
            bad_now = self.counters()["bad_frames"]
            garbling = bad_now - bad_before > GARBLE_LIMIT
            bad_before = bad_now
            silent = asyncio.get_running_loop().time() - self._last_rx > SILENCE_S
            if self._dongle != "lines" and (garbling or (silent and not await self._ping())):
                await self._reset("garbling" if garbling else "silent")

    async def _reconnect(self, backoff: float) -> float:
        try:
            await self._connect()
        except DriverError as exc:
            level = logging.WARNING if backoff == RECONNECT_FIRST_S else logging.DEBUG
            LOGGER.log(level, "wmbus_reconnect_failed", extra={"error": str(exc)})
            return min(backoff * 2, RECONNECT_MAX_S)
        self._counters["reconnects"] += 1
        LOGGER.info("wmbus_dongle_reconnected", extra={"dongle": self._dongle})
        self._push_event(WmbusEvent("dongle_reconnected", None, self._now_ms(), self._dongle))
        return RECONNECT_FIRST_S

    async def _ping(self) -> bool:
        request = (D.im871a_encode(D.IM_EP_DEVMGMT, D.IM_PING_REQ) if self._dongle == "im871a"
                   else D.amb8465_encode(D.AMB_SERIALNO_REQ))
        try:
            await self._command(request, PING_TIMEOUT_S)
        except DriverError:
            return False
        self._last_rx = asyncio.get_running_loop().time()
        return True

    async def _reset(self, reason: str) -> None:
        self._counters["resets"] += 1
        LOGGER.warning("wmbus_dongle_reset", extra={"dongle": self._dongle, "reason": reason})
        self._push_event(WmbusEvent("dongle_reset", None, self._now_ms(), reason))
        request = (D.im871a_encode(D.IM_EP_DEVMGMT, D.IM_RESET_REQ) if self._dongle == "im871a"
                   else D.amb8465_encode(D.AMB_RESET_REQ))
        try:
            await self._command(request)
            await self._setup()
            self._last_rx = asyncio.get_running_loop().time()
        except DriverError:
            self._disconnect()   # the supervisor reopens the port
