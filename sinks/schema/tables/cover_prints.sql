CREATE TABLE IF NOT EXISTS cover_prints
(
    hour DateTime('UTC'),
    gen  DateTime64(6, 'UTC'),
    n    Int64,
    h    UInt64,
    v    UInt64
)
ENGINE = ReplacingMergeTree(gen)
ORDER BY hour
SETTINGS non_replicated_deduplication_window = 1000;
