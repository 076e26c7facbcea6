CREATE TABLE IF NOT EXISTS city_days
(
    city_key    UInt64,
    day         Date,
    site_key    UInt64,
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (city_key, day, site_key)
SETTINGS non_replicated_deduplication_window = 1000;
