-- People on post by city and district, for "on post over the day" (on_post_series_at), in two
-- kinds of row:
--   on_post: the people on post at a whole UTC hour `minute` (started at or before it,
--            ending after it);
--   change:  what the shift versions starting and ending in the minute before `minute`
--            change: a version counts from the first whole minute at or after its start
--            to the first at or after its end (so the people on post at a whole minute M
--            are the on_post row of any whole hour H <= M plus the changes in (H, M]).
-- A shift version is filed under its site's city and district when it is written
-- (filed_shifts); site_districts lists the districts each site's versions were filed
-- under, so that a reader can tell the sites whose district at its cutoff is another.
-- Districts are named within their city (two cities may each have a 鼓楼区).
CREATE TABLE IF NOT EXISTS district_series
(
    kind     Enum8('change' = 0, 'on_post' = 1),
    minute   DateTime('UTC'),
    city     LowCardinality(String),
    district LowCardinality(String),
    people   Int64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (kind, minute, city, district)
SETTINGS non_replicated_deduplication_window = 1000;
