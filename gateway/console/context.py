"""What a console command sees: the terminal, the API, the user and role, audit and checks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from core.errors import MeterGatewayError
from gateway.console.api import ControlApi, ControlError, Role

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


class UsageError(MeterGatewayError):
    """Wrong arguments; the shell prints the message and the command's usage line."""


class Terminal(Protocol):
    """Where a command writes and asks; a serial line, a pty or the SSH user's terminal."""

    def write(self, text: str) -> None:
        """Write text; "\\n" becomes CR LF on the line."""

    async def ask(self, prompt: str) -> str | None:
        """Read one line (None on Ctrl-C, end of input or idle logout)."""

    async def interrupted(self, timeout_s: float) -> bool:
        """Wait up to timeout_s; True as soon as the user presses Ctrl-C (or hangs up)."""


@dataclass
class Context:
    api: ControlApi
    term: Terminal
    user: str
    role: Role
    meter_ids: list[str]
    bus_names: list[str]

    def say(self, text: str = "") -> None:
        self.term.write(text + "\n")

    def require(self, role: Role, what: str) -> None:
        if self.role < role:
            raise ControlError(
                f"{what} needs the {role.name.lower()} role; you are {self.role.name.lower()}."
                " Log in with an account that has it (ask the site admin)."
            )

    async def confirm(self, question: str) -> bool:
        answer = await self.term.ask(f"{question} Type yes to confirm: ")
        if answer is None or answer.strip().lower() != "yes":
            self.say("Cancelled: nothing was changed.")
            return False
        return True

    async def audited(self, command: str, args: list[str], action: Callable[[], Awaitable[T]]) -> T:
        """Run a changing action and record an audit event with its outcome, success or not."""
        try:
            result = await action()
        except ControlError as exc:
            await self._audit(command, args, f"error: {exc}")
            raise
        await self._audit(command, args, "ok")
        return result

    async def _audit(self, command: str, args: list[str], outcome: str) -> None:
        LOGGER.info(
            "console_audit", extra={"user": self.user, "command": command, "outcome": outcome}
        )
        try:
            await self.api.record_audit(self.user, command, args, outcome)
        except ControlError as exc:
            self.say(f"Warning: the audit event was not stored ({exc}).")
