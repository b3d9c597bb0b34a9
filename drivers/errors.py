"""The drivers' exception tree: every protocol error a meter or dongle can cause."""

from core.errors import MeterGatewayError


class DriverError(MeterGatewayError):
    """Base of every error raised by a driver; always names the meter or port where known."""


class FrameError(DriverError):
    """Bytes that are not a valid frame of the protocol (bad length, bad structure)."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at byte offset {offset})")


class ChecksumError(FrameError):
    """A frame whose CRC / BCC / checksum does not verify."""


class DeviceTimeout(DriverError):
    """The device did not answer within its timeout."""


class DeviceRejected(DriverError):
    """The device answered with an exception or refusal (Modbus exception, NAK, wrong password)."""


class PortUnavailable(DriverError):
    """The serial port or socket cannot be opened (adapter unplugged, permission, host down)."""


class ProfileError(DriverError):
    """A meter profile / register map / code table is malformed."""
