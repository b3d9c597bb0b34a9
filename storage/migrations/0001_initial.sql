-- 0001 spine: meters, interned quantities, readings, events, outbox.
-- Applied inside one transaction by storage/migrations.py; user_version is set by the runner.

CREATE TABLE meters (
    mid           INTEGER PRIMARY KEY,          -- small integer used by readings (2-3 bytes)
    id            TEXT    NOT NULL UNIQUE,      -- the meter id of the configuration
    protocol      TEXT,
    bus           TEXT,
    address       TEXT,
    profile       TEXT,
    first_seen_ms INTEGER,
    last_seen_ms  INTEGER,
    last_reading  INTEGER                       -- head of the meter's chain of readings
);

-- (quantity, unit) pairs interned once: a reading stores a small integer per value.
CREATE TABLE quantities (
    qid      INTEGER PRIMARY KEY,
    quantity TEXT NOT NULL,
    unit     TEXT NOT NULL,
    UNIQUE (quantity, unit)
);

-- One row per meter per instant; `vals` is the CBOR blob of storage/codec.py.
-- Not UNIQUE (meter, ts_ms): an unsynchronised clock may repeat an instant after a reboot,
-- and both readings are kept.
-- No (meter, ts_ms) index: with 200 meters each commit would dirty ~200 scattered index
-- pages (SD wear x3). Instead each row links to the meter's previous row (`prev`, no index),
-- meters.last_reading is the chain's head, and the only index is on ts_ms (appended at the end).
-- AUTOINCREMENT on readings and events: ids are outbox refs and chain links, and must not be
-- reused when eviction empties the table.
CREATE TABLE readings (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    meter  INTEGER NOT NULL REFERENCES meters (mid),
    ts_ms  INTEGER NOT NULL,
    flags  INTEGER NOT NULL DEFAULT 0,
    prev   INTEGER,
    vals   BLOB    NOT NULL
);
CREATE INDEX readings_ts ON readings (ts_ms);

CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms    INTEGER NOT NULL,
    meter_id TEXT,
    kind     TEXT    NOT NULL,
    severity TEXT    NOT NULL
             CHECK (severity IN ('debug', 'info', 'warning', 'error', 'critical')),
    data     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(data))
);
CREATE INDEX events_meter ON events (meter_id, id) WHERE meter_id IS NOT NULL;

-- AUTOINCREMENT: the id is the record id sent upstream, never reused even after delivered
-- rows are deleted.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    priority   INTEGER NOT NULL,
    ref        INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    batch_seq  INTEGER
);
CREATE INDEX outbox_pending ON outbox (priority, id) WHERE batch_seq IS NULL;
CREATE INDEX outbox_batched ON outbox (batch_seq) WHERE batch_seq IS NOT NULL;
CREATE INDEX outbox_ref ON outbox (kind, ref);
