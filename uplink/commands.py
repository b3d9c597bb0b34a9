"""Signed commands from the server: registry of operations and the acceptance checks."""

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cbor2 import CBORTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.errors import Refused
from uplink.codec import Command, decode_command
from uplink.cose import loads_strict, parse_sign1, verify_sign1
from uplink.errors import BadMessage, BadSignature, UplinkError

LOGGER = logging.getLogger(__name__)
# Commands are small; anything larger on down/cmd is refused before decoding.
MAX_COMMAND_BYTES: Final = 16 * 1024
# An unverified id is echoed in a refusal only when it looks like an id, not like a payload.
MAX_ECHOED_ID_CHARS: Final = 64
# Integers of a command are stored (exp as milliseconds, args by the handlers) in SQLite, whose
# INTEGER is signed 64-bit: anything outside is refused at screening, never an OverflowError
# that would leave the command without a result.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MAX_EXP_S: Final = INT64_MAX // 1000  # exp * 1000 (exp_ms of the replay table) still fits


class CommandRefused(UplinkError, Refused):
    """Raised by a handler (or the checks) to refuse a command; `reason` goes upstream, with
    `fields` beside it in the result (e.g. every problem of a refused config)."""

    def __init__(self, reason: str, detail: str = "", *,
                 fields: dict[str, Any] | None = None) -> None:
        super().__init__(reason, detail)
        self.fields = dict(fields or {})


@dataclass(frozen=True, slots=True)
class CommandContext:
    gateway_id: str
    command_id: str
    op: str
    now: float
    role: str | None = None


Handler = Callable[[dict[str, Any], CommandContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Registered:
    handler: Handler
    role: str | None


async def _ping(args: dict[str, Any], ctx: CommandContext) -> dict[str, Any]:
    return {"pong": True, "t": int(ctx.now)}


class CommandRegistry:
    """Operations the gateway accepts; `ping` is built in, `status` is added by the Uplink."""

    def __init__(self) -> None:
        self._ops: dict[str, Registered] = {}
        self.register("ping", _ping)

    def register(self, op: str, handler: Handler, *, role: str | None = None) -> None:
        self._ops[op] = Registered(handler, role)

    def __contains__(self, op: str) -> bool:
        return op in self._ops

    def ops(self) -> list[str]:
        return sorted(self._ops)

    async def run(self, cmd: Command, ctx: CommandContext) -> dict[str, Any]:
        """Run the handler of `cmd.op`; CommandRefused for an unknown op or a refusal."""
        entry = self._ops.get(cmd.op)
        if entry is None:
            raise CommandRefused("unknown_op")
        ctx = CommandContext(ctx.gateway_id, ctx.command_id, ctx.op, ctx.now, entry.role)
        return await entry.handler(cmd.args, ctx)


@dataclass(frozen=True, slots=True)
class Screened:
    """A down/cmd message after the checks: the command, or why it is refused."""

    cmd_id: str | None
    op: str | None
    command: Command | None
    reason: str | None


def _unverified_id(payload: bytes) -> tuple[str | None, str | None]:
    try:
        body = loads_strict(payload, "command payload")
    except BadMessage:
        return None, None
    if not isinstance(body, dict):
        return None, None
    cmd_id, op = body.get("id"), body.get("op")
    return (cmd_id if isinstance(cmd_id, str) and len(cmd_id) <= MAX_ECHOED_ID_CHARS else None,
            op if isinstance(op, str) and len(op) <= MAX_ECHOED_ID_CHARS else None)


def screen_command(raw: bytes, server_key: Ed25519PublicKey, gateway_id: str,
                   now: float | None = None) -> Screened:
    """Signature, shape, gateway and expiry checks (replay and op are checked by the caller)."""
    now = time.time() if now is None else now
    try:
        msg = parse_sign1(raw, max_bytes=MAX_COMMAND_BYTES)
    except BadMessage as exc:
        LOGGER.warning("command_refused", extra={"reason": "malformed", "detail": str(exc)})
        return Screened(None, None, None, "malformed")
    try:
        cmd = decode_command(verify_sign1(msg, server_key))
    except BadSignature:
        cmd_id, op = _unverified_id(msg.payload)
        LOGGER.warning("command_refused", extra={"reason": "bad_signature", "id": cmd_id})
        return Screened(cmd_id, op, None, "bad_signature")
    except BadMessage as exc:
        LOGGER.warning("command_refused", extra={"reason": "malformed", "detail": str(exc)})
        return Screened(None, None, None, "malformed")
    reason = _field_reason(cmd, gateway_id, now)
    if reason:
        LOGGER.warning("command_refused", extra={"reason": reason, "id": cmd.id, "op": cmd.op})
    return Screened(cmd.id, cmd.op, cmd, reason)


def _field_reason(cmd: Command, gateway_id: str, now: float) -> str | None:
    """Why a verified command is refused on its fields, or None (docs/uplink.md, Commands)."""
    if cmd.gw != gateway_id:
        return "other_gateway"
    if not 0 <= cmd.exp <= MAX_EXP_S:
        return "bad_exp"
    if has_int_beyond_int64(cmd.args):
        return "bad_integer"
    if cmd.exp < now:
        return "expired"
    return None


def has_int_beyond_int64(args: Any) -> bool:
    """True when an integer anywhere in `args` (keys too) is outside SQLite's int64.

    Iterative and visiting each object once: CBOR shared references (tags 28/29) can make a
    16 KiB payload a cyclic or exponentially shared structure.
    """
    stack, seen = [args], set()
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool):
            if not INT64_MIN <= item <= INT64_MAX:
                return True
        elif id(item) in seen:
            continue
        elif isinstance(item, Mapping):
            seen.add(id(item))
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            seen.add(id(item))
            stack.extend(item)
        elif isinstance(item, CBORTag):
            seen.add(id(item))
            stack.append(item.value)
    return False
