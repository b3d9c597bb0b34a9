"""What every `gateway-headend` command may raise for bad input, and the exit codes."""

from typing import Final

from uplink.errors import UplinkError

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2  # bad option or input: nothing was done
EXIT_TIMEOUT: Final = 3  # `cmd`: no result in time (the command may still run)


class UsageError(UplinkError):
    """Bad command-line input (exit 2); the message names the option or value."""
