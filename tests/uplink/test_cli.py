"""Key commands (`gateway keys`, `gateway-headend keys`), head-end export and cmd over a broker."""

import json
import stat
from pathlib import Path

import pytest

from gateway.cmd_keys import key_path, keys_init, keys_show
from hil.uplink_support.site import GW, Site
from storage.store import Store
from uplink.errors import KeyFileError, UplinkError
from uplink.headend import cli
from uplink.keys import load_private_key, load_public_key
from uplink.localbroker import Mosquitto


def test_gateway_keys_init_and_show(tmp_path: Path) -> None:
    pem = keys_init(tmp_path / "state")
    path = key_path(tmp_path / "state")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert keys_show(tmp_path / "state") == pem
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        keys_init(tmp_path / "state")
    assert path.read_bytes() == before
    (tmp_path / "pub.pem").write_text(pem)
    load_public_key(tmp_path / "pub.pem")


def test_key_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"missing\.pem"):
        load_private_key(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(KeyFileError, match=r"junk\.pem"):
        load_public_key(tmp_path / "junk.pem")
    with pytest.raises(UplinkError, match="GW=PUBKEY"):
        cli.parse_enrolment(["no-equals-sign"])


def test_headend_cli_keys_cmd_and_export(tmp_path: Path, broker: Mosquitto,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "init", "--state", str(tmp_path)]) == 0
    pem = capsys.readouterr().out
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert cli.main(["keys", "show", "--state", str(tmp_path)]) == 0
    assert capsys.readouterr().out == pem
    assert cli.main(["keys", "init", "--state", str(tmp_path)]) == 1
    assert cli.main(["cmd", "--broker", broker.url, "--state", str(tmp_path), "--gw", "g1",
                     "--op", "ping", "--id", "c-42"]) == 0
    assert capsys.readouterr().out.strip() == "c-42"
    assert cli.main(["export", "--db", str(tmp_path / "empty.db")]) == 0
    assert capsys.readouterr().out == ""


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
