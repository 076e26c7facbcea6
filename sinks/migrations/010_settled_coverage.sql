-- Coverage of settled hours, read in a few thousand rows instead of every shift on post.
--
-- Which sites are covered is not a sum of anything, so no materialized view can keep it.
-- Instead sinks/coverage.py works it out for whole UTC hours after the fact ("settling"):
-- per site and hour, whether the site was covered at the hour's start and the moments in
-- the hour at which that changed. Coverage at any T in a settled hour is then one pass
-- over that hour's rows. An hour's rows carry a fingerprint of what they were computed
-- from; when the shifts or site versions behind the hour change (a late event), the
-- fingerprints differ and readers work coverage out from the shifts again until the hour
-- is settled anew.

-- The fingerprint of the shifts behind each hour: every signed shift version counted, and
-- a hash of its site, role and the part of the hour it covers summed, in each UTC hour
-- from the hour it starts to the hour it ends. A retraction cancels the version it
-- retracts exactly, so the sums depend only on the current versions; and a new version
-- that changes nothing within an hour (a check-out closing a shift some hours after it
-- began) leaves that hour's fingerprint, and its settled coverage, as they were.
CREATE TABLE IF NOT EXISTS cover_inputs
(
    hour DateTime('UTC'),
    n    Int64,
    h    UInt64
)
ENGINE = SummingMergeTree
ORDER BY hour
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS cover_inputs_mv TO cover_inputs AS
SELECT toDateTime(hr, 'UTC') AS hour, sum(s) AS n,
       sum(toUInt64(s) * cityHash64(site_id, role,
           greatest(started_at, toDateTime64(hr, 6, 'UTC')),
           least(ended_at, toDateTime64(hr + 3600, 6, 'UTC')))) AS h
FROM
(
    SELECT toInt64(sign) AS s, site_id, role, started_at, ended_at,
           range(toUInt32(toStartOfHour(started_at)),
                 toUInt32(toStartOfHour(ended_at)) + 1, 3600) AS hours
    FROM shift_deltas
)
ARRAY JOIN hours AS hr
GROUP BY hour;

FILL cover_inputs FROM cover_inputs_mv;

-- Each site version's hash, as the fingerprints count it (a replayed version counts once).
CREATE TABLE IF NOT EXISTS version_hashes
(
    ts DateTime64(6, 'UTC'),
    x  UInt64
)
ENGINE = MergeTree
ORDER BY ts
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS version_hashes_mv TO version_hashes AS
SELECT ts, cityHash64(site_id, event_id, ts, partition, offset, active) AS x
FROM site_versions;

FILL version_hashes FROM version_hashes_mv;

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

CREATE TABLE IF NOT EXISTS cover_prints
(
    hour DateTime('UTC'),
    gen  DateTime64(6, 'UTC'),
    n    Int64,
    h    UInt64,
    v    UInt64
)
ENGINE = ReplacingMergeTree(gen)
ORDER BY hour
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS cover_prints_mv TO cover_prints AS
SELECT hour, gen, n, h, v FROM cover_hours WHERE site_key = 0;
