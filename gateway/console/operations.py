"""One declaration per console operation: its role, timeout and help, beside its signature.

`ControlApi` (gateway.console.api) marks each method with `@operation(...)`; `declared()` turns
the marked methods into `Operation`s, whose parameter and result types come from the method's
annotations. The control socket's role check, the client proxy `RemoteApi`, the shell's
command roles and the in-memory test fake all read these, so a role is written exactly once.
"""

from __future__ import annotations

import enum
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

CALL_TIMEOUT_S = 60.0  # a meter read with retries on a slow bus stays well under this
_MARK = "__console_operation__"


class Role(enum.IntEnum):
    """Console roles; a higher role may do everything a lower one may."""

    VIEWER = 1
    TECHNICIAN = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(r.name.lower() for r in cls)
            raise ValueError(f"unknown role {text!r}: use one of {names}") from None


@dataclass(frozen=True, slots=True)
class _Mark:
    role: Role
    help: str
    timeout_s: float
    plus_seconds_of: str | None
    caller: str | None
    caller_role: str | None


@dataclass(frozen=True, slots=True)
class Operation:
    """An operation of the running service, as declared on `ControlApi`."""

    name: str
    role: Role
    help: str
    params: Mapping[str, Any]  # parameter name -> annotated type, in declaration order
    result: Any  # the annotated return type
    timeout_s: float
    plus_seconds_of: str | None  # a parameter in seconds the call takes on top (a scan)
    caller: str | None  # a parameter the server fills with the logged-in name (audit)
    # a parameter the server fills with the logged-in role (a check that depends on the
    # call's arguments: a protocol's own console command declares its own role)
    caller_role: str | None = None

    def timeout(self, params: Mapping[str, Any]) -> float:
        """How long a client waits for the answer to a call with these params."""
        extra = params.get(self.plus_seconds_of) if self.plus_seconds_of else None
        return self.timeout_s + (extra if isinstance(extra, int | float) else 0)

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Positional and keyword arguments of a call as {param: value}; TypeError if wrong."""
        names = list(self.params)
        if len(args) > len(names):
            raise TypeError(f"{self.name} takes {len(names)} arguments")
        bound = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in self.params or key in bound:
                raise TypeError(f"{self.name}: unexpected or repeated argument {key!r}")
            bound[key] = value
        if set(bound) != set(names):
            raise TypeError(f"{self.name} takes {names}")
        return bound


def operation(role: Role, help: str, *, timeout_s: float = CALL_TIMEOUT_S,
              plus_seconds_of: str | None = None, caller: str | None = None,
              caller_role: str | None = None) -> Callable[[F], F]:
    """Declare a `ControlApi` method as an operation (the method itself is left as it is)."""

    def mark(func: F) -> F:
        setattr(func, _MARK, _Mark(role, help, timeout_s, plus_seconds_of, caller,
                                       caller_role))
        return func

    return mark


def declared(protocol: type) -> dict[str, Operation]:
    """Every method of `protocol` marked with `@operation`, in declaration order."""
    found: dict[str, Operation] = {}
    for name, func in vars(protocol).items():
        mark = getattr(func, _MARK, None)
        if not isinstance(mark, _Mark):
            continue
        hints = typing.get_type_hints(func)
        result = hints.pop("return")
        order = list(inspect.signature(func).parameters)[1:]  # without self
        params = {p: hints[p] for p in order}
        for special in (mark.plus_seconds_of, mark.caller, mark.caller_role):
            if special is not None and special not in params:
                raise TypeError(f"{name}: no parameter {special!r}")
        found[name] = Operation(name, mark.role, mark.help, params, result, mark.timeout_s,
                                mark.plus_seconds_of, mark.caller, mark.caller_role)
    return found
