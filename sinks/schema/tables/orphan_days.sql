-- Orphan check-outs per UTC day: the count at T is the days before T's plus T's own.
CREATE TABLE IF NOT EXISTS orphan_days
(
    day   Date,
    n     Int64
)
ENGINE = SummingMergeTree
ORDER BY day
SETTINGS non_replicated_deduplication_window = 1000;
