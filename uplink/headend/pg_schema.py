"""PostgreSQL schema of the head-end, as numbered migrations applied once each, in order.

`schema_version` holds the highest applied number; a migration is appended, never edited.
Several workers starting at once take an advisory lock so only one migrates.
"""

from typing import Final

# Any fixed 64-bit number: the lock id every worker uses while it migrates.
MIGRATION_LOCK: Final = 0x6D74725F68656164

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: chain state, batches, records, anomalies, enrolment, status, commands.
    """
    CREATE TABLE gateways (
        gw TEXT PRIMARY KEY,
        contiguous BIGINT NOT NULL DEFAULT 0,       -- highest seq held with no gap below
        has_known_gaps BOOLEAN NOT NULL DEFAULT false,
        last_batch_ms BIGINT);
    CREATE TABLE enrolment (
        gw TEXT PRIMARY KEY, public_key TEXT NOT NULL, added_ms BIGINT NOT NULL,
        revoked_ms BIGINT);
    CREATE TABLE gateway_status (
        gw TEXT PRIMARY KEY, status TEXT NOT NULL, ts_ms BIGINT NOT NULL);
    CREATE TABLE batches (
        gw TEXT NOT NULL, seq BIGINT NOT NULL, sha256 BYTEA NOT NULL, prev BYTEA NOT NULL,
        raw BYTEA NOT NULL, received_ms BIGINT NOT NULL, n_records INTEGER NOT NULL,
        PRIMARY KEY (gw, seq));
    CREATE TABLE records (
        rid BIGINT GENERATED ALWAYS AS IDENTITY,
        gw TEXT NOT NULL, id BIGINT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL,
        ts_ms BIGINT NOT NULL, meter TEXT, body JSON NOT NULL,
        PRIMARY KEY (gw, id));
    CREATE INDEX records_meter_time ON records (gw, meter, ts_ms) WHERE meter IS NOT NULL;
    -- only results are looked up by rid (`cmd`): readings pay no index for it
    CREATE INDEX records_results ON records (rid) WHERE kind = 'cmd_result';
    CREATE TABLE anomalies (
        aid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        gw TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
        ts_ms BIGINT NOT NULL, closed_ms BIGINT);
    CREATE INDEX anomalies_gw ON anomalies (gw, aid);
    CREATE TABLE known_gaps (
        gw TEXT NOT NULL, first BIGINT NOT NULL, last BIGINT NOT NULL, sha256 BYTEA NOT NULL,
        PRIMARY KEY (gw, first, last));
    CREATE TABLE commands (
        id TEXT PRIMARY KEY, gw TEXT NOT NULL, op TEXT NOT NULL, args JSONB NOT NULL,
        sent_ms BIGINT NOT NULL, exp_ms BIGINT NOT NULL);
    -- one view per record kind: what a back office queries
    CREATE VIEW readings AS SELECT gw, id, meter, ts_ms, body -> 'values' AS "values"
        FROM records WHERE kind = 'reading';
    CREATE VIEW intervals AS SELECT gw, id, meter, ts_ms, body FROM records
        WHERE kind = 'interval';
    CREATE VIEW ledger AS SELECT gw, id, meter, ts_ms, body FROM records WHERE kind = 'ledger';
    CREATE VIEW events AS SELECT gw, id, meter, ts_ms, body ->> 'e' AS event,
        body ->> 's' AS severity, body -> 'd' AS data FROM records WHERE kind = 'event';
    CREATE VIEW command_results AS SELECT r.gw, r.body ->> 'cmd' AS id, r.body ->> 'op' AS op,
        (r.body ->> 'ok')::boolean AS ok, r.body -> 'r' AS result, r.ts_ms, c.sent_ms
        FROM records r LEFT JOIN commands c ON c.id = r.body ->> 'cmd'
        WHERE r.kind = 'cmd_result';
    """,
    # 2: web console accounts (roles as the gateway console has; optional scope).
    """
    CREATE TABLE accounts (
        name TEXT PRIMARY KEY, pw_hash TEXT NOT NULL, role TEXT NOT NULL,
        gateways TEXT, meters TEXT);  -- comma-separated scope; NULL: all
    """,
)
