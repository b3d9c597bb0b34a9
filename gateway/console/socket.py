"""The local control socket: a JSON-lines RPC over a unix socket, server and client.

The service runs `ControlServer` over its `ControlApi`; `gateway console` (no port) and
`gateway console --port` connect with `RemoteApi`, so the same shell works over SSH. One JSON
object per line, UTF-8, at most MAX_LINE_BYTES:

    -> {"id": 1, "method": "login", "params": {"user": "ana", "password": "..."}}
    <- {"id": 1, "result": {"role": "technician"}}
    -> {"id": 2, "method": "read_meter", "params": {"meter_id": "shop-12"}}
    <- {"id": 2, "result": {...}}  or  {"id": 2, "error": {"kind": "control", "message": "..."}}

Error kinds: "login" (refused or locked out), "role" (needs a higher role), "control" (the
operation failed; the message says what to do), "protocol" (bad request). Every method except
login needs a login first. The methods, the role each needs, their params and the client's
timeout are the operations declared on `ControlApi` (`OPERATIONS`); nothing here lists them.
The server records audit events under the logged-in name, whatever the client claims. Socket
access is further limited by its file mode (0660).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import Refused
from gateway.console.api import OPERATIONS, ControlApi, ControlError, Role
from gateway.console.codec import CodecError, from_plain, to_plain
from gateway.console.operations import CALL_TIMEOUT_S, Operation
from gateway.console.shell import Authenticator, LoginRefused

LOGGER = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024  # a request is small; a longer line is garbage or an attack
MAX_PROTOCOL_ERRORS = 5  # bad requests tolerated before the server hangs up
SOCKET_MODE = 0o660  # owner and the gateway group (technicians log in over SSH)


class _RoleRefused(Refused):
    """Not logged in, or the logged-in role is too low for the method."""


class Connection:
    """One client: its login state and its requests, one JSON line each (`handle`); the
    server feeds it the socket's lines, the fuzzer feeds it lines directly."""

    def __init__(self, api: ControlApi, auth: Authenticator, writer: asyncio.StreamWriter):
        self.api, self.auth, self.writer = api, auth, writer
        self.user: str | None = None
        self.role = Role.VIEWER
        self.errors = 0

    async def handle(self, raw: bytes) -> None:
        req_id: Any = None
        try:
            request = json.loads(raw)
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise CodecError("a request is an object with id, method and params")
            req_id = request.get("id")
            params = request.get("params", {})
            if not isinstance(params, dict):
                raise CodecError("params must be an object")
            result = await self._dispatch(request["method"], params)
            self._send({"id": req_id, "result": result})
        except (ValueError, UnicodeDecodeError) as exc:  # JSON and CodecError
            self.errors += 1
            self._error(req_id, "protocol", str(exc)[:200])
        except LoginRefused as exc:
            self._error(req_id, "login", str(exc))
        except _RoleRefused as exc:
            self._error(req_id, "role", exc.detail)  # the kind says it; the words are for people
        except ControlError as exc:
            self._error(req_id, "control", str(exc))

    async def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        if method == "login":
            return await self._login(params)
        op = OPERATIONS.get(method)
        if op is None:
            raise CodecError(f"unknown method {method[:40]!r}")
        if self.user is None:
            raise _RoleRefused("not_logged_in", "log in first (method login)")
        if self.role < op.role:
            raise _RoleRefused("role_too_low", f"{method} needs the {op.role.name.lower()} role")
        if set(params) != set(op.params):
            raise CodecError(f"{method} takes params {sorted(op.params)}")
        args = {k: from_plain(tp, params[k], k) for k, tp in op.params.items()}
        if op.caller is not None:
            args[op.caller] = self.user  # never trust the client's name
        if op.caller_role is not None:
            args[op.caller_role] = self.role.name.lower()  # nor its role
        return to_plain(await getattr(self.api, method)(**args))

    async def _login(self, params: dict[str, Any]) -> Any:
        user, password = params.get("user"), params.get("password")
        if not isinstance(user, str) or not isinstance(password, str):
            raise CodecError("login takes params user and password (strings)")
        self.role = await self.auth.login(user, password)
        self.user = user
        return {"role": self.role.name.lower()}

    def _error(self, req_id: Any, kind: str, message: str) -> None:
        self._send({"id": req_id, "error": {"kind": kind, "message": message}})

    def _send(self, obj: dict[str, Any]) -> None:
        self.writer.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")


class ControlServer:
    """Serves a ControlApi on a unix socket; one task per client."""

    def __init__(self, api: ControlApi, auth: Authenticator, path: str | Path) -> None:
        self.api, self.auth, self.path = api, auth, Path(path)
        self._server: asyncio.Server | None = None
        # Server.wait_closed does not wait for the client handlers (3.11): close() ends them
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._remove_stale_socket()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_unix_server(
            self._client, path=str(self.path), limit=MAX_LINE_BYTES
        )
        os.chmod(self.path, SOCKET_MODE)
        LOGGER.info("control_socket_listening", extra={"path": str(self.path)})

    def _remove_stale_socket(self) -> None:
        """A socket file left by a crash blocks bind(); one that answers is another service."""
        if not self.path.exists():
            return
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(self.path))
        except OSError:
            self.path.unlink()
            return
        finally:
            probe.close()
        raise ControlError(f"{self.path}: another gateway service is already listening; stop it")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        clients = list(self._clients)
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(self.api, self.auth, writer)
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            while conn.errors < MAX_PROTOCOL_ERRORS:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.LimitOverrunError:
                    conn.errors = MAX_PROTOCOL_ERRORS
                    conn._error(None, "protocol", f"line longer than {MAX_LINE_BYTES} bytes")
                    break
                await conn.handle(line)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away, possibly mid-command: nothing to clean up
        finally:
            LOGGER.info("control_client_gone", extra={"user": conn.user, "errors": conn.errors})
            writer.close()
            try:
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            finally:
                self._clients.discard(task)


class RemoteApi:
    """`ControlApi` and `Authenticator` over the control socket (one request at a time).

    The operations are not written out: each is looked up in `OPERATIONS` (params, timeout,
    result type) when called.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._next_id = 0
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, path: str | Path) -> RemoteApi:
        try:
            reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_LINE_BYTES)
        except OSError as exc:
            raise ControlError(
                f"cannot reach the gateway service at {path} ({exc.strerror}); is it running?"
                " Check 'systemctl status gateway' or [console] socket in the config."
            ) from exc
        return cls(reader, writer)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def call(self, method: str, params: dict[str, Any], timeout_s: float) -> Any:
        async with self._lock:
            self._next_id += 1
            request = {"id": self._next_id, "method": method, "params": params}
            try:
                self._writer.write(json.dumps(request).encode() + b"\n")
                async with asyncio.timeout(timeout_s):
                    line = await self._reader.readuntil(b"\n")
                reply = json.loads(line)
            except TimeoutError:
                raise ControlError(f"the service did not answer {method} in {timeout_s:.0f} s"
                                   "; check 'log' and try again") from None
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                raise ControlError(f"lost the gateway service ({exc}); reconnect") from exc
        return self.result_of(method, reply)

    @staticmethod
    def result_of(method: str, reply: Any) -> Any:
        """The decoded result of a reply to `method`, or its error raised."""
        if not isinstance(reply, dict):
            raise ControlError("the service sent a malformed reply; reconnect")
        error = reply.get("error")
        if isinstance(error, dict):
            message = str(error.get("message", "unknown error"))
            if error.get("kind") == "login":
                raise LoginRefused(message)
            raise ControlError(message)
        op = OPERATIONS.get(method)
        if op is None:  # login
            return reply.get("result")
        try:
            return from_plain(op.result, reply.get("result"), method)
        except CodecError as exc:
            raise ControlError(f"the service sent a malformed reply ({exc})") from exc

    async def login(self, name: str, password: str) -> Role:
        result = await self.call("login", {"user": name, "password": password}, CALL_TIMEOUT_S)
        try:
            return Role.parse(result["role"])
        except (TypeError, KeyError, ValueError) as exc:
            raise ControlError("the service sent a malformed login reply") from exc

    async def invoke(self, op: Operation, *args: Any, **kwargs: Any) -> Any:
        """Call one declared operation: encode its params, wait its timeout, decode its result."""
        params = op.bind(args, kwargs)
        return await self.call(op.name, {k: to_plain(v) for k, v in params.items()},
                               op.timeout(params))

    # Every ControlApi operation is an attribute: the proxy is derived from OPERATIONS, so a
    # new operation needs nothing here. mypy sees the operations through this __getattr__.
    if TYPE_CHECKING:
        def __getattr__(self, name: str) -> Any: ...
    else:
        def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
            op = OPERATIONS.get(name)
            if op is None:
                raise AttributeError(name)
            return functools.partial(self.invoke, op)
