"""Serial ports: stable names from /dev/serial/by-id and RS-485 settings (kernel or RTS-driven).

RS-485 is half duplex: the transceiver's driver-enable must be on exactly while the gateway
transmits. Where the UART driver supports it (most USB adapters with auto-direction need nothing,
the Pi's PL011 and many SC16IS7xx HATs support TIOCSRS485), the kernel toggles RTS itself ("kernel"
mode, exact timing). Otherwise pyserial toggles RTS around each write ("rts" mode, good to a few
milliseconds, enough at 9600 baud and below for Modbus RTU's 3.5-character gap).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import serial
import serial.rs485

from board.interface import BoardError, SerialSpec, hand_over_fd

LOGGER = logging.getLogger(__name__)

BY_ID_DIR = Path("/dev/serial/by-id")
# The keys of a bus's [bus.rs485] config table (gateway/config/loader.py), plus "mode".
RS485_KEYS = {"enabled", "mode", "rts_level_for_tx", "rts_level_for_rx", "delay_before_tx_ms",
              "delay_before_rx_ms", "direction_gpio"}
RS485_MODES = ("kernel", "rts")
PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}
BYTESIZES = {5: serial.FIVEBITS, 6: serial.SIXBITS, 7: serial.SEVENBITS, 8: serial.EIGHTBITS}
STOPBITS = {1: serial.STOPBITS_ONE, 2: serial.STOPBITS_TWO}
MAX_RS485_DELAY_MS = 100  # a transceiver turnaround longer than this is a typo


def resolve_serial_port(port: str, *, by_id_dir: Path = BY_ID_DIR) -> str:
    """A /dev path (links resolved), or a by-id name (full or a unique part of it)."""
    if not port:
        raise BoardError("serial port name is empty")
    if "/" in port:
        path = Path(port)
        if not path.exists():
            raise BoardError(f"serial port {port}: no such device")
        return os.path.realpath(path)
    names = sorted(p.name for p in by_id_dir.iterdir()) if by_id_dir.is_dir() else []
    if port in names:
        return os.path.realpath(by_id_dir / port)
    matches = [name for name in names if port in name]
    if len(matches) == 1:
        return os.path.realpath(by_id_dir / matches[0])
    if not matches:
        present = names or "none"
        raise BoardError(f"serial port {port!r}: not found in {by_id_dir} (present: {present})")
    raise BoardError(f"serial port {port!r}: ambiguous in {by_id_dir}, matches {matches}")


def check_serial_spec(spec: SerialSpec) -> None:
    """Reject impossible line settings with the port and the key named."""
    if spec.parity not in PARITIES:
        raise BoardError(f"serial port {spec.port}: parity {spec.parity!r} not N, E or O")
    if spec.bytesize not in BYTESIZES:
        raise BoardError(f"serial port {spec.port}: bytesize {spec.bytesize} not in 5..8")
    if spec.stopbits not in STOPBITS:
        raise BoardError(f"serial port {spec.port}: stopbits {spec.stopbits} not 1 or 2")
    if not isinstance(spec.baudrate, int) or spec.baudrate <= 0:
        raise BoardError(f"serial port {spec.port}: baudrate {spec.baudrate!r} must be positive")
    unknown = set(spec.rs485) - RS485_KEYS
    if unknown:
        raise BoardError(f"serial port {spec.port}: unknown rs485 keys {sorted(unknown)}")
    mode = spec.rs485.get("mode", "kernel")
    if mode not in RS485_MODES:
        raise BoardError(f"serial port {spec.port}: rs485.mode {mode!r} not in {RS485_MODES}")
    for key in ("delay_before_tx_ms", "delay_before_rx_ms"):
        delay = spec.rs485.get(key, 0)
        if not isinstance(delay, int) or not 0 <= delay <= MAX_RS485_DELAY_MS:
            raise BoardError(f"serial port {spec.port}: rs485.{key} {delay!r} outside 0..100 ms")
    if spec.rs485.get("direction_gpio"):
        # A DE pin on a GPIO line would need per-byte timing from user space: not offered.
        raise BoardError(f"serial port {spec.port}: rs485.direction_gpio is not supported; wire "
                         "DE to RTS and use rs485.mode = \"rts\" or \"kernel\"")


def open_serial(spec: SerialSpec, timeout_s: float | None = None) -> serial.Serial:
    """Open `spec.port` (already resolved) with its line settings and RS-485 mode."""
    check_serial_spec(spec)
    rs485 = spec.rs485 if spec.rs485.get("enabled") else {}
    mode = rs485.get("mode", "kernel") if rs485 else None
    port: serial.Serial = serial.rs485.RS485() if mode == "rts" else serial.Serial()
    port.port = spec.port
    port.baudrate = spec.baudrate
    port.bytesize = BYTESIZES[spec.bytesize]
    port.parity = PARITIES[spec.parity]
    port.stopbits = STOPBITS[spec.stopbits]
    port.timeout = timeout_s
    port.exclusive = True  # a second gateway or a stray minicom must not share the bus
    try:
        port.open()
    except (serial.SerialException, OSError) as exc:
        raise BoardError(f"serial port {spec.port}: cannot open: {exc}") from exc
    if rs485:
        _apply_rs485(port, spec.port, rs485)
    LOGGER.info("serial_opened",
                extra={"port": spec.port, "baudrate": spec.baudrate, "rs485": mode})
    return port


def open_serial_fd(spec: SerialSpec, *, by_id_dir: Path = BY_ID_DIR) -> int:
    """Resolve `spec.port` (by-id names too), open it with its line settings and RS-485 mode,
    and hand over the raw descriptor (the caller owns it; the transport kit closes it)."""
    resolved = SerialSpec(resolve_serial_port(spec.port, by_id_dir=by_id_dir), spec.baudrate,
                          spec.bytesize, spec.parity, spec.stopbits, spec.rs485)
    return hand_over_fd(open_serial(resolved, 0), spec.port)


def _apply_rs485(port: serial.Serial, name: str, rs485: dict[str, Any]) -> None:
    settings = serial.rs485.RS485Settings(
        rts_level_for_tx=bool(rs485.get("rts_level_for_tx", True)),
        rts_level_for_rx=bool(rs485.get("rts_level_for_rx", False)),
        delay_before_tx=rs485.get("delay_before_tx_ms", 0) / 1000,
        delay_before_rx=rs485.get("delay_before_rx_ms", 0) / 1000,
    )
    try:
        # serial.Serial sends TIOCSRS485 to the driver; serial.rs485.RS485 toggles RTS itself.
        port.rs485_mode = settings
    except (ValueError, OSError, serial.SerialException) as exc:
        port.close()
        raise BoardError(
            f"serial port {name}: the UART driver refuses kernel RS-485 mode ({exc}); "
            "set rs485.mode = \"rts\" or use an adapter with automatic direction control"
        ) from exc
