-- First registrations summed per UTC day and key.
CREATE TABLE IF NOT EXISTS recruit_days
(
    key  String,
    day  Date,
    n    Int64
)
ENGINE = SummingMergeTree
ORDER BY (key, day)
SETTINGS non_replicated_deduplication_window = 1000;
