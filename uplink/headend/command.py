"""`gateway-headend cmd`: publish one signed command, then wait for its `cmd_result`.

The gateway answers a command with a `cmd_result` record inside its signed, hash-chained
batches, and only the serving head-end (`gateway-headend serve`) may consume those: a second
subscriber in the shared group would take batches away from it and make it record false gaps.
So the sender holds an MQTT connection without any subscription, only long enough to have its
command acknowledged by the broker, and reads the result from the serving head-end's database,
the back office's record of everything the gateway sent.
"""

import asyncio
import logging
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from uplink.codec import Command, encode_command
from uplink.cose import sign1
from uplink.errors import UplinkError
from uplink.headend.command_result import CommandResult, result_from_row
from uplink.headend.db import is_postgres
from uplink.headend.pg_results import PgResults
from uplink.headend.server import HEADEND_KID
from uplink.headend.store import open_database
from uplink.mqtt import LinkConfig, LinkHandlers, MqttLink
from uplink.settings import topics

LOGGER = logging.getLogger(__name__)
# How often the serving head-end's database is looked at for the result (a cheap indexed read).
RESULT_POLL_S: Final = 0.2
RESULT_KIND: Final = "cmd_result"


class CommandTimeout(UplinkError):
    """No result within the caller's time; the command may still run later (it is queued)."""


class ResultReader:
    """Read-only view of the serving head-end's records, for one command's result."""

    def __init__(self, db_path: Path | str) -> None:
        self.path = db_path
        if is_postgres(str(db_path)):
            self._pg: PgResults | None = PgResults(str(db_path))
            return
        self._pg = None
        self._db = open_database(Path(db_path), create=False)
        self._after = self._last_rowid()

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
        else:
            self._db.close()

    def note_sent(self, cmd: Command) -> None:
        """PostgreSQL keeps a row per command sent (id, op, args, expiry) beside its result."""
        if self._pg is not None:
            self._pg.note_sent(cmd)

    def _last_rowid(self) -> int:
        # Results stored before the command was sent (a re-used --id) must not count.
        return int(self._db.execute("SELECT COALESCE(MAX(rowid), 0) FROM records").fetchone()[0])

    def find(self, gw: str, cmd_id: str) -> CommandResult | None:
        if self._pg is not None:
            return self._pg.find(gw, cmd_id)
        try:
            # `+gw`: walk only the rows stored since the command (rowid range), never the
            # gateway's whole history through the (gw, id) index, on every poll.
            row = self._db.execute(
                "SELECT ts_ms, body FROM records WHERE +gw = ? AND kind = ? AND rowid > ? "
                "AND json_extract(body, '$.cmd') = ? ORDER BY rowid LIMIT 1",
                (gw, RESULT_KIND, self._after, cmd_id)).fetchone()
        except sqlite3.Error as exc:
            raise UplinkError(f"{self.path}: cannot read results ({exc})") from None
        if row is None:
            return None
        return result_from_row(gw, cmd_id, int(row[0]), row[1])


def sender_link_config(broker_url: str) -> LinkConfig:
    """A publish-only connection: no subscription, so it can never receive a batch."""
    return LinkConfig(url=broker_url, client_id=f"headend-cmd-{uuid.uuid4().hex[:8]}",
                      clean_start=True, backoff_min_s=0.2, backoff_max_s=5.0)


async def publish_once(broker_url: str, topic: str, payload: bytes) -> None:
    """Connect, publish at QoS 1 and return once the broker acknowledged it (PUBACK)."""
    connected = asyncio.Event()
    published: dict[int, int] = {}
    changed = asyncio.Event()

    def on_published(mid: int, reason: int) -> None:
        published[mid] = reason
        changed.set()

    link = MqttLink(sender_link_config(broker_url),
                    LinkHandlers(on_connected=lambda _max: connected.set(),
                                 on_published=on_published), asyncio.get_running_loop())
    link.start()
    try:
        await connected.wait()
        mid = link.publish(topic, payload)
        while mid not in published:
            changed.clear()
            await changed.wait()
    finally:
        await link.stop()
    if published[mid] >= 0x80:
        raise UplinkError(f"broker refused the command on {topic} (reason {published[mid]:#x})")


async def wait_result(reader: ResultReader, gw: str, cmd_id: str) -> CommandResult:
    while True:
        result = await asyncio.to_thread(reader.find, gw, cmd_id)
        if result is not None:
            return result
        await asyncio.sleep(RESULT_POLL_S)


@dataclass(frozen=True, slots=True)
class CommandRequest:
    broker_url: str
    prefix: str
    gw: str
    op: str
    args: dict[str, Any]
    ttl_s: int
    cmd_id: str | None = None


async def send_and_wait(request: CommandRequest, key: Ed25519PrivateKey, db_path: Path | str,
                        timeout_s: float) -> CommandResult:
    """Publish the command, then wait for its result; CommandTimeout after `timeout_s` in all."""
    reader = ResultReader(db_path)  # before publishing: a wrong --db sends nothing
    cmd = Command(request.cmd_id or uuid.uuid4().hex, request.gw,
                  int(time.time()) + request.ttl_s, request.op, request.args)
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        try:
            async with asyncio.timeout_at(deadline):
                await publish_once(request.broker_url,
                                   topics(request.prefix, request.gw)["cmd"],
                                   sign1(encode_command(cmd), key, HEADEND_KID))
        except TimeoutError:
            raise CommandTimeout(f"command {cmd.id} not sent: broker {request.broker_url} did "
                                 f"not take it within {timeout_s:g} s") from None
        LOGGER.info("command_sent", extra={"gw": cmd.gw, "op": cmd.op, "id": cmd.id})
        reader.note_sent(cmd)
        try:
            async with asyncio.timeout_at(deadline):
                return await wait_result(reader, cmd.gw, cmd.id)
        except TimeoutError:
            raise CommandTimeout(f"no result for command {cmd.id} from gateway {cmd.gw} within "
                                 f"{timeout_s:g} s (it stays queued until it expires; a later "
                                 f"result is stored in {db_path})") from None
    finally:
        reader.close()
