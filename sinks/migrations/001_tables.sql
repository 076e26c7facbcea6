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
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (person_id, shift_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Every accepted check-out and whether it closed a shift (orphan = 1 when it did not).
CREATE TABLE IF NOT EXISTS checkouts
(
    person_id String,
    event_id  String,
    ts        DateTime64(6, 'UTC'),
    site_id   String,
    orphan    UInt8,
    version   UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (person_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

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

-- Records rejected to the DLQ, one row per original record.
CREATE TABLE IF NOT EXISTS dlq
(
    topic       String,
    partition   UInt32,
    offset      UInt64,
    key         String,
    error       String,
    raw         String,
    received_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;
