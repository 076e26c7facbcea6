CREATE TABLE IF NOT EXISTS site_days
(
    site_id     String,
    day         Date,
    org         LowCardinality(String),
    role        LowCardinality(String),
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (site_id, day, org, role)
SETTINGS non_replicated_deduplication_window = 1000;
