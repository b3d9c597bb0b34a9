"""Commands from the head-end: screened, run once, their result stored for the outbox."""

import logging
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from storage import batches
from storage.store import Store
from uplink.commands import CommandContext, CommandRefused, CommandRegistry, screen_command

LOGGER = logging.getLogger("uplink.service")  # the events keep the name they always had


class CommandInbox:
    """Handles one signed command at a time (on the loop, the store's owner)."""

    def __init__(self, store: Store, gw: str, server_key: Ed25519PublicKey,
                 commands: CommandRegistry, clock: Callable[[], float]) -> None:
        self.store, self.gw, self.server_key = store, gw, server_key
        self.commands, self.clock = commands, clock

    async def handle(self, raw: bytes) -> None:
        """Screen, de-duplicate and run `raw`; its result goes to the outbox either way."""
        screened = screen_command(raw, self.server_key, self.gw, self.clock())
        reason, cmd = screened.reason, screened.command
        if reason is None and cmd is not None:
            if not self._remember(cmd.id, cmd.exp):
                reason = "replayed"
            elif cmd.op not in self.commands:
                reason = "unknown_op"
        ok, body = False, {"reason": reason}
        if reason is None and cmd is not None:
            ok, body = await self._execute(cmd)
        else:
            LOGGER.warning("command_refused", extra={"id": screened.cmd_id, "reason": reason})
        self._add_result(screened.cmd_id, screened.op, ok, body)

    async def _execute(self, cmd: Any) -> tuple[bool, dict[str, Any]]:
        ctx = CommandContext(self.gw, cmd.id, cmd.op, self.clock())
        try:
            result = await self.commands.run(cmd, ctx)
        except CommandRefused as exc:
            return False, {**exc.fields, "reason": exc.reason}
        except Exception as exc:  # a handler's bug must not take the uplink down
            LOGGER.exception("command_failed", extra={"id": cmd.id, "op": cmd.op})
            return False, {"reason": f"handler_error: {type(exc).__name__}"}
        LOGGER.info("command_done", extra={"id": cmd.id, "op": cmd.op})
        return True, result

    def _remember(self, cmd_id: str, exp_s: int) -> bool:
        with self.store.transaction() as tx:
            return batches.remember_command(tx, cmd_id, exp_s * 1000, int(self.clock() * 1000))

    def _add_result(self, cmd_id: str | None, op: str | None, ok: bool,
                    body: dict[str, Any]) -> None:
        ts_ms = int(self.clock() * 1000)
        with self.store.transaction() as tx:
            ref = batches.add_command_result(tx, ts_ms, cmd_id, op, ok, body)
            self.store.outbox_add(tx, "cmd_result", ref, ts_ms)
