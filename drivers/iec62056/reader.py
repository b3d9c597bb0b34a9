"""The gateway-facing driver: reads IEC 62056-21 meters on one shared serial line.

`Iec62056Bus` is built with a port factory (given a baud rate, returns an open pyserial-like port)
and reads meters one after the other. Each read returns `Sample`s; `read` also returns a
`ReadResult` with the meter's clock drift, which the service turns into an event when
`drift_exceeded` is set (or through the `on_clock_drift` callback).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from drivers.errors import (
    ChecksumError,
    DeviceRejected,
    DeviceTimeout,
    DriverError,
    FrameError,
    PortUnavailable,
    ProfileError,
)
from drivers.iec62056.framing import INITIAL_BAUD, MODE_C_BAUD, Identification
from drivers.iec62056.mapping import MappedReadout, map_datasets
from drivers.iec62056.readout import Readout, decode_message
from drivers.iec62056.serialio import open_line
from drivers.iec62056.session import Session
from drivers.readings import Sample
from drivers.transport.stream import ByteStream

LOGGER = logging.getLogger(__name__)

# One fall-back attempt at 300 baud after a failed read at the negotiated rate: some meters offer
# a rate their optical port does not hold.
BAUD_FALLBACK_ATTEMPTS: Final = 1
# The `[[meter]]` keys of protocol "iec62056" (drivers/iec62056/plugin.py declares them).
OPTION_KEYS: Final = frozenset({"mode", "max_baud", "password", "obis", "read_command",
                                "clock_drift_limit_s", "utc_offset_min"})
DEFAULT_MAX_BAUD: Final = 9600

ClockDriftCallback = Callable[[str, int], None]
# Most specific first: ChecksumError is a FrameError.
_FAILURE_COUNTERS: Final = (
    (ChecksumError, "checksum_errors"), (FrameError, "frame_errors"),
    (DeviceTimeout, "timeouts"), (DeviceRejected, "rejected"), (PortUnavailable, "port_errors"),
)


@dataclass(frozen=True, slots=True)
class MeterOptions:
    mode: str = "C"
    max_baud: int = DEFAULT_MAX_BAUD
    password: str | None = None  # "" in the config means none: no P1 is sent
    obis: tuple[str, ...] = ()  # programming-mode reads instead of the data readout
    read_command: str = "R1"
    clock_drift_limit_s: int | None = None  # None: the meter clock is not checked
    utc_offset_min: int | None = None  # None: the meter keeps the gateway's local time

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any], meter_id: str) -> MeterOptions:
        """Validate `[[meter]]` options; every error names the meter and the key."""
        unknown = set(options) - OPTION_KEYS
        if unknown:
            raise ProfileError(f"meter {meter_id}: unknown iec62056 option(s) {sorted(unknown)}")
        values: dict[str, Any] = dict(options)
        if "obis" in values:
            values["obis"] = tuple(values["obis"])
        if values.get("password") == "":
            values["password"] = None
        parsed = cls(**values)
        problems = []
        if parsed.mode not in ("A", "B", "C"):
            problems.append(f"mode {parsed.mode!r} is not A, B or C")
        if parsed.max_baud not in MODE_C_BAUD.values():
            rates = sorted(MODE_C_BAUD.values())
            problems.append(f"max_baud {parsed.max_baud!r} is not one of {rates}")
        if parsed.read_command not in ("R1", "R5"):
            problems.append(f"read_command {parsed.read_command!r} is not R1 or R5")
        limit = parsed.clock_drift_limit_s
        if limit is not None and (not isinstance(limit, int) or limit <= 0):
            problems.append("clock_drift_limit_s must be a positive integer (seconds)")
        if not all(isinstance(r, str) and r for r in parsed.obis):
            problems.append("obis must be a list of OBIS addresses")
        if problems:
            raise ProfileError(f"meter {meter_id}: " + "; ".join(problems))
        return parsed


@dataclass
class ReadResult:
    """Everything one read produced; `samples` is what read_meter returns."""

    meter_id: str
    samples: list[Sample]
    identification: Identification | None
    baud: int
    readout: Readout | None = None
    meter_time: datetime | None = None
    clock_drift_s: int | None = None  # meter minus gateway, whole seconds
    drift_exceeded: bool = False
    max_demand_time: str | None = None
    register_errors: dict[str, str] = field(default_factory=dict)


class Iec62056Bus:
    """Meters on one serial line (optical probe or RS-485), read one after the other."""

    def __init__(
        self, open_port: Callable[[int], Any], *, echo: bool = False, name: str = "iec62056",
        clock: Callable[[], float] = time.time, on_clock_drift: ClockDriftCallback | None = None,
    ) -> None:
        self._open_port = open_port
        self.echo = echo
        self.name = name
        self._clock = clock
        self._on_clock_drift = on_clock_drift
        self._line: ByteStream | None = None
        self._lock = asyncio.Lock()
        self._counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._drift: dict[str, int | None] = {}

    def counters(self, meter_id: str) -> dict[str, int]:
        """reads_ok, timeouts, checksum_errors, frame_errors, rejected, port_errors,
        baud_fallbacks, dataset_errors (only the non-zero ones)."""
        return dict(self._counters[meter_id])

    def last_meter_clock_drift_s(self, meter_id: str) -> int | None:
        return self._drift.get(meter_id)

    async def read_meter(
        self, meter_id: str, address: str, options: MeterOptions | Mapping[str, Any],
        timeout_s: float,
    ) -> list[Sample]:
        return (await self.read(meter_id, address, options, timeout_s)).samples

    async def read(
        self, meter_id: str, address: str, options: MeterOptions | Mapping[str, Any],
        timeout_s: float,
    ) -> ReadResult:
        """One complete read of one meter, bounded by `timeout_s`, holding the line throughout.

        The gateway passes MeterOptions built from its validated config; a mapping (the CLI's)
        is validated here."""
        opts = options if isinstance(options, MeterOptions) else \
            MeterOptions.from_mapping(options, meter_id)
        async with self._lock:
            try:
                async with asyncio.timeout(timeout_s):
                    result = await self._read_with_fallback(meter_id, address, opts)
            except TimeoutError:
                self._count_failure(meter_id, DeviceTimeout("overall timeout"))
                self._drop_line()
                raise DeviceTimeout(f"meter {meter_id}: read exceeded {timeout_s} s") from None
            except DriverError as exc:
                self._count_failure(meter_id, exc)
                raise
        self._check_clock(result, opts)
        self._counters[meter_id]["reads_ok"] += 1
        return result

    def _count_failure(self, meter_id: str, exc: DriverError) -> None:
        kind = next((name for cls, name in _FAILURE_COUNTERS if isinstance(exc, cls)), "errors")
        self._counters[meter_id][kind] += 1
        if isinstance(exc, PortUnavailable):
            self._drop_line()  # reopen on the next read: the adapter may come back
        LOGGER.warning("iec_read_failed", extra={"meter": meter_id, "error": str(exc)})

    def _line_for(self) -> ByteStream:
        if self._line is None:
            try:
                port = self._open_port(INITIAL_BAUD)
            except OSError as exc:
                raise PortUnavailable(f"{self.name}: cannot open port: {exc}") from exc
            self._line = open_line(port, self.name)
        return self._line

    def _drop_line(self) -> None:
        if self._line is not None:
            self._line.close()
            self._line = None

    async def _read_with_fallback(
        self, meter_id: str, address: str, opts: MeterOptions
    ) -> ReadResult:
        max_baud = opts.max_baud
        for attempt in range(BAUD_FALLBACK_ATTEMPTS + 1):
            session = Session(self._line_for(), meter_id, self.echo)
            try:
                return await self._one_session(session, meter_id, address, opts, max_baud)
            except (DeviceTimeout, FrameError) as exc:
                line = self._line
                switched = line is not None and line.baud != INITIAL_BAUD
                if attempt == BAUD_FALLBACK_ATTEMPTS or not switched:
                    raise
                LOGGER.info("iec_baud_fallback", extra={"meter": meter_id, "error": str(exc)})
                self._counters[meter_id]["baud_fallbacks"] += 1
                max_baud = INITIAL_BAUD
        raise AssertionError("unreachable")

    async def _one_session(
        self, session: Session, meter_id: str, address: str, opts: MeterOptions, max_baud: int
    ) -> ReadResult:
        if opts.obis:
            ident, reads = await session.read_registers(
                address, max_baud, opts.password, list(opts.obis), opts.read_command
            )
            mapped = map_datasets(list(reads.values.values()))
            self._count_refused(meter_id, mapped)
            return ReadResult(meter_id, mapped.samples, ident, session.line.baud,
                              meter_time=mapped.meter_time, register_errors=reads.errors,
                              max_demand_time=mapped.max_demand_time)
        raw, baud = await session.readout(address, opts.mode, max_baud)
        readout = decode_message(raw)
        readout.raise_if_damaged(f"meter {meter_id}")
        mapped = map_datasets(readout.datasets)
        self._count_refused(meter_id, mapped)
        return ReadResult(meter_id, mapped.samples, readout.identification, baud, readout,
                          meter_time=mapped.meter_time, max_demand_time=mapped.max_demand_time)

    def _count_refused(self, meter_id: str, mapped: MappedReadout) -> None:
        """Data sets refused by the mapping (out of range, no unit): counted, logged, and the
        rest of the readout is still returned."""
        for error in mapped.errors:
            self._counters[meter_id]["dataset_errors"] += 1
            LOGGER.warning("iec_dataset_refused", extra={"meter": meter_id, "error": str(error)})

    def _check_clock(self, result: ReadResult, opts: MeterOptions) -> None:
        if result.meter_time is None:
            self._drift[result.meter_id] = None
            return
        now = datetime.fromtimestamp(self._clock(), UTC)
        if opts.utc_offset_min is None:
            gateway_time = now.astimezone().replace(tzinfo=None)
        else:
            gateway_time = (now + timedelta(minutes=opts.utc_offset_min)).replace(tzinfo=None)
        drift = round((result.meter_time - gateway_time).total_seconds())
        result.clock_drift_s = drift
        self._drift[result.meter_id] = drift
        if opts.clock_drift_limit_s is not None and abs(drift) > opts.clock_drift_limit_s:
            result.drift_exceeded = True
            LOGGER.warning("meter_clock_drift", extra={"meter": result.meter_id, "drift_s": drift,
                                                       "limit_s": opts.clock_drift_limit_s})
            if self._on_clock_drift is not None:
                self._on_clock_drift(result.meter_id, drift)

    async def close(self) -> None:
        async with self._lock:
            self._drop_line()

