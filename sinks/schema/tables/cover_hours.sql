-- Per settled hour and site active at some moment of it: `state`, covered at the hour's
-- start, and `flips`, the moments in the hour at which that changed; `active` and
-- `active_flips` the same for the site being active. Each settling of an hour writes all
-- its rows under one generation `gen`, with a row for site_key 0 holding the fingerprints
-- it was computed from: `n`, `h` as in cover_inputs and `v`, the sum of the distinct site
-- versions dated before the hour's end (copied to cover_prints). Readers take the latest
-- generation, and only when its fingerprints equal the store's.
CREATE TABLE IF NOT EXISTS cover_hours
(
    hour         DateTime('UTC'),
    site_key     UInt64,
    gen          DateTime64(6, 'UTC'),
    state        UInt8,
    flips        Array(DateTime64(6, 'UTC')),
    active       UInt8,
    active_flips Array(DateTime64(6, 'UTC')),
    n            Int64,
    h            UInt64,
    v            UInt64
)
ENGINE = ReplacingMergeTree(gen)
ORDER BY (hour, site_key)
SETTINGS non_replicated_deduplication_window = 1000;
