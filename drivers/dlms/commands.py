"""The dlms plugin's uplink commands: `dlms.disconnect`, `dlms.reconnect` (the meter's own
breaker, class 70) and `dlms.breaker` (its state read back), each `{"meter": ID}`.

A command runs on the meter's bus between polls (the bus lock keeps one exchange on a line at
a time) and answers with what the meter reports after it; a meter the gateway cannot reach or
that refuses is a `Refused` with the reason, never an exception out of the handler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from core.errors import Refused
from drivers.errors import DeviceRejected, DriverError
from drivers.plugin import CommandHandler

Factory = Callable[[Callable[[], Sequence[Any]]], CommandHandler]


def breaker_command(connect: bool | None) -> Factory:
    """connect True: reconnect; False: disconnect; None: read the state only."""
    def factory(sources: Callable[[], Sequence[Any]]) -> CommandHandler:
        async def command(args: dict[str, Any], ctx: Any) -> dict[str, Any]:
            from drivers.dlms.disconnect import read_state, switch

            meter_id = args.get("meter")
            if not isinstance(meter_id, str):
                raise Refused("bad_args", "`meter` must be a meter id (text)")
            bus = next((s for s in sources() if meter_id in getattr(s, "known_meters", {})),
                       None)
            if bus is None:
                raise Refused("unknown_meter", f"{meter_id!r} is no DLMS meter read here yet")
            settings = bus.settings(bus.known_meters[meter_id])
            obis = settings.profile.disconnector
            if not obis:
                raise Refused("no_disconnector", f"profile {settings.profile.name} names none")
            try:
                state = await bus.driver.run(settings, (lambda a: read_state(a, obis))
                                             if connect is None else
                                             (lambda a: switch(a, connect, obis)))
            except DeviceRejected as error:
                raise Refused("meter_refused", str(error)) from None
            except DriverError as error:
                raise Refused("meter_unreachable", str(error)) from None
            bus.driver.breaker_seen[meter_id] = state.output_state  # prepay's feedback too
            return {"meter": meter_id, **state.to_json()}
        return command
    return factory


def key_command(remove: bool) -> Factory:
    """`dlms.key.set {key_id, kind, value}` / `dlms.key.remove {key_id}` on every opened bus's
    key file (a bus reads its secrets at each read: a new key applies at the next one). The
    result never carries the secret."""
    def factory(sources: Callable[[], Sequence[Any]]) -> CommandHandler:
        async def command(args: dict[str, Any], ctx: Any) -> dict[str, Any]:
            from drivers.dlms.keys import DlmsKeyFileError

            key_id = args.get("key_id")
            if not isinstance(key_id, str):
                raise Refused("bad_args", "`key_id` must be text (a meter id by default)")
            files = {s.keys.path: s.keys for s in sources() if hasattr(s, "keys")}
            if not files:
                raise Refused("no_dlms_bus", "no DLMS bus is open on this gateway")
            try:
                if remove:
                    removed = [f.remove(key_id) for f in files.values()]
                    return {"key_id": key_id, "removed": any(removed)}
                kind, value = args.get("kind"), args.get("value")
                if not isinstance(kind, str) or not isinstance(value, str):
                    raise Refused("bad_args", "`kind` and `value` must be text")
                for keys in files.values():
                    keys.add(key_id, kind, value)
            except DlmsKeyFileError as error:
                raise Refused("bad_key", str(error)) from None
            return {"key_id": key_id, "kind": kind, "key_set": True}
        return command
    return factory
