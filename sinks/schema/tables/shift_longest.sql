-- The longest shift ever stored: how far back a shift still on post can have started.
CREATE TABLE IF NOT EXISTS shift_longest
(
    k      UInt8,
    micros SimpleAggregateFunction(max, Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY k
SETTINGS non_replicated_deduplication_window = 1000;
