-- 0008: how far the gateway holds each series of records a meter keeps (load profile,
-- billing closures), advanced in the transaction that stores them (storage/meter_records.py).
-- WITHOUT ROWID: one b-tree; it is written only when dated records arrive.
CREATE TABLE meter_records (
    meter    INTEGER NOT NULL REFERENCES meters (mid),
    series   TEXT    NOT NULL,
    until_ms INTEGER NOT NULL,
    PRIMARY KEY (meter, series)
) WITHOUT ROWID;
