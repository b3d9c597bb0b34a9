"""Serial ports over real pseudo-terminals: by-id resolution, line settings, RS-485 modes."""

from __future__ import annotations

import os
import pty
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
import serial.rs485

from board.interface import BoardError, SerialSpec
from board.serial_ports import check_serial_spec, open_serial, resolve_serial_port


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    yield master, name
    os.close(master)
    os.close(slave)


@pytest.fixture
def by_id(tmp_path: Path, pty_pair: tuple[int, str]) -> Path:
    directory = tmp_path / "by-id"
    directory.mkdir()
    (directory / "usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0").symlink_to(pty_pair[1])
    (directory / "usb-Prolific_PL2303-if00-port0").symlink_to(pty_pair[1])
    return directory


def test_resolve_by_full_and_partial_name(by_id: Path, pty_pair: tuple[int, str]) -> None:
    real = os.path.realpath(pty_pair[1])
    full = "usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0"
    assert resolve_serial_port(full, by_id_dir=by_id) == real
    assert resolve_serial_port("A10K1234", by_id_dir=by_id) == real
    assert resolve_serial_port(str(by_id / "usb-Prolific_PL2303-if00-port0")) == real


def test_resolve_errors_name_the_port(by_id: Path, tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="ambiguous"):
        resolve_serial_port("usb-", by_id_dir=by_id)
    with pytest.raises(BoardError, match=r"CH340.*present"):
        resolve_serial_port("CH340", by_id_dir=by_id)
    with pytest.raises(BoardError, match="no such device"):
        resolve_serial_port("/dev/ttyNOPE9")
    with pytest.raises(BoardError, match="present: none"):
        resolve_serial_port("A10K", by_id_dir=tmp_path / "absent")


def test_open_applies_line_settings(pty_pair: tuple[int, str]) -> None:
    master, name = pty_pair
    port = open_serial(SerialSpec(name, baudrate=2400, bytesize=7, parity="E", stopbits=2), 0.5)
    try:
        assert (port.baudrate, port.bytesize, port.parity, port.stopbits) == (
            2400, serial.SEVENBITS, serial.PARITY_EVEN, serial.STOPBITS_TWO)
        port.write(b"/?!\r\n")
        assert os.read(master, 16) == b"/?!\r\n"
    finally:
        port.close()


def test_kernel_rs485_refused_by_driver_is_clear(pty_pair: tuple[int, str]) -> None:
    spec = SerialSpec(pty_pair[1], rs485={"enabled": True, "mode": "kernel"})
    with pytest.raises(BoardError, match=r"refuses kernel RS-485.*rs485.mode"):
        open_serial(spec)


def test_rts_mode_uses_software_direction(pty_pair: tuple[int, str]) -> None:
    spec = SerialSpec(pty_pair[1], rs485={"enabled": True, "mode": "rts", "delay_before_rx_ms": 2})
    port = open_serial(spec)
    try:
        assert isinstance(port, serial.rs485.RS485)
        assert port.rs485_mode is not None
        assert port.rs485_mode.delay_before_rx == 0.002
    finally:
        port.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (SerialSpec("/dev/x", parity="M"), "parity"),
        (SerialSpec("/dev/x", bytesize=9), "bytesize"),
        (SerialSpec("/dev/x", stopbits=3), "stopbits"),
        (SerialSpec("/dev/x", baudrate=0), "baudrate"),
        (SerialSpec("/dev/x", rs485={"enabled": True, "gpio": 4}), "unknown rs485 keys"),
        (SerialSpec("/dev/x", rs485={"enabled": True, "mode": "magic"}), "rs485.mode"),
        (SerialSpec("/dev/x", rs485={"delay_before_tx_ms": 500}), "delay_before_tx_ms"),
        (SerialSpec("/dev/x", rs485={"direction_gpio": "GPIO17"}), "direction_gpio"),
    ],
)
def test_bad_specs_name_port_and_key(spec: SerialSpec, message: str) -> None:
    with pytest.raises(BoardError, match=message):
        check_serial_spec(spec)


def test_busy_port_is_a_board_error(pty_pair: tuple[int, str]) -> None:
    first = open_serial(SerialSpec(pty_pair[1]))
    try:
        with pytest.raises(BoardError, match="cannot open"):
            open_serial(SerialSpec(pty_pair[1]))
    finally:
        first.close()
