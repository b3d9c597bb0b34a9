"""Each console operation is declared once: the socket, the client, the shell and the fake
follow the declaration."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from gateway.console.api import OPERATIONS, ControlApi, ControlError
from gateway.console.commands import COMMANDS
from gateway.console.operations import Role, declared, operation
from gateway.console.socket import RemoteApi
from tests.gateway.console.memory_api import InMemoryApi

# shell command -> the one operation it runs (config runs three; whoami none)
COMMAND_OPERATION = {
    "status": "status", "meters": "meters", "read": "read_meter", "scan": "scan_bus",
    "relay": "set_relay", "credit": "credit", "topup": "topup", "emergency": "emergency",
    "log": "log_lines", "restart": "restart", "keys": "keys_show", "uplink": "uplink_flush",
    "time": "set_time", "export": "export",
}


def test_every_method_of_the_api_is_a_declared_operation() -> None:
    methods = [n for n, v in vars(ControlApi).items()
               if inspect.iscoroutinefunction(v) and not n.startswith("_")]
    assert methods == list(OPERATIONS)
    assert all(op.help for op in OPERATIONS.values())


def test_shell_commands_take_role_and_summary_from_their_operation() -> None:
    for command, name in COMMAND_OPERATION.items():
        assert COMMANDS[command].role is OPERATIONS[name].role, command
        assert COMMANDS[command].summary.startswith(OPERATIONS[name].help), command
    assert COMMANDS["config"].role is OPERATIONS["config_show"].role


def test_the_fake_implements_operations_with_the_declared_params() -> None:
    for name, op in OPERATIONS.items():
        impl = vars(InMemoryApi).get(name)
        if impl is not None:
            assert list(inspect.signature(impl).parameters)[1:] == list(op.params), name


async def test_an_operation_the_fake_lacks_is_not_available() -> None:
    # a fake with none of the methods written out: every operation falls to __getattr__
    bare: Any = type("Bare", (), {"__getattr__": InMemoryApi.__getattr__})()
    with pytest.raises(ControlError, match="status is not available"):
        await bare.status()
    with pytest.raises(TypeError):
        await bare.credit()  # missing meter_id
    with pytest.raises(AttributeError):
        _ = InMemoryApi().no_such_operation


def test_the_client_proxies_every_declared_operation() -> None:
    client = object.__new__(RemoteApi)  # no connection needed to look the methods up
    for name in OPERATIONS:
        assert callable(getattr(client, name))
    with pytest.raises(AttributeError):
        _ = client.drop_tables


def test_timeouts_and_caller_come_from_the_declaration() -> None:
    assert OPERATIONS["scan_bus"].timeout({"bus": "radio", "seconds": 100}) > 100
    assert OPERATIONS["export"].timeout({}) > OPERATIONS["status"].timeout({})
    assert OPERATIONS["record_audit"].caller == "user"
    assert OPERATIONS["config_set"].role is Role.ADMIN


def test_a_declaration_naming_a_missing_param_is_refused() -> None:
    class Broken:
        @operation(Role.VIEWER, "x", caller="who")
        async def x(self, user: str) -> None: ...

    with pytest.raises(TypeError, match="who"):
        declared(Broken)
