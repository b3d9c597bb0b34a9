"""The console session: banner, login with lockout, the command loop, help and completion."""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from typing import Protocol

from core.errors import Refused
from gateway.console import format as fmt
from gateway.console.accounts import ConsoleSettings, LoginGuard
from gateway.console.api import ControlApi, ControlError, Role
from gateway.console.context import Context, UsageError
from gateway.console.protocol_commands import all_commands
from gateway.console.terminal import ByteTerminal

LOGGER = logging.getLogger(__name__)

BANNER = "Meter gateway console. Type your login, then 'help'."
MAX_LOGIN_ATTEMPTS_PER_CONNECTION = 5  # then the line is dropped so a script must redial


class LoginRefused(Refused):
    """Wrong name or password, or locked out. A `Refused` with a code (`login_incorrect`,
    `locked_out`; `login_refused` as the client receives it), but `str()` is the message alone,
    safe to show: a login refusal is shown on the line and never goes into a result record."""

    def __init__(self, message: str, reason: str = "login_refused") -> None:
        super().__init__(reason, message)

    def __str__(self) -> str:
        return self.detail


class Authenticator(Protocol):
    async def login(self, name: str, password: str) -> Role:
        """The account's role, or LoginRefused."""


class LocalAuthenticator:
    """Checks accounts from the config; one LoginGuard per line keeps the lockout count."""

    def __init__(self, settings: ConsoleSettings, guard: LoginGuard | None = None) -> None:
        self.settings = settings
        self.guard = guard or LoginGuard(settings, time.monotonic)

    async def login(self, name: str, password: str) -> Role:
        wait = self.guard.wait_s()
        if wait > 0:
            raise LoginRefused(f"Too many failed logins: wait {wait:.0f} s, then try again.",
                               "locked_out")
        # scrypt takes tens of ms: keep it off the event loop that polls the meters
        account = await asyncio.to_thread(
            self.guard.check, self.settings.accounts, name, password
        )
        if account is None:
            LOGGER.warning("console_login_failed", extra={"user": name[:32],
                                                          "failures": self.guard.failures})
            wait = self.guard.wait_s()
            later = f" Wait {wait:.0f} s before the next try." if wait > 0 else ""
            raise LoginRefused("Login incorrect." + later, "login_incorrect")
        LOGGER.info("console_login", extra={"user": name, "role": account.role.name.lower()})
        return account.role


class Shell:
    """Runs command lines for one logged-in user."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run_line(self, line: str) -> bool:
        """Run one line; False when the user asked to log out."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.ctx.say(f"Cannot read that line ({exc}): close your quotes.")
            return True
        if not words:
            return True
        name, args = words[0], words[1:]
        if name in ("logout", "exit", "quit"):
            return False
        if name == "help":
            self.help(args)
            return True
        await self._run_command(name, args)
        return True

    async def _run_command(self, name: str, args: list[str]) -> None:
        command = all_commands().get(name)
        if command is None:
            self.ctx.say(f"Unknown command {name[:40]!r}. Type 'help' for the list.")
            return
        try:
            self.ctx.require(command.role, name)
            await command.handler(self.ctx, args)
        except UsageError as exc:
            self.ctx.say(f"{exc}.\nUsage: {command.usage}  (see 'help {name}')")
        except ControlError as exc:
            self.ctx.say(fmt.wrap(f"Error: {exc}"))

    def help(self, args: list[str]) -> None:
        commands = all_commands()
        if args and args[0] in commands:
            c = commands[args[0]]
            self.ctx.say(f"Usage: {c.usage}\n{fmt.wrap(c.summary)}")
            for paragraph in c.help_paragraphs():
                self.ctx.say(fmt.wrap(paragraph))
            self.ctx.say(f"Needs role: {c.role.name.lower()}")
            return
        if args:
            self.ctx.say(f"No command {args[0][:40]!r}. Type 'help' for the list.")
            return
        for c in commands.values():
            self.ctx.say(f"  {c.usage[:30]:30}  {c.summary[:46]}")
        self.ctx.say("  logout                          end the session")
        self.ctx.say("Keys: Tab completes, Up/Down recall, Ctrl-U clears, Ctrl-C cancels.")

    def complete(self, before: str) -> list[str]:
        """Candidates for the word being typed, given the text before the cursor."""
        words = before.split(" ")
        commands = all_commands()
        if len(words) == 1:
            return [*commands, "help", "logout"]
        command = commands.get(words[0])
        if words[0] == "help":
            return list(commands)
        position = len(words) - 2
        if command is None or position >= len(command.completes):
            return []
        kind = command.completes[position]
        if kind == "meter":
            return self.ctx.meter_ids
        if kind == "bus":
            return self.ctx.bus_names
        return kind.split()


async def _login(term: ByteTerminal, auth: Authenticator) -> tuple[str, Role] | None:
    for _ in range(MAX_LOGIN_ATTEMPTS_PER_CONNECTION):
        name = await term.ask("login: ")
        if name is None:
            if term.hung_up:
                return None
            continue
        name = name.strip()
        if not name:
            continue
        password = await term.ask("password: ", secret=True)
        if password is None:
            if term.hung_up:
                return None
            continue
        try:
            return name, await auth.login(name, password)
        except LoginRefused as exc:
            term.write(f"{exc}\n")
        except ControlError as exc:
            term.write(f"Cannot log in: {exc}\n")
    term.write("Too many attempts on this connection.\n")
    return None


async def _context(api: ControlApi, term: ByteTerminal, user: str, role: Role) -> Context:
    ctx = Context(api=api, term=term, user=user, role=role, meter_ids=[], bus_names=[])
    try:
        ctx.meter_ids = [m.meter_id for m in await api.meters()]
        ctx.bus_names = await api.bus_names()
    except ControlError as exc:
        term.write(f"Warning: meter list unavailable ({exc}); Tab cannot complete ids.\n")
    return ctx


async def run_session(
    term: ByteTerminal, api: ControlApi, auth: Authenticator, *, once: bool = False
) -> None:
    """Serve one line until it hangs up (or, with once, the first logout)."""
    term.write(f"\n{BANNER}\n")
    while not term.hung_up:
        login = await _login(term, auth)
        if login is None:
            return
        user, role = login
        ctx = await _context(api, term, user, role)
        shell = Shell(ctx)
        term.set_completer(shell.complete)
        term.write(f"Welcome {user} ({role.name.lower()}). Type 'help' for commands.\n")
        try:
            await _command_loop(term, shell, user)
        finally:
            term.set_completer(None)
            term.editor.history.clear()  # the next user must not recall this one's commands
            LOGGER.info("console_logout", extra={"user": user, "idle": term.idle})
        if once:
            return


async def _command_loop(term: ByteTerminal, shell: Shell, user: str) -> None:
    while True:
        line = await term.ask(f"{user}> ")
        if line is None:
            if term.idle:
                term.write(f"\nLogged out after {term.idle_logout_s:.0f} s idle.\n")
                return
            if term.hung_up:
                return
            continue
        if not await shell.run_line(line):
            term.write("Logged out.\n")
            return
