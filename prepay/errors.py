"""The prepay package's exception tree (the base lives in the portable core).

`PrepayError` is defined in the MicroPython-portable `prepay.core`, under the gateway's root
`core.errors.MeterGatewayError` when the gateway runs it; the refusals here are also `Refused`.
"""

from core.errors import Refused
from prepay.core import PrepayError


class TariffError(PrepayError):
    """A tariff definition or assignment is invalid; the message names the tariff and key."""


class VoucherRefused(PrepayError, Refused):
    """A voucher was refused; `reason` is a stable snake_case code, the message the detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)


class RelayIOError(PrepayError):
    """An output could not be driven or an input read (prepay.relays); names the output."""


class CommandRefusedError(PrepayError, Refused):
    """A prepay command's arguments are invalid; the uplink wiring maps it to CommandRefused."""


__all__ = [
    "CommandRefusedError",
    "PrepayError",
    "RelayIOError",
    "TariffError",
    "VoucherRefused",
]
