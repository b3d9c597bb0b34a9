-- 0007 analytics: energy balance per node and interval, and the active alarms (raised once,
-- cleared once: the events carry the history, this table what is active now).
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
