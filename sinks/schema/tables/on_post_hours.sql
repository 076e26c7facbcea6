-- People on post at each whole UTC hour (started at or before it, ending after it) by org
-- and role, and how long they have yet to run from it. People on post at any T are then
-- this row for T's hour plus the shifts started and ended since, and a local midnight on a
-- whole hour is one row.
CREATE TABLE IF NOT EXISTS on_post_hours
(
    hour        DateTime('UTC'),
    org         LowCardinality(String),
    role        LowCardinality(String),
    people      Int64,
    left_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (hour, org, role)
SETTINGS non_replicated_deduplication_window = 1000;
