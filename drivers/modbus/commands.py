"""The modbus plugin's uplink command `modbus.write {meter, register, value}`: one holding
register the meter's profile declares writable, set to an exact decimal, read back.

The write runs on the meter's bus between the polls (the bus lock), after the value is checked
against the profile's range and type; the register is read before (the old value) and after
(the read-back: the meter must hold exactly the words written). Every attempt that names a
meter read here is audited as an event (`register_written` or `register_write_failed`) with the
meter, the register, the old and new values and the command id; a refusal is a `Refused` with
the reason, never an exception out of the handler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final

from core.errors import Refused
from core.numbers import OutOfRange, exact_decimal
from drivers.errors import DeviceRejected, DriverError
from drivers.modbus.plan import ReadRequest
from drivers.modbus.writable import HOLDING, Writable, find_writable
from drivers.plugin import CommandHandler, MeterView

OP: Final[str] = "modbus.write"
WRITTEN: Final[str] = "register_written"
FAILED: Final[str] = "register_write_failed"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class _Write:
    """One command's write: its bus, meter and register, and the audit of the outcome."""

    def __init__(self, bus: Any, meter: MeterView, command_id: str) -> None:
        self.bus, self.meter, self.command_id = bus, meter, command_id
        self.audit: dict[str, Any] = {"meter": meter.id, "command_id": command_id}

    def refuse(self, reason: str, detail: str) -> Refused:
        self.bus.events(FAILED, self.meter.id, {**self.audit, "reason": reason,
                                                "detail": detail}, "warning")
        return Refused(reason, detail)

    async def words(self, register: Writable) -> list[int]:
        span = register.span
        return await self.bus.driver.read_registers(
            int(self.meter.address), ReadRequest(HOLDING, span.address, span.words),
            self.meter.timeout_ms / 1000)

    async def run(self, register: Writable, value: Decimal) -> dict[str, Any]:
        self.audit.update(register=register.name, address=register.span.address,
                          new=str(value), old=None)
        try:
            req = register.request(value)
        except ValueError as exc:
            raise self.refuse("out_of_range", f"{register.name}: {exc}") from None
        try:
            if register.readback:
                self.audit["old"] = _text(register.value_of(await self.words(register)))
            await self.bus.driver.write_registers(self.meter.id, int(self.meter.address), req,
                                                  timeout_s=self.meter.timeout_ms / 1000)
            held = await self.words(register) if register.readback else None
        except DeviceRejected as exc:
            raise self.refuse("meter_refused", str(exc)) from None
        except DriverError as exc:
            raise self.refuse("meter_not_answering", str(exc)) from None
        if held is not None and tuple(held) != req.words:
            self.audit["read_back"] = _text(register.value_of(held))
            raise self.refuse("readback_mismatch", f"{register.name}: wrote {value}, the meter "
                              f"holds {self.audit['read_back']}")
        result = {**self.audit, "read_back": str(value) if register.readback else None}
        self.bus.events(WRITTEN, self.meter.id, result, "info")
        return result


def _args(args: dict[str, Any]) -> tuple[str, str, Decimal]:
    meter_id, register, value = args.get("meter"), args.get("register"), args.get("value")
    if not isinstance(meter_id, str):
        raise Refused("bad_args", "`meter` must be a meter id (text)")
    if isinstance(register, bool) or not isinstance(register, str | int):
        raise Refused("bad_args", "`register` must be a register name or address")
    if not isinstance(value, str):
        raise Refused("bad_args", "`value` must be an exact decimal as text, e.g. \"15\"")
    try:
        number = exact_decimal(value)
    except (OutOfRange, ValueError, ArithmeticError):
        raise Refused("bad_args", f"`value` {value!r} is not a decimal number") from None
    return meter_id, str(register), number


def write_command(sources: Callable[[], Sequence[Any]]) -> CommandHandler:
    """The handler over the opened modbus buses (each knows the meters it has read)."""
    async def command(args: dict[str, Any], ctx: Any) -> dict[str, Any]:
        from drivers.modbus.profiles import get_profile

        meter_id, name, value = _args(args)
        bus = next((s for s in sources() if meter_id in getattr(s, "known_meters", {})), None)
        if bus is None:
            raise Refused("unknown_meter", f"{meter_id!r} is no Modbus meter read here yet")
        meter = bus.known_meters[meter_id]
        write = _Write(bus, meter, str(getattr(ctx, "command_id", "")))
        register = find_writable(get_profile(meter.profile).writable, name)
        if register is None:
            write.audit["register"] = name
            raise write.refuse("not_writable", f"profile {meter.profile!r} declares no "
                               f"writable register {name!r}")
        return await write.run(register, value)
    return command
