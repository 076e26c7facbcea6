-- People on post per site, role and organisation, as a step function: a row at each minute
-- in which the number changed (the last change of the minute wins). "On post over the day"
-- charts carry each value forward to the next row.
CREATE TABLE IF NOT EXISTS on_post_minutely
(
    minute  DateTime('UTC'),
    site_id String,
    role    LowCardinality(String),
    org     LowCardinality(String),
    people  UInt32,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(minute)
ORDER BY (site_id, role, org, minute);
