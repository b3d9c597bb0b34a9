"""`update.offer` end to end in one process: the download from the head-end's real chunk reader,
the real offline install into a venv, the switch and the restart request; the probation of the
new version with a stepped clock; `gateway update status|rollback`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.clock import FakeClock
from gateway.cli.main import main as gateway_main
from gateway.remote import update_ab
from gateway.remote.update_ab import linked_version, relink, restart_interpreter
from gateway.remote.update_commands import UpdateCommands, UpdatePlace
from gateway.remote.update_fetch import FetchLimits
from gateway.remote.update_probation import UpdateProbation, report_update_rollback
from gateway.remote.update_trial import (
    PENDING,
    ROLLED_BACK,
    begin,
    guard_start,
    read_update_trial,
)
from tests.gateway.remote.test_update_fetch import Link
from tests.gateway.remote.wheels import install_test_version as _install
from tests.gateway.remote.wheels import make_bundle
from uplink.commands import CommandContext, CommandRefused

RELEASE = Ed25519PrivateKey.generate()
CTX = CommandContext("gw1", "upd-1", "update.offer", 0.0)


class Events(list[tuple[str, dict[str, Any]]]):
    def __call__(self, kind: str, meter: str | None, data: dict[str, Any], level: str) -> None:
        self.append((kind, data))


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Any]:
    prefix = tmp_path / "opt"
    prefix.mkdir()
    _install(prefix, tmp_path / "installed", "0.1.0")
    relink(prefix, "current", "0.1.0")
    releases = tmp_path / "releases"
    make_bundle(releases / "0.2.0", "0.2.0", RELEASE, min_version="0.1.0")
    make_bundle(releases / "0.3.0", "0.3.0", Ed25519PrivateKey.generate())
    place = UpdatePlace(prefix, tmp_path / "data" / "update_download", tmp_path / "data" / "g.db",
                        RELEASE.public_key(), 60, 3, FetchLimits(chunk_bytes=512, pause_s=0.0))
    events, switched = Events(), []

    @contextlib.asynccontextmanager
    async def transport() -> AsyncIterator[Link]:
        yield Link(releases)

    commands = UpdateCommands(place, transport, FakeClock(), events,
                              lambda: switched.append(True))
    return {"prefix": prefix, "commands": commands, "events": events, "switched": switched}


async def test_an_offer_fetches_installs_and_switches(site: dict[str, Any]) -> None:
    commands, prefix = site["commands"], site["prefix"]
    stale = commands.place.downloads / "0.1.9"
    stale.mkdir(parents=True)
    (stale / "x.whl.part").write_bytes(b"old")
    result = await commands.offer({"version": "0.2.0"}, CTX)
    assert result == {"accepted": True, "version": "0.2.0", "running": "0.1.0"}
    await asyncio.wait_for(commands.task, 120)
    assert [k for k, _ in site["events"]] == ["update_switched"] and site["switched"]
    assert linked_version(prefix) == "0.2.0" and linked_version(prefix, "previous") == "0.1.0"
    assert read_update_trial(prefix).state == PENDING
    assert list(commands.place.downloads.iterdir()) == []  # installed: nothing kept


async def test_a_release_signed_by_another_key_is_refused_and_nothing_switches(
        site: dict[str, Any]) -> None:
    commands = site["commands"]
    await commands.offer({"version": "0.3.0"}, CTX)
    await asyncio.wait_for(commands.task, 60)
    (kind, data), = site["events"]
    assert kind == "update_refused" and data["reason"] == "bad_signature"
    assert linked_version(site["prefix"]) == "0.1.0" and not site["switched"]


async def test_a_release_the_head_end_does_not_have(site: dict[str, Any]) -> None:
    commands = site["commands"]
    await commands.offer({"version": "0.9.0"}, CTX)
    await asyncio.wait_for(commands.task, 60)
    assert site["events"][0][1]["reason"] == "no_such_release"


@pytest.mark.parametrize(("args", "reason"), [({}, "bad_args"), ({"version": "1.x"}, "bad_args"),
                                              ({"version": "0.1.0"}, "unchanged")])
async def test_offers_refused_at_once(site: dict[str, Any], args: dict[str, Any],
                                      reason: str) -> None:
    with pytest.raises(CommandRefused) as err:
        await site["commands"].offer(args, CTX)
    assert err.value.reason == reason


async def test_an_update_on_probation_refuses_another(site: dict[str, Any]) -> None:
    _install(site["prefix"], site["prefix"].parent / "b", "0.2.0")
    begin(site["prefix"], "0.2.0", 60, database=None)
    with pytest.raises(CommandRefused) as err:
        await site["commands"].offer({"version": "0.2.0"}, CTX)
    assert err.value.reason == "trial_in_progress"


async def _probation(site: dict[str, Any], healthy_after_s: float | None) -> tuple[Any, list]:
    prefix, clock, restarts = site["prefix"], FakeClock(), []
    _install(prefix, prefix.parent / "b", "0.2.0")
    begin(prefix, "0.2.0", 30, database=None)
    trial = guard_start(prefix)
    start = clock.monotonic()

    def missing() -> list[str]:
        ok = healthy_after_s is not None and clock.monotonic() - start >= healthy_after_s
        return [] if ok else ["uplink"]
    probation = UpdateProbation(prefix, trial, missing, clock, site["events"],
                                lambda: restarts.append(True))
    task = asyncio.ensure_future(probation.run())
    while not task.done():
        await clock.run_for(1.0)
    return probation, restarts


async def test_a_healthy_new_version_is_confirmed(site: dict[str, Any]) -> None:
    probation, restarts = await _probation(site, healthy_after_s=5)
    assert probation.outcome == "applied" and not restarts
    assert read_update_trial(site["prefix"]) is None
    assert site["events"][-1][0] == "update_applied"
    assert linked_version(site["prefix"]) == "0.2.0"


async def test_a_new_version_not_healthy_in_time_is_rolled_back(site: dict[str, Any]) -> None:
    probation, restarts = await _probation(site, healthy_after_s=None)
    assert probation.outcome == "rolled_back" and restarts == [True]
    kind, data = site["events"][-1]
    assert kind == "update_rollback_started" and data["reason"] == "not_healthy: uplink"
    assert linked_version(site["prefix"]) == "0.1.0"
    assert restart_interpreter() == site["prefix"] / "current" / "bin" / "python"
    update_ab._RESTART_INTO.clear()  # the next restart of this test process: its own python
    trial = read_update_trial(site["prefix"])
    assert trial.state == ROLLED_BACK
    report_update_rollback(site["prefix"], trial, site["events"])
    assert site["events"][-1][0] == "update_rolled_back"
    assert read_update_trial(site["prefix"]) is None


def test_status_and_a_technicians_rollback(site: dict[str, Any], capsys) -> None:
    prefix = site["prefix"]
    _install(prefix, prefix.parent / "b", "0.2.0")
    begin(prefix, "0.2.0", 30, database=None)
    guard_start(prefix)
    assert gateway_main(["update", "status", "--prefix", str(prefix)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["running"] == "0.2.0" and shown["trial"]["state"] == "trial"
    assert shown["installed"] == ["0.1.0", "0.2.0"]
    assert gateway_main(["update", "rollback", "--prefix", str(prefix)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["running"] == "0.1.0" and shown["trial"]["reason"] == "technician"


def test_the_remote_table_takes_the_update_keys() -> None:
    from core.schema import Problems
    from gateway.remote.settings import remote_section

    problems = Problems("gateway.toml")
    settings = remote_section({"update_prefix": "/opt/gateway", "release_key": "/etc/r.pem",
                               "update_max_starts": 2, "update_chunk_bytes": 99}, problems)
    assert [line for line in problems.lines if "update_chunk_bytes" in line]
    settings = remote_section({"update_prefix": "/opt/gateway", "update_max_starts": 2},
                              Problems("gateway.toml"))
    assert settings.update_prefix == "/opt/gateway" and settings.update_max_starts == 2


def test_the_release_key_must_not_be_the_command_key(tmp_path: Path) -> None:
    from uplink.errors import SigningKeyFileError
    from uplink.keys import public_pem

    command, release = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    (tmp_path / "command.pem").write_text(public_pem(command))
    (tmp_path / "release.pem").write_text(public_pem(release))
    from gateway.remote.update_commands import release_key_of

    key = release_key_of(tmp_path / "release.pem", tmp_path / "command.pem")
    assert public_pem(key) == public_pem(release)
    with pytest.raises(SigningKeyFileError, match="command key"):
        release_key_of(tmp_path / "command.pem", tmp_path / "command.pem")
    with pytest.raises(SigningKeyFileError):
        release_key_of(tmp_path / "missing.pem", None)
