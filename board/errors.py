"""The board package's base exception, apart so the modules `board.interface` names in its
capability signatures (disk, modem, persist) can raise it without importing the interface."""

from __future__ import annotations

from core.errors import MeterGatewayError


class BoardError(MeterGatewayError):
    """A hardware operation failed; the message names the output, input or device."""
