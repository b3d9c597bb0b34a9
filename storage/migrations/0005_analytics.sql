-- 0005 analytics: interval energy, billing snapshots and validation flags of readings
-- (gateway/analytics/, docs/analytics.md). Values are exact decimal text; NULL when missing.
CREATE TABLE analytics_intervals (
    id        INTEGER PRIMARY KEY,
    meter_id  TEXT    NOT NULL,
    quantity  TEXT    NOT NULL,
    grid      TEXT    NOT NULL,
    start_ms  INTEGER NOT NULL,
    end_ms    INTEGER NOT NULL,
    value     TEXT,
    quality   TEXT    NOT NULL CHECK (quality IN ('measured', 'interpolated', 'missing')),
    gap_ms    INTEGER NOT NULL DEFAULT 0,
    end_value TEXT,
    carried   TEXT,
    flags     TEXT    NOT NULL DEFAULT '',
    UNIQUE (meter_id, quantity, grid, end_ms)
);

CREATE TABLE analytics_snapshots (
    id       INTEGER PRIMARY KEY,
    meter_id TEXT    NOT NULL,
    quantity TEXT    NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('daily', 'billing')),
    ts_ms    INTEGER NOT NULL,
    value    TEXT,
    quality  TEXT    NOT NULL CHECK (quality IN ('measured', 'interpolated', 'missing')),
    gap_ms   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (meter_id, quantity, kind, ts_ms)
);

-- One row per reading and failed rule: the reading is kept, the flag travels with it (sent
-- as its own record, naming the reading by meter and time as the head-end knows it).
CREATE TABLE analytics_reading_flags (
    id         INTEGER PRIMARY KEY,
    reading_id INTEGER NOT NULL,
    meter_id   TEXT    NOT NULL,
    ts_ms      INTEGER NOT NULL,
    rule       TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX analytics_reading_flags_reading ON analytics_reading_flags (reading_id);
