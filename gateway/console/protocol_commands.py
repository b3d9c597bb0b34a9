"""The console commands the protocol plugins bring, beside the console's own.

A plugin declares each (`drivers.plugin.ConsoleCommand`: name, usage, help, role); here it
becomes a shell command `NAME BUS ARGS...` that runs the operation `protocol_command`, whose
service side checks the plugin's role against the caller's and runs it on the opened bus. So
the console names no protocol and adding one is a line in the plugin. Read at call time: the
list of plugins is (a test adds a toy one).
"""

from __future__ import annotations

from drivers.plugin import ConsoleCommand
from gateway.console.commands import COMMANDS, Command, Handler
from gateway.console.context import Context, UsageError
from gateway.console.operations import Role
from gateway.wiring.protocols import plugins


def all_commands() -> dict[str, Command]:
    """The console's own commands, then every plugin's; a name used twice is an error."""
    table = dict(COMMANDS)
    for plugin in plugins():
        for declared in plugin.console_commands:
            if declared.name in table or declared.name in ("help", "logout", "exit", "quit"):
                raise TypeError(f"console command {declared.name!r} of {plugin.name} is "
                                "already a console command")
            table[declared.name] = _command(plugin.name, declared)
    return table


def _command(protocol: str, declared: ConsoleCommand) -> Command:
    details = f"Works on {protocol} buses. {declared.details}".strip()
    if declared.changes:
        details += " Asks to confirm. Audited."
    return Command(declared.name, f"{declared.name} BUS {declared.usage}".rstrip(),
                   declared.help, details, Role.parse(declared.role), _handler(declared),
                   ("bus",))


def _handler(declared: ConsoleCommand) -> Handler:
    async def run(ctx: Context, args: list[str]) -> None:
        if not args:
            raise UsageError("give a bus name first")
        bus, words = args[0], args[1:]

        # the service audits a command that changes the device, under the logged-in name
        if declared.changes and not await ctx.confirm(
                f"Run '{' '.join([declared.name, *args])}'?"):
            return
        lines = await ctx.api.protocol_command(declared.name, bus, words, ctx.role.name.lower(),
                                               ctx.user)
        for line in lines:
            ctx.say(line)

    return run
