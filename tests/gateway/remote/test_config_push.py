"""config.push / config.get on the gateway: refused with every problem listed, or kept as a
version, marked for trial, written atomically and restarted; the trial marker moves on at start
and rolls back a config that never proved itself; the probation watches with a stepped clock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock
from gateway.config.loader import load_config
from gateway.remote.history import ConfigHistory, sha256_text
from gateway.remote.probation import Probation
from gateway.remote.push import ConfigCommands, RunningConfig
from gateway.remote.settings import RemoteSettings
from gateway.remote.trial import (
    PENDING,
    ROLLED_BACK,
    TRIAL,
    marker_path,
    read_trial,
    settle_at_start,
)
from tests.harness.eventually import eventually_async
from uplink.commands import CommandContext, CommandRefused
from uplink.keys import create_private_key, public_pem

CTX = CommandContext("gw-r", "push-1", "config.push", 0.0)

SITE = """gateway_id = "gw-r"
[storage]
path = "data/gw.db"
[board]
state_dir = "board"
[uplink]
broker_url = "mqtt://127.0.0.1:1"
key_file = "gateway_ed25519.pem"
server_public_key = "headend_public.pem"
[remote]
healthy_within_s = {within}
[[bus]]
id = "tcp-1"
kind = "tcp"
host = "127.0.0.1"
tcp_port = {port}
[[meter]]
id = "shop-1"
bus = "tcp-1"
protocol = "modbus"
address = 1
profile = "eastron_sdm120"
"""


def site(tmp_path: Path, port: int = 1502, within: int = 30) -> Path:
    if not (tmp_path / "gateway_ed25519.pem").exists():
        create_private_key(tmp_path / "gateway_ed25519.pem")
        (tmp_path / "headend_public.pem").write_text(
            public_pem(create_private_key(tmp_path / "headend_ed25519.pem")))
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(port=port, within=within))
    return path


def commands(tmp_path: Path) -> tuple[ConfigCommands, list[str]]:
    config = load_config(site(tmp_path))
    restarts: list[str] = []
    running = RunningConfig.of(config, config.remote)
    return ConfigCommands(running, lambda: restarts.append("restart")), restarts


def args_for(text: str, sha: str | None = None) -> dict[str, Any]:
    return {"config": text, "sha256": sha or sha256_text(text)}


def test_history_keeps_the_newest_versions(tmp_path: Path) -> None:
    history = ConfigHistory(tmp_path / "h", keep=3)
    versions = [history.add(f"v = {n}\n") for n in range(5)]
    assert [v.number for v in versions] == [1, 2, 3, 4, 5]
    assert [v.number for v in history.versions()] == [3, 4, 5]
    assert history.add("v = 4\n") == versions[-1]  # the newest again: no new version
    assert history.find(sha256_text("v = 3\n")) == versions[3]
    assert history.find(sha256_text("v = 0\n")) is None


def test_remote_keys_are_validated_by_name(tmp_path: Path) -> None:
    path = site(tmp_path, within=5)
    path.write_text(path.read_text().replace("[remote]\n", "[remote]\nhistory = 1\nfoo = 2\n"))
    with pytest.raises(Exception) as caught:
        load_config(path)
    problems = caught.value.problems  # type: ignore[attr-defined]
    assert any("`remote.healthy_within_s`" in p and "between 10 and 3600" in p
               for p in problems)
    assert any("`remote.history`" in p for p in problems)
    assert any("`remote.foo`" in p and "unknown key" in p for p in problems)
    assert load_config(site(tmp_path)).remote == RemoteSettings(healthy_within_s=30)


async def test_wrong_hash_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    cmds, restarts = commands(tmp_path)
    before = (tmp_path / "site.toml").read_text()
    new = SITE.format(port=1503, within=30)
    with pytest.raises(CommandRefused) as caught:
        await cmds.push(args_for(new, sha256_text(new + " ")), CTX)
    assert caught.value.reason == "hash_mismatch"
    for bad in ({}, {"config": new}, {"config": 7, "sha256": "ab"}):
        with pytest.raises(CommandRefused, match="bad_args"):
            await cmds.push(bad, CTX)
    assert (tmp_path / "site.toml").read_text() == before and restarts == []
    assert not marker_path(tmp_path / "site.toml").exists()


async def test_invalid_config_is_refused_with_every_problem(tmp_path: Path) -> None:
    cmds, restarts = commands(tmp_path)
    new = SITE.format(port=1503, within=30).replace('gateway_id = "gw-r"',
                                                     'gateway_id = "gw-r"\ncolour = "red"')
    new = new.replace('profile = "eastron_sdm120"', 'profile = "no_such_meter"')
    new = new.replace('key_file = "gateway_ed25519.pem"', 'key_file = "missing.pem"')
    with pytest.raises(CommandRefused) as caught:
        await cmds.push(args_for(new), CTX)
    assert caught.value.reason == "invalid_config"
    problems = caught.value.fields["problems"]
    assert any("`colour`" in p and "unknown key" in p for p in problems)
    assert any("meter[0].profile" in p for p in problems)
    assert any("missing.pem" in p for p in problems)  # the start-up checks too
    assert all(p.startswith("site.toml: ") for p in problems)  # named as the real file
    assert restarts == [] and not marker_path(tmp_path / "site.toml").exists()


async def test_a_push_must_keep_the_way_back(tmp_path: Path) -> None:
    cmds, _ = commands(tmp_path)
    text = SITE.format(port=1502, within=30)
    no_uplink = text[:text.index("[uplink]")] + text[text.index("[remote]"):]
    renamed = text.replace('"gw-r"', '"gw-other"').replace('path = "data/gw.db"',
                                                           'path = "elsewhere.db"')
    for new, keys in ((no_uplink, ["`uplink`"]), (renamed, ["`gateway_id`", "`storage.path`"])):
        with pytest.raises(CommandRefused) as caught:
            await cmds.push(args_for(new), CTX)
        problems = caught.value.fields["problems"]
        assert all(any(key in p for p in problems) for key in keys), problems


async def test_good_push_is_kept_marked_written_and_restarts(tmp_path: Path) -> None:
    cmds, restarts = commands(tmp_path)
    source = tmp_path / "site.toml"
    old_sha = sha256_text(source.read_text())
    new = SITE.format(port=1503, within=30)
    result = await cmds.push(args_for(new), CTX)
    assert result["accepted"] and result["version"] == 2
    assert result["previous"] == {"version": 1, "sha256": old_sha}
    assert source.read_text() == new
    trial = read_trial(source)
    assert trial is not None and trial.state == PENDING and trial.command == "push-1"
    assert trial.previous_sha256 == old_sha and trial.healthy_within_s == 30
    got = await cmds.get({}, CTX)
    assert got["version"] == 1 and got["trial"] == PENDING  # still the old one until restart
    assert [v["version"] for v in got["versions"]] == [1, 2]
    with pytest.raises(CommandRefused, match="trial_in_progress"):
        await cmds.push(args_for(SITE.format(port=1504, within=30)), CTX)
    # restarted after the result had time to be stored
    await eventually_async(lambda: restarts == ["restart"] or None, 10, "the restart")


async def test_same_config_is_refused_as_unchanged(tmp_path: Path) -> None:
    cmds, _ = commands(tmp_path)
    with pytest.raises(CommandRefused, match="unchanged"):
        await cmds.push(args_for((tmp_path / "site.toml").read_text()), CTX)


async def pushed(tmp_path: Path) -> Path:
    cmds, restarts = commands(tmp_path)
    await cmds.push(args_for(SITE.format(port=1503, within=30)), CTX)
    await eventually_async(lambda: restarts == ["restart"] or None, 10, "the restart")
    return tmp_path / "site.toml"


async def test_start_moves_pending_to_trial_and_a_second_start_rolls_back(
        tmp_path: Path) -> None:
    source = await pushed(tmp_path)
    trial = settle_at_start(source)
    assert trial is not None and trial.state == TRIAL and "1503" in source.read_text()
    rolled = settle_at_start(source)  # crashed on the new config: the next start
    assert rolled is not None and rolled.state == ROLLED_BACK
    assert rolled.reason == "restarted_during_trial"
    assert load_config(source).buses[0].tcp_port == 1502
    assert settle_at_start(source) == rolled  # reported by the service, then cleared


async def test_a_switch_that_never_happened_clears_the_marker(tmp_path: Path) -> None:
    source = await pushed(tmp_path)
    previous = read_trial(source)
    assert previous is not None
    source.write_text(Path(previous.previous_path).read_text())  # as if the rename never ran
    assert settle_at_start(source) is None and not marker_path(source).exists()


async def test_probation_confirms_a_healthy_config(tmp_path: Path) -> None:
    source = await pushed(tmp_path)
    trial = settle_at_start(source)
    assert trial is not None
    clock, events, missing = FakeClock(), [], [["bus-tcp-1", "uplink"]]
    probation = Probation(source, trial, lambda: missing[0], clock,
                          lambda kind, meter, data, severity: events.append((kind, data)),
                          lambda: events.append(("restart", {})))
    task = asyncio.create_task(probation.run())
    await clock.settle()
    clock.step(5)
    await clock.settle()
    missing[0] = []
    clock.step(1)
    await task
    assert probation.outcome == "applied" and not marker_path(source).exists()
    assert events == [("config_applied", {"version": 2, "sha256": trial.new_sha256,
                                          "previous_version": 1,
                                          "previous_sha256": trial.previous_sha256,
                                          "command": "push-1"})]


async def test_probation_rolls_back_when_not_healthy_in_time(tmp_path: Path) -> None:
    source = await pushed(tmp_path)
    trial = settle_at_start(source)
    assert trial is not None
    clock, events = FakeClock(), []
    probation = Probation(source, trial, lambda: ["bus-tcp-1"], clock,
                          lambda kind, meter, data, severity: events.append(kind),
                          lambda: events.append("restart"))
    task = asyncio.create_task(probation.run())
    while not task.done():
        await clock.settle()
        clock.step(1)
    await task
    assert events == ["config_rollback_started", "restart"]
    after = read_trial(source)
    assert after is not None and after.state == ROLLED_BACK
    assert after.reason == "not_healthy: bus-tcp-1"
    assert "1502" in source.read_text()
