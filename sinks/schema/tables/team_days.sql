-- The same per UTC day for one team (with first* under keys 4..7) and for one site.
CREATE TABLE IF NOT EXISTS team_days
(
    team_id     String,
    day         Date,
    site_id     String,
    org         LowCardinality(String),
    role        LowCardinality(String),
    shifts      Int64,
    micros      Int64,
    auto_micros Int64,
    first4 Int64, first5 Int64, first6 Int64, first7 Int64
)
ENGINE = SummingMergeTree
ORDER BY (team_id, day, site_id, org, role)
SETTINGS non_replicated_deduplication_window = 1000;
