-- The people a shift version adds to its site's city and district at its start and takes
-- away at its end, at the exact moment, as filed (filed_shifts): what on_post_series_at
-- reads for the part minute before its cutoff, where district_series has whole minutes.
CREATE TABLE IF NOT EXISTS place_moments
(
    moment   DateTime64(6, 'UTC'),
    city     LowCardinality(String),
    district LowCardinality(String),
    people   Int64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(moment)
ORDER BY (moment, city, district)
SETTINGS non_replicated_deduplication_window = 1000;
