"""`cmd` on a PostgreSQL head-end: note the command sent, then find its `cmd_result` row."""

import json
import time
from typing import Any

from uplink.codec import Command
from uplink.errors import UplinkError
from uplink.headend.command_result import CommandResult, result_from_row


class PgResults:
    def __init__(self, url: str) -> None:
        from uplink.headend.pg_store import connect  # psycopg: the optional [headend] extra
        self.url = url
        self.conn = connect(url, create=False)
        # Results stored before the command was sent (a re-used --id) must not count.
        row = self.conn.execute("SELECT COALESCE(max(rid), 0) FROM records").fetchone()
        self._after = int(row[0]) if row else 0

    def close(self) -> None:
        self.conn.close()

    def note_sent(self, cmd: Command) -> None:
        self.conn.execute(
            "INSERT INTO commands (id, gw, op, args, sent_ms, exp_ms) VALUES "
            "(%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET sent_ms = excluded.sent_ms",
            (cmd.id, cmd.gw, cmd.op, json.dumps(cmd.args, default=str),
             int(time.time() * 1000), cmd.exp * 1000))

    def find(self, gw: str, cmd_id: str) -> CommandResult | None:
        try:
            row: Any = self.conn.execute(
                "SELECT ts_ms, body::text FROM records WHERE kind = 'cmd_result' AND rid > %s "
                "AND gw = %s AND body ->> 'cmd' = %s ORDER BY rid LIMIT 1",
                (self._after, gw, cmd_id)).fetchone()
        except Exception as exc:  # psycopg.Error: the database went away while waiting
            raise UplinkError(f"{self.url}: cannot read results ({exc})") from None
        return None if row is None else result_from_row(gw, cmd_id, int(row[0]), row[1])
