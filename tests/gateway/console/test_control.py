"""The control socket: login, roles, audit under the server's name, and hostile clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import Refused
from gateway.console.accounts import Account, ConsoleSettings, LoginGuard, hash_password
from gateway.console.api import OPERATIONS, ControlError, Role
from gateway.console.shell import LocalAuthenticator, LoginRefused
from gateway.console.socket import MAX_LINE_BYTES, ControlServer, RemoteApi
from tests.gateway.console.memory_api import InMemoryApi

ACCOUNTS = {
    "ana": Account("ana", Role.TECHNICIAN, hash_password("ana-pass-1")),
    "vic": Account("vic", Role.VIEWER, hash_password("vic-pass-1")),
}


class Harness:
    def __init__(self, path: Path) -> None:
        self.api = InMemoryApi()
        self.clock = [0.0]
        settings_ = ConsoleSettings(accounts=ACCOUNTS, lockout_after=2, lockout_base_s=10)
        guard = LoginGuard(settings_, lambda: self.clock[0])
        self.server = ControlServer(self.api, LocalAuthenticator(settings_, guard), path)
        self.path = path

    async def raw(self, *lines: bytes) -> list[dict[str, Any]]:
        reader, writer = await asyncio.open_unix_connection(str(self.path), limit=2**20)
        replies = []
        for line in lines:
            try:
                writer.write(line)
                await writer.drain()
                data = await reader.readline()
            except ConnectionError:
                break  # the server hung up on us
            if not data:
                break
            replies.append(json.loads(data))
        writer.close()
        return replies


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path / "run" / "control.sock")
    await h.server.start()
    yield h
    await h.server.close()


async def test_login_then_calls_with_exact_values(harness: Harness) -> None:
    api = await RemoteApi.connect(harness.path)
    assert await api.login("ana", "ana-pass-1") == Role.TECHNICIAN
    info = await api.topup("shop-12", Decimal("0.10"), "ref-1")
    assert info.balance == Decimal("12.60")
    reading = await api.read_meter("shop-12")
    assert reading.quantities[1].value == Decimal("230.1")
    assert reading.quantities[2].value == "21030042"
    with pytest.raises(ControlError, match="type 'meters' for the list"):
        await api.credit("nope")
    await api.close()


async def test_methods_need_login_and_role(harness: Harness) -> None:
    api = await RemoteApi.connect(harness.path)
    with pytest.raises(ControlError, match="log in first"):
        await api.status()
    await api.login("vic", "vic-pass-1")
    assert (await api.status()).gateway_id == "gw-test-01"
    with pytest.raises(ControlError, match="needs the technician role"):
        await api.set_relay("shop-12", False)
    assert harness.api.relay["shop-12"] is True
    await api.close()


async def test_each_operation_is_refused_below_its_declared_role(harness: Harness) -> None:
    login = b'{"id": 0, "method": "login", "params": {"user": "vic", "password": "vic-pass-1"}}\n'
    calls = [json.dumps({"id": 1, "method": name, "params": {p: None for p in op.params}}
                        ).encode() + b"\n" for name, op in OPERATIONS.items()]
    # one connection each: a viewer's None for a required parameter is a protocol error, and
    # the server hangs up after MAX_PROTOCOL_ERRORS of them on one connection
    replies = [(await harness.raw(login, call))[1] for call in calls]
    refused = {name: reply.get("error", {}).get("kind") == "role"
               for name, reply in zip(OPERATIONS, replies, strict=True)}
    assert refused == {name: op.role > Role.VIEWER for name, op in OPERATIONS.items()}


async def test_audit_user_is_the_logged_in_one(harness: Harness) -> None:
    api = await RemoteApi.connect(harness.path)
    await api.login("vic", "vic-pass-1")
    await api.record_audit("root", "relay", ["shop-12", "off"], "ok")
    assert harness.api.audits == [("vic", "relay", ["shop-12", "off"], "ok")]
    await api.close()


async def test_lockout_over_the_socket(harness: Harness) -> None:
    api = await RemoteApi.connect(harness.path)
    for _ in range(2):
        with pytest.raises(LoginRefused, match="incorrect"):
            await api.login("ana", "bad")
    with pytest.raises(LoginRefused, match="wait 10 s"):
        await api.login("ana", "ana-pass-1")
    harness.clock[0] += 11
    assert await api.login("ana", "ana-pass-1") == Role.TECHNICIAN
    await api.close()


async def test_bad_requests_get_protocol_errors(harness: Harness) -> None:
    replies = await harness.raw(
        b"not json\n",
        b'{"id": 1, "method": "status"}\n',
        b'{"id": 2, "method": "login", "params": {"user": "ana", "password": "ana-pass-1"}}\n',
        b'{"id": 3, "method": "credit", "params": {"meter": "shop-12"}}\n',
        b'{"id": 4, "method": "topup", "params": {"meter_id": "shop-12", "amount": 5,'
        b' "reference": "x"}}\n',
        b'{"id": 5, "method": "drop_tables", "params": {}}\n',
        b"\xff\xfe\x00\n",
        b'{"id": 6, "method": "status", "params": {}}\n',
    )
    kinds = [r.get("error", {}).get("kind") for r in replies]
    assert kinds[:2] == ["protocol", "role"] and kinds[2] is None
    assert kinds[3:5] == ["protocol", "protocol"]  # wrong param name; a float-free amount
    assert "amount" in replies[4]["error"]["message"]
    assert kinds[5:] == ["protocol", "protocol"]
    assert len(replies) == 7  # the fifth protocol error ends the connection: no 8th reply
    assert harness.api.credit_by_meter["shop-12"] == Decimal("12.50")


async def test_overlong_line_and_mid_request_disconnect(harness: Harness) -> None:
    replies = await harness.raw(b"x" * (MAX_LINE_BYTES + 10) + b"\n")
    assert replies[0]["error"]["kind"] == "protocol"
    _reader, writer = await asyncio.open_unix_connection(str(harness.path))
    writer.write(b'{"id": 1, "method": "log')  # and hang up mid-request
    writer.close()
    api = await RemoteApi.connect(harness.path)
    await api.login("vic", "vic-pass-1")
    assert await api.bus_names() == ["rs485-1", "radio"]
    await api.close()


async def test_unreachable_socket_says_what_to_check(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="is it running"):
        await RemoteApi.connect(tmp_path / "none.sock")


async def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    path.write_text("")  # left by a crash
    h = Harness(path)
    await h.server.start()
    await h.server.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"") + b"\n"),
                      min_size=1, max_size=4))
async def test_fuzzed_lines_never_kill_the_server(harness: Harness, lines: list[bytes]) -> None:
    await harness.raw(*lines)
    api = await RemoteApi.connect(harness.path)
    assert await api.login("vic", "vic-pass-1") == Role.VIEWER
    await api.close()


async def test_a_refused_login_is_a_coded_refusal_that_shows_only_its_message() -> None:
    settings_ = ConsoleSettings(accounts=ACCOUNTS, lockout_after=1, lockout_base_s=10)
    auth = LocalAuthenticator(settings_, LoginGuard(settings_, lambda: 0.0))
    with pytest.raises(LoginRefused) as wrong:
        await auth.login("ana", "bad")
    assert wrong.value.reason == "login_incorrect" and wrong.value.is_coded
    assert str(wrong.value).startswith("Login incorrect.")  # shown on the line as it is
    with pytest.raises(LoginRefused) as locked:
        await auth.login("ana", "ana-pass-1")
    assert locked.value.reason == "locked_out"
    assert isinstance(locked.value, Refused)
