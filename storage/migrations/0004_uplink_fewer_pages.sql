-- 0004: fewer b-tree pages touched by each commit with the uplink on (docs/sd-card.md).
-- uplink_state becomes WITHOUT ROWID: one b-tree, not a table plus its key index, so a state
-- update writes one page. uplink_batches_unacked goes: every batch above the acked seq is
-- unacked, so the primary key answers `seq >= acked + 1` and the index was one more page.
CREATE TABLE uplink_state_new (
    key   TEXT PRIMARY KEY,
    value BLOB
) WITHOUT ROWID;
INSERT INTO uplink_state_new (key, value) SELECT key, value FROM uplink_state;
DROP TABLE uplink_state;
ALTER TABLE uplink_state_new RENAME TO uplink_state;
DROP INDEX uplink_batches_unacked;
