"""The DLMS package's errors, all inside the drivers' tree (docs/architecture.md, "Exceptions").

"Need more" and "invalid" are two outcomes (zigpy-znp `BufferTooShort` vs `InvalidFrame`):
`NeedMore` says the bytes so far are the valid start of something and the caller should read
on; a `FrameError` says they never will be.
"""

from __future__ import annotations

from drivers.errors import DeviceRejected, DriverError, FrameError


class NeedMore(DriverError):
    """The bytes so far are an incomplete but so far valid frame or APDU: read more."""

    def __init__(self, what: str, needed: int | None = None) -> None:
        self.needed = needed
        hint = "" if needed is None else f" ({needed} more bytes at least)"
        super().__init__(f"incomplete {what}{hint}")


class CipherError(FrameError):
    """A protected APDU that cannot be opened: unknown key, bad tag, unsupported suite."""


class ReplayRefused(CipherError):
    """A ciphered APDU whose invocation counter is not above the last one accepted."""


class ServiceError(DeviceRejected):
    """The meter answered with an exception-response, a confirmed-service-error or a
    data-access-result other than success; `reason` is the standard's enumeration name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(reason if not detail else f"{reason}: {detail}")
