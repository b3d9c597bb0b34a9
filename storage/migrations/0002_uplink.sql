-- 0002 uplink: signed batches (opaque bytes), seen command ids, uplink state, command results.
-- storage/ knows nothing of MQTT or COSE: a batch is a seq, its bytes and their SHA-256.

-- One row per batch ever built. `bytes` is kept until acked (then emptied to save space; the
-- sha256 of the last acked batch stays in uplink_state as the chain head).
CREATE TABLE uplink_batches (
    seq        INTEGER PRIMARY KEY,
    bytes      BLOB    NOT NULL,
    sha256     BLOB    NOT NULL CHECK (length(sha256) = 32),
    n_records  INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    sent_ms    INTEGER,
    acked_ms   INTEGER,
    held       TEXT            -- why sending is held (a broker refusal), or NULL
);
CREATE INDEX uplink_batches_unacked ON uplink_batches (seq) WHERE acked_ms IS NULL;

-- Command ids already seen, kept until their expiry: a replay is refused even after a restart.
CREATE TABLE uplink_seen_commands (
    id     TEXT    PRIMARY KEY,
    exp_ms INTEGER NOT NULL
);
CREATE INDEX uplink_seen_commands_exp ON uplink_seen_commands (exp_ms);

-- Small key/value state: last_seq, last_sha256, acked_seq, broker_max_packet.
CREATE TABLE uplink_state (
    key   TEXT PRIMARY KEY,
    value BLOB
);

-- Results of commands (accepted or refused); outbox kind `cmd_result` refers to these rows.
CREATE TABLE uplink_cmd_results (
    id     INTEGER PRIMARY KEY,
    ts_ms  INTEGER NOT NULL,
    cmd_id TEXT,
    op     TEXT,
    ok     INTEGER NOT NULL CHECK (ok IN (0, 1)),
    body   BLOB    NOT NULL         -- CBOR map: the result, or {"reason": ...}
);
