"""The serial opener the service hands a Modbus bus: board/ opens the port, the kit reads it."""

from collections.abc import Callable

from board.interface import SerialSpec
from board.serial_ports import open_serial_fd


def board_opener(path: str, baudrate: int = 9600) -> Callable[[], int]:
    return lambda: open_serial_fd(SerialSpec(path, baudrate))
