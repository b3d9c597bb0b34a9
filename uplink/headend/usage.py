"""What every `gateway-headend` command may raise for bad input, the exit codes, and the
`GW=PUBKEY.pem` option format the commands share."""

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from uplink.errors import UplinkError
from uplink.keys import load_public_key

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2  # bad option or input: nothing was done
EXIT_TIMEOUT: Final = 3  # `cmd`: no result in time (the command may still run)


class HeadendUsageError(UplinkError):
    """Bad command-line input (exit 2); the message names the option or value."""


def parse_enrolment(items: Sequence[str], option: str = "--enrol"
                    ) -> dict[str, Ed25519PublicKey]:
    """`GW=PUBKEY.pem` items to {gateway id: public key}; UplinkError naming the bad item."""
    enrolled: dict[str, Ed25519PublicKey] = {}
    for item in items:
        gw, sep, path = item.partition("=")
        if not sep or not gw or not path:
            raise HeadendUsageError(f"{option} {item!r}: expected GW=PUBKEY.pem")
        enrolled[gw] = load_public_key(Path(path))
    return enrolled
