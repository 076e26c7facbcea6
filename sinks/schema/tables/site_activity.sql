-- Each site's activity moments (SPEC §6 last activity: a shift version starting, or ending
-- by check_out or transfer), counted net of retracted versions, at three levels:
--   day:    `bucket` a UTC day, `moment` the same day: moments in that day;
--   hour:   `bucket` a UTC day, `moment` one of its whole hours: moments in that hour;
--   moment: `bucket` a whole UTC hour, `moment` the moment itself.
-- A site's last activity at T is its latest moment at or before T with a positive count:
-- site_inputs_at finds the latest day, then the latest hour, then reads that hour's
-- moments, each a short key range (bucket, site_key).
CREATE TABLE IF NOT EXISTS site_activity
(
    kind     Enum8('day' = 0, 'hour' = 1, 'moment' = 2),
    bucket   DateTime('UTC'),
    site_key UInt64,
    moment   DateTime64(6, 'UTC'),
    n        Int64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (kind, bucket, site_key, moment)
SETTINGS non_replicated_deduplication_window = 1000;
