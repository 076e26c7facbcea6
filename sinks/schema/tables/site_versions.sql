-- Every accepted site_upserted; attributes at T come from the latest with ts <= T.
CREATE TABLE IF NOT EXISTS site_versions
(
    site_id      String,
    event_id     String,
    ts           DateTime64(6, 'UTC'),
    partition    UInt32,
    offset       UInt64,
    name         String,
    city         String,
    district     String,
    street       String,
    community    String,
    kind         LowCardinality(String),
    requirements Map(String, UInt32),
    active       UInt8,
    lat          Nullable(Float64),
    lon          Nullable(Float64)
)
ENGINE = ReplacingMergeTree
ORDER BY (site_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
