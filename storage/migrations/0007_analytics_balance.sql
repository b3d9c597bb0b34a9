-- 0007 analytics: energy balance per node and interval, and the active alarms (raised once,
-- cleared once: the events carry the history, this table what is active now); the intervals
-- indexed by their end only (below).
CREATE TABLE analytics_balance (
    id           INTEGER PRIMARY KEY,
    node         TEXT    NOT NULL,
    start_ms     INTEGER NOT NULL,
    end_ms       INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('complete', 'incomplete')),
    parent       TEXT,
    children     TEXT,
    loss         TEXT,
    loss_percent TEXT,
    missing      TEXT    NOT NULL DEFAULT '',
    UNIQUE (node, end_ms)
);

CREATE TABLE analytics_alarms (
    key       TEXT    PRIMARY KEY,
    alarm     TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    severity  TEXT    NOT NULL,
    raised_ms INTEGER NOT NULL,
    data      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(data))
) WITHOUT ROWID;

-- And analytics_intervals without the (meter, quantity, grid, end_ms) unique index. Every
-- boundary's intervals of all meters commit together, and that index spread them over every
-- leaf page of the index: 1330 bytes written per interval (hil/bench/analytics.py). Indexed by
-- end_ms alone, each commit appends at the right edge. Resuming reads the recent intervals in
-- one range; the same interval is never written twice (it is written in the transaction of
-- the reading that closes it, and a track resumes from the newest one stored).
CREATE TABLE analytics_intervals_new (
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
    flags     TEXT    NOT NULL DEFAULT ''
);
INSERT INTO analytics_intervals_new SELECT id, meter_id, quantity, grid, start_ms, end_ms, value,
    quality, gap_ms, end_value, carried, flags FROM analytics_intervals;
DROP TABLE analytics_intervals;
ALTER TABLE analytics_intervals_new RENAME TO analytics_intervals;
CREATE INDEX analytics_intervals_end ON analytics_intervals (end_ms);
