"""What remote management reads back from the serving head-end's records, on either store: the
outcome of a config push (its `config_applied` / `config_rolled_back` event) and a gateway's
latest `health` record."""

import json
import sqlite3
from pathlib import Path
from typing import Any, Final

from uplink.errors import UplinkError
from uplink.headend.db import is_postgres
from uplink.headend.store import open_database

OUTCOME_EVENTS: Final = ("config_applied", "config_rolled_back")
# how a software update ends (docs/update.md); update_rollback_started is on the way
UPDATE_OUTCOME_EVENTS: Final = ("update_applied", "update_rolled_back", "update_refused")


class RemoteRecords:
    """Read-only; `mark()` before sending so that only newer records count."""

    def __init__(self, db: Path | str) -> None:
        self.db = str(db)
        self._pg: Any = None
        self._lite: sqlite3.Connection | None = None
        if is_postgres(self.db):
            from uplink.headend.pg_store import connect  # psycopg: the [headend] extra
            self._pg = connect(self.db, create=False)
        else:
            self._lite = open_database(Path(db), create=False)

    def close(self) -> None:
        (self._pg or self._lite).close()  # type: ignore[union-attr]

    def _one(self, lite_sql: str, pg_sql: str, params: tuple[Any, ...]) -> Any:
        try:
            if self._pg is not None:
                return self._pg.execute(pg_sql, params).fetchone()
            assert self._lite is not None
            return self._lite.execute(lite_sql, params).fetchone()
        except Exception as exc:  # sqlite3.Error / psycopg.Error: the store went away
            raise UplinkError(f"{self.db}: cannot read records ({exc})") from None

    def mark(self) -> int:
        row = self._one("SELECT COALESCE(MAX(rowid), 0) FROM records",
                        "SELECT COALESCE(max(rid), 0) FROM records", ())
        return int(row[0])

    def config_outcome(self, gw: str, sha256: str, after: int) -> dict[str, Any] | None:
        """The event that ends the push of `sha256` on `gw`, stored after `after`."""
        row = self._one(
            "SELECT ts_ms, body FROM records WHERE +gw = ? AND kind = 'event' AND rowid > ? "
            "AND json_extract(body, '$.e') IN (?, ?) AND json_extract(body, '$.d.sha256') = ? "
            "ORDER BY rowid LIMIT 1",
            "SELECT ts_ms, body::text FROM records WHERE gw = %s AND kind = 'event' AND "
            "rid > %s AND body ->> 'e' IN (%s, %s) AND body -> 'd' ->> 'sha256' = %s "
            "ORDER BY rid LIMIT 1",
            (gw, after, *OUTCOME_EVENTS, sha256))
        if row is None:
            return None
        body = json.loads(row[1])
        return {"gw": gw, "event": body.get("e"), "t_ms": int(row[0]), "data": body.get("d")}

    def update_outcome(self, gw: str, version: str, after: int) -> dict[str, Any] | None:
        """The event that ends the update of `gw` to `version`, stored after `after`."""
        row = self._one(
            "SELECT ts_ms, body FROM records WHERE +gw = ? AND kind = 'event' AND rowid > ? "
            "AND json_extract(body, '$.e') IN (?, ?, ?) "
            "AND json_extract(body, '$.d.version') = ? ORDER BY rowid LIMIT 1",
            "SELECT ts_ms, body::text FROM records WHERE gw = %s AND kind = 'event' AND "
            "rid > %s AND body ->> 'e' IN (%s, %s, %s) AND body -> 'd' ->> 'version' = %s "
            "ORDER BY rid LIMIT 1",
            (gw, after, *UPDATE_OUTCOME_EVENTS, version))
        if row is None:
            return None
        body = json.loads(row[1])
        return {"gw": gw, "event": body.get("e"), "t_ms": int(row[0]), "data": body.get("d")}

    def latest_health(self, gw: str) -> dict[str, Any] | None:
        row = self._one(
            "SELECT ts_ms, body FROM records WHERE gw = ? AND kind = 'health' "
            "ORDER BY id DESC LIMIT 1",
            "SELECT ts_ms, body::text FROM records WHERE gw = %s AND kind = 'health' "
            "ORDER BY id DESC LIMIT 1", (gw,))
        if row is None:
            return None
        return {"gw": gw, "t_ms": int(row[0]), **json.loads(row[1])}
