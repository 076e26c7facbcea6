-- Orphan check-outs as +1 / -1 at their time (a late check-in can adopt an orphan).
CREATE TABLE IF NOT EXISTS orphan_deltas
(
    ts    DateTime64(6, 'UTC'),
    delta Int8
)
ENGINE = MergeTree
ORDER BY ts
SETTINGS non_replicated_deduplication_window = 1000;
