CREATE TABLE IF NOT EXISTS site_hours
(
    hour        DateTime('UTC'),
    site_key    UInt64,
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (hour, site_key)
SETTINGS non_replicated_deduplication_window = 1000;
