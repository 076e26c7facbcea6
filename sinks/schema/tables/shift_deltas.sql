-- Signed shift versions, ordered by the hour they end, then their start. Every read gives
-- both a start range and an end range (a shift lasts at most `longest`).
CREATE TABLE IF NOT EXISTS shift_deltas
(
    sign       Int8,
    person_id  String,
    shift_id   String,
    site_id    LowCardinality(String),
    role       LowCardinality(String),
    org        LowCardinality(String),
    team_id    String,
    started_at DateTime64(6, 'UTC'),
    ended_at   DateTime64(6, 'UTC'),
    reason     LowCardinality(String),
    firsts     UInt8,
    day_firsts UInt8,
    site_key UInt64 MATERIALIZED cityHash64(site_id),
    cell UInt64 MATERIALIZED bitXor(cityHash64(site_id), cityHash64(role)),
    INDEX team_idx team_id TYPE bloom_filter GRANULARITY 1,
    INDEX site_idx site_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (toStartOfHour(ended_at), started_at)
SETTINGS non_replicated_deduplication_window = 1000;
