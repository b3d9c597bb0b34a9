"""A gateway's `cmd_result` as the serving head-end stored it, read back for `cmd`.

Its own module so both result readers (SQLite in command.py, PostgreSQL in pg_results.py) build
it without importing each other.
"""

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A gateway's answer to one command, as stored by the serving head-end."""

    gw: str
    id: str
    op: str | None
    ok: bool
    r: dict[str, Any]
    t_ms: int

    def as_json(self) -> str:
        return json.dumps({"gw": self.gw, "id": self.id, "op": self.op, "ok": self.ok,
                           "r": self.r, "t_ms": self.t_ms}, separators=(",", ":"))


def result_from_row(gw: str, cmd_id: str, ts_ms: int, body_json: str) -> CommandResult:
    body = json.loads(body_json)
    return CommandResult(gw, cmd_id, body.get("op"), bool(body.get("ok")),
                         body.get("r") or {}, ts_ms)
