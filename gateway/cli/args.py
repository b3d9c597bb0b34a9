"""argparse types for the `gateway` sub-commands: a bad value is a usage line and exit 2.

The generic ones live in core/cliargs.py (the protocol packages' sub-commands use them too);
`broker_url` is the gateway's own.
"""

from __future__ import annotations

import argparse

from core.cliargs import non_negative_int, non_negative_seconds, positive_int, positive_seconds

__all__ = ["broker_url", "non_negative_int", "non_negative_seconds", "positive_int",
           "positive_seconds"]


def broker_url(text: str) -> str:
    """An MQTT broker URL the uplink can connect to (mqtt:// or mqtts://)."""
    from uplink.errors import UplinkError
    from uplink.settings import broker_address

    try:
        broker_address(text)
    except UplinkError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
