"""The one exception root of the gateway, and the one refusal that goes into a result record.

Every package has its base exception directly under `MeterGatewayError` (`DriverError`,
`StorageError`, `UplinkError`, `BoardError`, `ConfigError`, `ControlError`, ...), so a caller
that must survive anything the gateway itself raises catches one class, and anything else that
escapes is a bug to be logged as one. Library exceptions are mapped to ours at the boundary.

`Refused` is a decision, not a failure: a command, voucher, top-up or console request that was
understood and turned down. Its `reason` is a stable snake_case code that goes upstream or into
the audit (`bad_amount`, `wrong_currency`, `unknown_meter`); `detail` is for people.

`prepay.core.PrepayError` is under it too, through an optional import: the prepayment core also
runs under MicroPython, where it derives from `Exception` (docs/architecture.md, "Exceptions").
"""

from __future__ import annotations

import re
from typing import Final

# A reason is a short code a head-end can switch on: lower snake_case, bounded in length.
_REASON: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")


class MeterGatewayError(Exception):
    """Base of every exception the gateway raises; the message names the thing concerned."""


class Refused(MeterGatewayError):
    """A request was understood and refused; `reason` is a stable code, `detail` the prose.

    `str(exc)` is the reason alone, or `"reason: detail"`, which is what result records and
    the console show. A reason that is not a code (free text from older call sites) is kept as
    it is; `is_coded` says whether a head-end can switch on it.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    @property
    def is_coded(self) -> bool:
        """True when `reason` is a snake_case code rather than free text."""
        return _REASON.fullmatch(self.reason) is not None


__all__ = ["MeterGatewayError", "Refused"]
