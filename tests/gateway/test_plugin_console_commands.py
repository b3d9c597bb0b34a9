"""A protocol's own console commands: declared in its plugin only, listed by `help`, run on
its opened bus through the control socket with the role the plugin asks for, checked on the
service side (the client cannot claim a higher role), confirmed and audited when they change
something."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.plugin import ConsoleCommand
from gateway.app.service import Service
from gateway.config.loader import load_config
from gateway.console.accounts import Account, ConsoleSettings, hash_password
from gateway.console.api import ControlError, Role
from gateway.console.context import Context
from gateway.console.protocol_commands import all_commands
from gateway.console.service_api import ServiceControlApi
from gateway.console.shell import LocalAuthenticator, Shell
from gateway.console.socket import ControlServer, RemoteApi
from gateway.wiring import protocols
from gateway.wiring.console_ports import console_ports
from storage.records import EventRecord
from tests.gateway.toy_protocol import READ_DEADLINE_S, toy_site
from tests.harness.eventually import eventually_async
from tests.harness.lingering import run_checked

ACCOUNTS = {
    "ana": Account("ana", Role.TECHNICIAN, hash_password("ana-pass-1")),
    "vic": Account("vic", Role.VIEWER, hash_password("vic-pass-1")),
}


class _Terminal:
    """Answers every question with `answer` and keeps what was written."""

    def __init__(self, answer: str) -> None:
        self.answer, self.out = answer, []

    def write(self, text: str) -> None:
        self.out.append(text)

    async def ask(self, prompt: str) -> str | None:
        self.out.append(prompt)
        return self.answer

    async def interrupted(self, timeout_s: float) -> bool:
        return False


def test_help_lists_a_plugins_commands_with_usage_and_role(toy: object) -> None:
    commands = all_commands()
    assert commands["toymode"].usage == "toymode BUS"
    assert commands["toywake"].usage == "toywake BUS [ADDRESS]"
    assert commands["toymode"].role is Role.VIEWER
    assert commands["toywake"].role is Role.TECHNICIAN
    assert "Works on toy buses." in commands["toywake"].details
    assert "Asks to confirm. Audited." in commands["toywake"].details
    assert commands["toywake"].completes == ("bus",)


def test_a_plugin_command_may_not_take_a_console_commands_name(
        toy: object, monkeypatch: pytest.MonkeyPatch) -> None:
    clash = ConsoleCommand("status", "", "shadows status", _never)
    plugin = protocols.PLUGINS[-1]
    monkeypatch.setattr(protocols, "PLUGINS", (*protocols.PLUGINS[:-1], type(plugin)(
        **{**plugin.__dict__, "console_commands": (clash,)})))
    with pytest.raises(TypeError, match="'status' of toy is already a console command"):
        all_commands()


def _audits(service: Service) -> list[EventRecord]:
    store = service.store
    return [e for e in store.recent_events(50) if e.kind == "audit"] if store else []


async def _never(opened: object, args: list[str]) -> list[str]:
    raise AssertionError("never run")


@pytest.mark.parametrize(("name", "timeout_s"), [("Two Words", 1.0), ("ok", 0.0),
                                                 ("ok", 91.0)])
def test_a_console_command_is_one_word_with_a_bounded_timeout(name: str,
                                                              timeout_s: float) -> None:
    with pytest.raises(TypeError, match="console command"):
        ConsoleCommand(name, "", "x", _never, timeout_s=timeout_s)


def test_commands_run_on_the_opened_bus_with_the_plugins_roles(
        tmp_path: Path, toy: object) -> None:
    service = Service(load_config(toy_site(tmp_path)))
    run_checked(_while_running(service, _over_the_socket(service, tmp_path / "c.sock")))


async def _while_running(service: Service, work: object) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await eventually_async(lambda: service.store and service.store.last_readings("toy-3", 1),
                               READ_DEADLINE_S, "the toy meter's reading")
        await work  # type: ignore[misc]
    finally:
        stop.set()
        await task


async def _over_the_socket(service: Service, path: Path) -> None:
    settings = ConsoleSettings(accounts=ACCOUNTS)
    server = ControlServer(ServiceControlApi(console_ports(service)),
                           LocalAuthenticator(settings), path)
    await server.start()
    try:
        await _as_viewer(path)
        await _as_technician(path, service)
    finally:
        await server.close()


async def _as_viewer(path: Path) -> None:
    api = await RemoteApi.connect(path)
    try:
        assert await api.login("vic", "vic-pass-1") == Role.VIEWER
        lines = await api.protocol_command("toymode", "toy-line", [], "viewer", "vic")
        assert lines[0] == "mode slow" and int(lines[1].split()[1]) >= 1
        # the server fills in the logged-in role: claiming admin changes nothing
        with pytest.raises(ControlError, match="toywake needs the technician role"):
            await api.protocol_command("toywake", "toy-line", [], "admin", "root")
        with pytest.raises(ControlError, match=r"toymode takes no words.*Usage: toymode BUS"):
            await api.protocol_command("toymode", "toy-line", ["x"], "viewer", "vic")
        with pytest.raises(ControlError, match="no bus 'nope'"):
            await api.protocol_command("toymode", "nope", [], "viewer", "vic")
        with pytest.raises(ControlError, match="no protocol has a command 'frob'"):
            await api.protocol_command("frob", "toy-line", [], "viewer", "vic")
        # a plugin's bug is an answer naming it, not a console left waiting
        with pytest.raises(ControlError, match="toycrash toy-line failed unexpectedly"):
            await api.protocol_command("toycrash", "toy-line", [], "viewer", "vic")
    finally:
        await api.close()


async def _as_technician(path: Path, service: Service) -> None:
    api = await RemoteApi.connect(path)
    try:
        assert await api.login("ana", "ana-pass-1") == Role.TECHNICIAN
        declined = _Terminal("no")
        await Shell(Context(api, declined, "ana", Role.TECHNICIAN, [], ["toy-line"])).run_line(
            "toywake toy-line 3")
        assert "Cancelled: nothing was changed." in "".join(declined.out)
        assert service.buses["toy-line"].mode == "slow"  # type: ignore[attr-defined]
        term = _Terminal("yes")
        await Shell(Context(api, term, "ana", Role.TECHNICIAN, [], ["toy-line"])).run_line(
            "toywake toy-line 3")
        assert "woke 3\n" in term.out
        assert service.buses["toy-line"].mode == "fast"  # type: ignore[attr-defined]
        audits = await eventually_async(lambda: _audits(service), READ_DEADLINE_S,
                                        "the audit event of toywake")
        assert [(a.data["user"], a.data["command"], a.data["arguments"], a.data["outcome"])
                for a in audits] == [("ana", "toywake", ["toy-line", "3"], "ok")]
        # a client without the shell is audited too, under the logged-in name
        assert await api.protocol_command("toywake", "toy-line", [], "technician",
                                          "mallory") == ["woke all"]
        audits = await eventually_async(lambda: len(_audits(service)) == 2 and _audits(service),
                                        READ_DEADLINE_S, "the second audit event")
        newest = audits[0]  # newest first
        assert (newest.data["user"], newest.data["arguments"]) == ("ana", ["toy-line"])
    finally:
        await api.close()
