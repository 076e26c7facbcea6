-- Accepted person events (registered, check_in, check_out), deduplicated by event_id per person.
CREATE TABLE IF NOT EXISTS events
(
    person_id String,
    event_id  String,
    type      LowCardinality(String),
    ts        DateTime64(6, 'UTC'),
    site_id   String,
    role      LowCardinality(String),
    org       LowCardinality(String),
    team_id   String,
    partition UInt32,
    offset    UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (person_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
