"""Signed commands end to end: accepted ops, and every refusal yields one result record."""

import asyncio
import time
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.harness.uplink_site import GW, Site
from uplink.codec import Ack, Command, encode_ack, encode_command
from uplink.commands import CommandContext, CommandRefused
from uplink.cose import sign1
from uplink.settings import topics

TOPICS = topics("mtr", GW)
# Polling bound while waiting for a result record to come back up.
RESULT_WAIT_S = 20.0


async def results(site: Site, n: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(RESULT_WAIT_S):
        while True:
            site.uplink.wake()
            found = [r for r in site.headend.store.export(GW) if r["kind"] == "cmd_result"]
            if len(found) >= n:
                return found
            await asyncio.sleep(0.05)


def signed_cmd(key: Ed25519PrivateKey, cmd_id: str, op: str = "ping", *, gw: str = GW,
               exp: int | None = None, args: dict[str, Any] | None = None) -> bytes:
    cmd = Command(cmd_id, gw, exp if exp is not None else int(time.time()) + 60, op, args or {})
    return sign1(encode_command(cmd), key, b"headend")


async def test_ping_status_and_registered_op(site: Site, server_key: Ed25519PrivateKey) -> None:
    async def echo(args: dict[str, Any], ctx: CommandContext) -> dict[str, Any]:
        if args.get("refuse"):
            raise CommandRefused("not_allowed")
        return {"echo": args["x"], "cmd": ctx.command_id}

    site.commands.register("echo", echo)
    await site.headend.send_command(GW, "ping", cmd_id="c-ping")
    await site.headend.send_command(GW, "status", cmd_id="c-status")
    await site.headend.send_command(GW, "echo", {"x": "1.5"}, cmd_id="c-echo")
    await site.headend.send_command(GW, "echo", {"refuse": True}, cmd_id="c-no")
    by_id = {r["body"]["cmd"]: r["body"] for r in await results(site, 4)}
    assert by_id["c-ping"]["ok"] is True and by_id["c-ping"]["r"]["pong"] is True
    assert by_id["c-status"]["ok"] is True and "backlog" in by_id["c-status"]["r"]
    assert by_id["c-echo"]["r"] == {"echo": "1.5", "cmd": "c-echo"}
    assert by_id["c-no"] == {"cmd": "c-no", "op": "echo", "ok": False,
                             "r": {"reason": "not_allowed"}}


async def test_refusals_each_yield_a_result(site: Site, server_key: Ed25519PrivateKey) -> None:
    forger = Ed25519PrivateKey.generate()
    ping = signed_cmd(server_key, "c-1")
    cases = [
        ping, ping,  # the second is a replay
        signed_cmd(forger, "c-forged"),
        signed_cmd(server_key, "c-other", gw="gw-other"),
        signed_cmd(server_key, "c-expired", exp=int(time.time()) - 10),
        signed_cmd(server_key, "c-unknown", "self_destruct"),
        b"\xd2\x84garbage",  # truncated COSE
        cbor2.dumps(cbor2.CBORTag(17, [b"", {}, b"", b""])),  # wrong tag
        sign1(b"\xff\xfe", server_key, b"headend"),  # signed, payload not CBOR
    ]
    for sent, raw in enumerate(cases, 1):
        site.headend.publish_signed(TOPICS["cmd"], raw)
        found = await results(site, sent)  # in arrival order (the replay comes second)
    reasons = sorted((r["body"]["cmd"] or "-", r["body"]["r"].get("reason") or "ok")
                     for r in found)
    assert reasons == sorted([
        ("c-1", "ok"), ("c-1", "replayed"), ("c-forged", "bad_signature"),
        ("c-other", "other_gateway"), ("c-expired", "expired"), ("c-unknown", "unknown_op"),
        ("-", "malformed"), ("-", "malformed"), ("-", "malformed"),
    ])


async def test_bad_acks_ignored(site: Site, server_key: Ed25519PrivateKey, store: Any,
                                caplog: pytest.LogCaptureFixture) -> None:
    forger = Ed25519PrivateKey.generate()
    store.add_event("e", meter_id=None, data={}, ts_ms=1)
    site.uplink.wake()
    await site.drained()
    head = site.uplink.state()["head"]
    bad = [
        sign1(encode_ack(Ack(GW, head + 5)), server_key, b"headend"),  # never sent
        sign1(encode_ack(Ack("gw-other", 1)), server_key, b"headend"),  # other gateway
        sign1(encode_ack(Ack(GW, head)), forger, b"headend"),  # forged
        b"\x00" * 10_000,  # oversized garbage
        b"\xd2",  # truncated
    ]
    for raw in bad:
        site.headend.publish_signed(TOPICS["ack"], raw)
    store.add_event("e2", meter_id=None, data={}, ts_ms=2)
    site.uplink.wake()
    await site.drained()
    state = site.uplink.state()
    assert state["last_ack"] == state["head"] == head + 1
    refused = [r for r in caplog.records if r.getMessage() == "ack_refused"]
    assert len(refused) == len(bad)
