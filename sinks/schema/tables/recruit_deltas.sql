CREATE TABLE IF NOT EXISTS recruit_deltas
(
    key  String,
    ts   DateTime64(6, 'UTC'),
    sign Int8
)
ENGINE = MergeTree
ORDER BY (key, ts)
SETTINGS non_replicated_deduplication_window = 1000;
