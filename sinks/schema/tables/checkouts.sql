-- Every accepted check-out and whether it closed a shift (orphan = 1 when it did not).
CREATE TABLE IF NOT EXISTS checkouts
(
    person_id String,
    event_id  String,
    ts        DateTime64(6, 'UTC'),
    site_id   String,
    orphan    UInt8,
    version   UInt64,
    prev_orphan Nullable(UInt8)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (person_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
