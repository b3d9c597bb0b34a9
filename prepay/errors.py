"""The prepay package's exception tree (the base lives in the portable core)."""

from prepay.core import PrepayError


class TariffError(PrepayError):
    """A tariff definition or assignment is invalid; the message names the tariff and key."""


class VoucherRefused(PrepayError):
    """A voucher was refused; `reason` is a stable snake_case code, the message the detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class CommandRefusedError(PrepayError):
    """A prepay command's arguments are invalid; the uplink wiring maps it to CommandRefused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


__all__ = [
    "CommandRefusedError",
    "PrepayError",
    "TariffError",
    "VoucherRefused",
]
