-- The signed shift versions again, ordered by site and start in small granules and small
-- compressed blocks, for site scopes: a district's shifts of the last day and a half
-- (people on post now and today, the shifts of the cutoff's hour) are some fifty short
-- ranges here, where shift_deltas (ordered by time) has every site's. Granules of 256 rows and blocks of 4-8 KB, so that
-- reading one site's few rows decompresses about that much (with the defaults, 8,192
-- rows and 64 KB-1 MB, a city's thousand ranges decompressed some 250 MB: 160 against
-- 37 ms measured). People as a 64-bit hash of person_id (two of 1.4 million people share
-- one with odds of about 1 in 10^7). `city` and `district`: the site's when the version
-- was written (filed_shifts), the place it was filed under in district_series;
-- on_post_series_at corrects a site whose place at its cutoff is another from these rows.
CREATE TABLE IF NOT EXISTS site_shifts
(
    site_key   UInt64,
    started_at DateTime64(6, 'UTC'),
    ended_at   DateTime64(6, 'UTC'),
    sign       Int8,
    person_key UInt64,
    org        LowCardinality(String),
    role       LowCardinality(String),
    reason     LowCardinality(String),
    city       LowCardinality(String),
    district   LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (site_key, started_at)
SETTINGS index_granularity = 256, min_compress_block_size = 4096,
         max_compress_block_size = 8192, non_replicated_deduplication_window = 1000;
