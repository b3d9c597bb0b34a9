"""Key commands (`gateway keys`, `gateway-headend keys`), head-end export, and cmd against a
real Mosquitto with a serving head-end."""

import asyncio
import json
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.cli.cmd_keys import key_path, keys_init, keys_show
from storage.store import Store
from tests.harness.uplink_site import GW, Site
from uplink.errors import SigningKeyFileError, UplinkError
from uplink.headend import cli, command
from uplink.headend.store import HeadendStore
from uplink.keys import load_private_key, load_public_key
from uplink.localbroker import Mosquitto


def test_gateway_keys_init_and_show(tmp_path: Path) -> None:
    pem = keys_init(tmp_path / "state")
    path = key_path(tmp_path / "state")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert keys_show(tmp_path / "state") == pem
    before = path.read_bytes()
    with pytest.raises(SigningKeyFileError, match="refusing to overwrite"):
        keys_init(tmp_path / "state")
    assert path.read_bytes() == before
    (tmp_path / "pub.pem").write_text(pem)
    load_public_key(tmp_path / "pub.pem")


def test_key_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyFileError, match=r"missing\.pem"):
        load_private_key(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(SigningKeyFileError, match=r"junk\.pem"):
        load_public_key(tmp_path / "junk.pem")
    with pytest.raises(UplinkError, match="GW=PUBKEY"):
        cli.parse_enrolment(["no-equals-sign"])


def test_headend_cli_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "init", "--state", str(tmp_path)]) == 0
    pem = capsys.readouterr().out
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert cli.main(["keys", "show", "--state", str(tmp_path)]) == 0
    assert capsys.readouterr().out == pem
    assert cli.main(["keys", "init", "--state", str(tmp_path)]) == 1


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_export_refuses_a_missing_database(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "typo.db"
    assert cli.main(["export", "--db", str(typo)]) == 1
    assert str(typo) in one_error_line(capsys)
    assert not typo.exists()
    assert cli.main(["export", "--db", str(tmp_path)]) == 1  # a directory
    assert "is not a file" in one_error_line(capsys)


def test_export_refuses_a_database_that_is_not_the_headends(
        store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    before = {t for t in store.db.table_names()}
    assert cli.main(["export", "--db", str(store.path)]) == 1
    assert "not a head-end database" in one_error_line(capsys)
    assert set(store.db.table_names()) == before  # nothing added to the gateway's file


def test_export_reads_an_existing_empty_database(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    HeadendStore(tmp_path / "headend.db").close()
    assert cli.main(["export", "--db", str(tmp_path / "headend.db")]) == 0
    assert capsys.readouterr().out == ""


def test_cmd_refuses_a_missing_database(tmp_path: Path, broker: Mosquitto,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "init", "--state", str(tmp_path)]) == 0
    capsys.readouterr()
    typo = tmp_path / "typo.db"
    assert cli.main(["cmd", "--broker", broker.url, "--state", str(tmp_path), "--db", str(typo),
                     "--gw", "g1", "--op", "ping"]) == 1
    assert str(typo) in one_error_line(capsys)
    assert not typo.exists()


@pytest.mark.parametrize("bad", [["--args", "[1]"], ["--args", "{oops"], ["--timeout", "0"],
                                 ["--timeout", "soon"]])
def test_cmd_usage_errors_exit_2(tmp_path: Path, bad: list[str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["cmd", "--db", "x.db", "--gw", "g1", "--op", "ping", *bad])
    assert exc.value.code == 2
    assert bad[0] in capsys.readouterr().err


def test_cmd_sender_never_subscribes() -> None:
    assert command.sender_link_config("mqtt://127.0.0.1:1883").subscriptions == ()


def write_key(key: Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def cmd_argv(site: Site, key_file: Path, *extra: str) -> list[str]:
    return ["cmd", "--broker", site.headend.broker_url, "--key", str(key_file),
            "--db", str(site.hstore.path), *extra]


async def test_cmd_waits_for_the_result_and_takes_no_batches(
        broker: Mosquitto, store: Store, gw_key: Ed25519PrivateKey,
        server_key: Ed25519PrivateKey, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Small uncompressed batches, several in flight at once: a second subscriber in the shared
    # group would take some of them and the serving head-end would see later seqs first (gaps).
    site = await Site(broker.url, store, gw_key, server_key, tmp_path / "headend.db",
                      max_batch_bytes=1024, compress=False).start()
    started, release = asyncio.Event(), asyncio.Event()

    async def hold(args: dict[str, Any], ctx: Any) -> dict[str, Any]:
        started.set()
        await release.wait()  # cmd is waiting now: batches flow meanwhile
        return {"held": args["n"]}

    site.commands.register("hold", hold)
    key_file = write_key(server_key, tmp_path / "headend.pem")
    try:
        running = asyncio.create_task(asyncio.to_thread(cli.main, cmd_argv(
            site, key_file, "--gw", GW, "--op", "hold", "--args", '{"n": 7}', "--id", "c-hold")))
        await started.wait()
        for i in range(12):  # about one batch each, all while cmd waits for its result
            store.add_event("probe", meter_id=None, data={"i": i, "pad": "x" * 700},
                            ts_ms=1_700_000_000_000 + i)
        site.uplink.wake()
        await site.drained()
        release.set()
        assert await running == 0
        await site.drained()
        result = json.loads(capsys.readouterr().out)
        assert result["gw"] == GW and result["id"] == "c-hold" and result["op"] == "hold"
        assert result["ok"] is True and result["r"] == {"held": 7}
        assert site.hstore.anomalies() == []  # no false gap: all batches reached the head-end
        assert site.headend.stats.refused == 0
        assert site.headend.stats.stored >= 12
        probes = [r for r in site.hstore.export(GW) if r["kind"] == "event"]
        assert [r["body"]["d"]["i"] for r in probes] == list(range(12))
    finally:
        release.set()
        await site.stop()


async def test_cmd_refused_by_the_gateway_prints_it_and_exits_1(
        site: Site, server_key: Ed25519PrivateKey, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    key_file = write_key(server_key, tmp_path / "headend.pem")
    assert await asyncio.to_thread(cli.main, cmd_argv(site, key_file, "--gw", GW,
                                                      "--op", "no.such.op")) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and result["r"] == {"reason": "unknown_op"}


def test_cmd_times_out_with_exit_3(tmp_path: Path, broker: Mosquitto,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    HeadendStore(tmp_path / "headend.db").close()
    assert cli.main(["keys", "init", "--state", str(tmp_path)]) == 0
    capsys.readouterr()
    assert cli.main(["cmd", "--broker", broker.url, "--state", str(tmp_path),
                     "--db", str(tmp_path / "headend.db"), "--gw", "offline-gw", "--op", "ping",
                     "--id", "c-late", "--timeout", "0.5"]) == 3
    line = one_error_line(capsys)
    assert "c-late" in line and "offline-gw" in line


async def test_export_json_lines(site: Site, store: Store,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    store.add_event("relay_open", meter_id="m1", data={"credit": "0.00"}, ts_ms=1_700_000_000_000)
    site.uplink.wake()
    await site.drained()
    assert cli.main(["export", "--db", str(site.hstore.path), "--gw", GW]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1
    assert lines[0]["kind"] == "event" and lines[0]["t_ms"] == 1_700_000_000_000
    assert lines[0]["body"] == {"e": "relay_open", "s": "info", "d": {"credit": "0.00"}, "m": "m1"}


async def test_demo_helpers(tmp_path: Path, broker: Mosquitto, store: Store) -> None:
    import asyncio

    from uplink.commands import CommandRegistry
    from uplink.demo import demo_headend, demo_keys
    from uplink.headend.server import run_headend
    from uplink.service import Uplink
    from uplink.settings import UplinkSettings

    keys = demo_keys(tmp_path)
    assert keys_show(tmp_path) == keys_show(tmp_path)  # the same key on a second call
    assert demo_keys(tmp_path).gateway.public_key() == keys.gateway.public_key()
    headend = demo_headend(tmp_path, broker.url, "demo-gw", keys)
    stop = asyncio.Event()
    runner = asyncio.create_task(run_headend(headend, stop))
    uplink = Uplink(store, UplinkSettings(gateway_id="demo-gw", broker_url=broker.url,
                                          batch_interval_s=0.05),
                    keys.gateway, keys.headend.public_key(), CommandRegistry())
    task = asyncio.create_task(uplink.run())
    try:
        await headend.wait_connected()
        store.add_event("demo", meter_id=None, data={}, ts_ms=1)
        uplink.wake()
        assert await uplink.flush(30)
        assert headend.stats.stored == 1 and headend.stats.acks_sent >= 1
    finally:
        task.cancel()
        stop.set()
        await asyncio.gather(task, runner, return_exceptions=True)
        headend.store.close()


def test_result_reader_ignores_results_stored_before_the_command(tmp_path: Path) -> None:
    HeadendStore(tmp_path / "headend.db").close()

    def store_result(rid: int, cmd_id: str, ok: bool) -> None:
        body = json.dumps({"cmd": cmd_id, "op": "ping", "ok": ok, "r": {"n": rid}})
        with sqlite3.connect(tmp_path / "headend.db") as db:
            db.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
                       ("g1", rid, 1, "cmd_result", rid, body))

    store_result(1, "c-again", True)  # an answer to an earlier command with the same id
    reader = command.ResultReader(tmp_path / "headend.db")
    try:
        assert reader.find("g1", "c-again") is None
        store_result(2, "c-other", True)
        store_result(3, "c-again", False)  # e.g. the gateway refusing the re-used id
        result = reader.find("g1", "c-again")
        assert result is not None and (result.ok, result.r, result.t_ms) == (False, {"n": 3}, 3)
        assert reader.find("g2", "c-again") is None
    finally:
        reader.close()
