-- Each site's activity moments (SPEC §6 last activity: a shift version starting, or ending
-- by check_out or transfer), counted net of retracted versions, at three levels: one row
-- per level, bucket and site, its moments and their counts in `activityMap` (summed by
-- moment when parts merge and under FINAL; a moment whose count is 0 is dropped):
--   day:    `bucket` 1970-01-01 (a site's one row), `activityMap.at` the UTC days;
--   hour:   `bucket` a UTC day, `activityMap.at` that day's whole hours;
--   moment: `bucket` a whole UTC hour, `activityMap.at` the moments themselves.
-- A site's last activity at T is its latest moment at or before T with a positive count:
-- site_inputs_at finds each site's latest day, then its latest hour in that day, then its
-- latest moment in that hour: a row per site at each level.
CREATE TABLE IF NOT EXISTS site_activity
(
    kind        Enum8('day' = 0, 'hour' = 1, 'moment' = 2),
    bucket      DateTime('UTC'),
    site_key    UInt64,
    activityMap Nested(us UInt64, n Int64)
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (kind, bucket, site_key)
SETTINGS non_replicated_deduplication_window = 1000;
