"""A TRACE level below DEBUG for raw wire bytes, one switchable logger per protocol.

"What did the meter send?" must be answerable in the field without a debug build: every
driver's stream logs what crosses the wire to `drivers.<protocol>.wire` at TRACE. The level is
off by default (the logger sits at INFO, so a DEBUG service log stays readable) and is switched
per protocol from the config (`[log] trace = [...]`) or the console (`log trace modbus on`).
The model is zigpy-znp's `logger.py` (a TRACE level) and `uart.py` (frames logged as they pass).
"""

from __future__ import annotations

import logging
from typing import Final

TRACE: Final[int] = 5  # below DEBUG (10): bytes are far more than a DEBUG reader wants
TRACE_NAME: Final[str] = "TRACE"
WIRE_PREFIX: Final[str] = "drivers"
WIRE_SUFFIX: Final[str] = "wire"
# A switched-off wire logger sits here; INFO, not WARNING, so it never hides its own errors.
WIRE_OFF_LEVEL: Final[int] = logging.INFO
MAX_TRACE_BYTES: Final[int] = 4096  # a runaway line must not make one log record megabytes

logging.addLevelName(TRACE, TRACE_NAME)


def wire_logger_name(protocol: str) -> str:
    return f"{WIRE_PREFIX}.{protocol}.{WIRE_SUFFIX}"


def is_wire_logger(name: str) -> bool:
    """A record from one of the wire loggers (log handlers let these through at TRACE)."""
    return name.startswith(WIRE_PREFIX + ".") and name.endswith("." + WIRE_SUFFIX)


def wire_logger(protocol: str) -> logging.Logger:
    """The wire logger of one protocol (`drivers.modbus.wire`), off unless switched on."""
    logger = logging.getLogger(wire_logger_name(protocol))
    if logger.level == logging.NOTSET:
        # NOTSET would inherit the root's level: a root at DEBUG must not turn bytes on
        logger.setLevel(WIRE_OFF_LEVEL)
    return logger


def set_trace(protocol: str, on: bool) -> None:
    """Switch one protocol's wire bytes on or off (config at start, console at run time)."""
    wire_logger(protocol).setLevel(TRACE if on else WIRE_OFF_LEVEL)


def trace_enabled(protocol: str) -> bool:
    return wire_logger(protocol).isEnabledFor(TRACE)


def log_bytes(logger: logging.Logger, direction: str, meter: str | None, data: bytes) -> None:
    """One TRACE line: direction ("tx"/"rx"), meter (or the bus), bytes as hex.

    Cheap when off: one level check, no hex conversion (called for every chunk read)."""
    if not logger.isEnabledFor(TRACE):
        return
    shown = data[:MAX_TRACE_BYTES]
    logger.log(TRACE, "wire_bytes", extra={
        "direction": direction, "meter": meter, "bytes": len(data), "hex": shown.hex(),
        "truncated": len(data) > len(shown)})


def trace_list_problem(value: list[object], known: list[str]) -> str | None:
    """A config check for `[log] trace`: protocol names only, each one known."""
    unknown = [name for name in value if not isinstance(name, str) or name not in known]
    if unknown:
        return f"unknown protocol {unknown[0]!r} (known: {', '.join(sorted(known))})"
    return None
