"""Disconnect control (COSEM class 70): remote disconnect / reconnect and the state read back.

`switch(association, obis, connect)` runs remote_reconnect (method 2) or remote_disconnect
(method 1) and reads output_state (attribute 2) and control_state (attribute 3) back, so the
caller learns what the breaker did, not what was asked: a meter in a control mode that needs
a local button press after a remote reconnect reports `ready_for_reconnection`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.dlms.axdr import Tag
from drivers.dlms.client import Association
from drivers.dlms.cosem import (
    DISCONNECT_CONTROL,
    REMOTE_DISCONNECT_METHOD,
    REMOTE_RECONNECT_METHOD,
    disconnect_state,
    obis_bytes,
)
from drivers.errors import FrameError

DISCONNECTOR: Final = "0-0:96.3.10.255"
OUTPUT_STATE: Final = 2
CONTROL_STATE: Final = 3


@dataclass(frozen=True, slots=True)
class BreakerState:
    output_state: bool  # True: supply connected
    control_state: str  # disconnected | connected | ready_for_reconnection

    def to_json(self) -> dict[str, object]:
        return {"output_state": self.output_state, "control_state": self.control_state}


async def read_state(association: Association, obis: str = DISCONNECTOR) -> BreakerState:
    raw = obis_bytes(obis)
    output = await association.get(DISCONNECT_CONTROL, raw, OUTPUT_STATE)
    if output.tag is not Tag.BOOLEAN or not isinstance(output.value, bool):
        raise FrameError(f"output_state of {obis} is a {output.tag.name}, not a boolean", 0)
    control = disconnect_state(await association.get(DISCONNECT_CONTROL, raw, CONTROL_STATE))
    return BreakerState(output.value, control)


async def switch(association: Association, connect: bool,
                 obis: str = DISCONNECTOR) -> BreakerState:
    """Disconnect or reconnect, then the state the meter reports."""
    method = REMOTE_RECONNECT_METHOD if connect else REMOTE_DISCONNECT_METHOD
    await association.action(DISCONNECT_CONTROL, obis_bytes(obis), method)
    return await read_state(association, obis)
