-- Each shift version as it was filed (filed_shifts): its site, times and sign, and the
-- city and district of the site when it was written, by site. on_post_series_at corrects
-- a site whose place at its cutoff is not the one its versions were filed under from
-- these rows: each is taken from the place it was filed under.
CREATE TABLE IF NOT EXISTS site_filings
(
    site_key   UInt64,
    started_at DateTime64(6, 'UTC'),
    ended_at   DateTime64(6, 'UTC'),
    sign       Int8,
    city       LowCardinality(String),
    district   LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (site_key, started_at)
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 1000;
