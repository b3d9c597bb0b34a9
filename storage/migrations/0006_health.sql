-- 0006 health: the gateway's periodic health records (gateway/remote/health.py,
-- docs/remote.md), sent as outbox kind `health` at low priority. body is compact JSON of
-- integers, text and booleans only.
CREATE TABLE health_records (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    body  TEXT    NOT NULL
);
