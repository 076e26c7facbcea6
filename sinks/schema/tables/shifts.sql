-- SPEC §3 shifts, upserted: the row with the highest version of a (person_id, shift_id) wins.
CREATE TABLE IF NOT EXISTS shifts
(
    person_id  String,
    shift_id   String,
    site_id    String,
    role       LowCardinality(String),
    org        LowCardinality(String),
    team_id    String,
    started_at DateTime64(6, 'UTC'),
    ended_at   DateTime64(6, 'UTC'),
    reason     LowCardinality(String),
    version    UInt64,
    prev_ended_at Nullable(DateTime64(6, 'UTC')),
    prev_reason LowCardinality(String) DEFAULT '',
    firsts UInt8,
    day_firsts UInt8,
    prev_firsts UInt8,
    prev_day_firsts UInt8
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (person_id, shift_id)
SETTINGS non_replicated_deduplication_window = 1000;
