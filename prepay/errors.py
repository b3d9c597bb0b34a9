"""The prepay package's exception tree (the base lives in the portable core)."""

from core.errors import MeterGatewayError, Refused
from prepay.core import PrepayError

# PrepayError itself lives in the MicroPython-portable core, which imports nothing, so it is not
# under the gateway's root; every class here is (a PrepayError *and* a MeterGatewayError).


class TariffError(PrepayError, MeterGatewayError):
    """A tariff definition or assignment is invalid; the message names the tariff and key."""


class VoucherRefused(PrepayError, Refused):
    """A voucher was refused; `reason` is a stable snake_case code, the message the detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)


class RelayIOError(PrepayError, MeterGatewayError):
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
