-- Understaffed alerts (SPEC §6), upserted on open, change and resolve.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id    String,
    kind        LowCardinality(String),
    site_id     String,
    opened_at   DateTime64(6, 'UTC'),
    short       Map(String, UInt32),
    people      UInt32,
    resolved_at Nullable(DateTime64(6, 'UTC')),
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY alert_id;
