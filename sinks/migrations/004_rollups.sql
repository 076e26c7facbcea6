-- Rollups: every metric at any cutoff without re-reading every shift.
--
-- A shift row carries the version it replaces (prev_ended_at, prev_reason; '' when the shift
-- is new): the diff. Materialized views turn each inserted row into a retraction (-1) of
-- the old version and an assertion (+1) of the new one, in the same INSERT as the shift
-- upsert, so a rollup never holds a diff its shift row lacks. Rows written again for a
-- replayed record take their previous version from the store (sinks/writer.py). A batch
-- inserted twice (a retry) is dropped whole, views included: every table here keeps a
-- deduplication window and inserts set deduplicate_blocks_in_dependent_materialized_views.

ALTER TABLE shifts ADD COLUMN IF NOT EXISTS prev_ended_at Nullable(DateTime64(6, 'UTC'));
ALTER TABLE shifts ADD COLUMN IF NOT EXISTS prev_reason LowCardinality(String) DEFAULT '';
ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS prev_orphan Nullable(UInt8);

-- Signed shift versions by start time: sum(sign * x) over any start range is exact.
CREATE TABLE IF NOT EXISTS shift_deltas
(
    sign       Int8,
    person_id  String,
    shift_id   String,
    site_id    String,
    role       LowCardinality(String),
    org        LowCardinality(String),
    team_id    String,
    started_at DateTime64(6, 'UTC'),
    ended_at   DateTime64(6, 'UTC'),
    reason     LowCardinality(String),
    INDEX team_idx team_id TYPE bloom_filter GRANULARITY 2,
    INDEX site_idx site_id TYPE bloom_filter GRANULARITY 2
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY started_at
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS shift_deltas_mv TO shift_deltas AS
SELECT d.1 AS sign, person_id, shift_id, site_id, role, org, team_id, started_at,
       d.2 AS ended_at, d.3 AS reason
FROM
(
    SELECT person_id, shift_id, site_id, role, org, team_id, started_at,
           arrayConcat(
               if(prev_reason = '', [],
                  [(toInt8(-1), assumeNotNull(prev_ended_at), toString(prev_reason))]),
               [(toInt8(1), ended_at, toString(reason))]) AS versions
    FROM shifts
)
ARRAY JOIN versions AS d;

-- Shifts and their full length per UTC day of start; the length of auto shifts per day of
-- end (hours_auto counts them once ended). Three grains, each read by the queries it fits:
-- a team's days (team_days), a site's days (site_days), and everything (shift_days).
CREATE TABLE IF NOT EXISTS team_days
(
    team_id     String,
    day         Date,
    site_id     String,
    org         LowCardinality(String),
    role        LowCardinality(String),
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (team_id, day, site_id, org, role)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS team_days_mv TO team_days AS
SELECT team_id, r.1 AS day, site_id, org, role, r.2 AS shifts, r.3 AS micros,
       r.4 AS auto_micros
FROM
(
    SELECT site_id, role, org, team_id,
           toInt64(sign) AS s,
           s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
           arrayConcat(
               [(toDate(started_at), s, len, toInt64(0))],
               if(reason = 'auto', [(toDate(ended_at), toInt64(0), toInt64(0), len)], []))
               AS parts
    FROM shift_deltas
)
ARRAY JOIN parts AS r;

CREATE TABLE IF NOT EXISTS site_days
(
    site_id     String,
    day         Date,
    org         LowCardinality(String),
    role        LowCardinality(String),
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (site_id, day, org, role)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS site_days_mv TO site_days AS
SELECT site_id, day, org, role, sum(shifts) AS shifts, sum(micros) AS micros,
       sum(auto_micros) AS auto_micros
FROM team_days
GROUP BY site_id, day, org, role;

CREATE TABLE IF NOT EXISTS shift_days
(
    day         Date,
    org         LowCardinality(String),
    role        LowCardinality(String),
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (day, org, role)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS shift_days_mv TO shift_days AS
SELECT day, org, role, sum(shifts) AS shifts, sum(micros) AS micros,
       sum(auto_micros) AS auto_micros
FROM site_days
GROUP BY day, org, role;

-- The longest shift ever stored: how far back a shift still on post can have started.
CREATE TABLE IF NOT EXISTS shift_longest
(
    k      UInt8,
    micros SimpleAggregateFunction(max, Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY k
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS shift_longest_mv TO shift_longest AS
SELECT toUInt8(0) AS k,
       max(toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS micros
FROM shift_deltas;

-- Each person's first shift start per site, role, org and team (a shift's start and those
-- attributes never change): "distinct people / teams with a shift started by T".
CREATE TABLE IF NOT EXISTS person_cells
(
    person_id   String,
    site_id     String,
    role        LowCardinality(String),
    org         LowCardinality(String),
    team_id     String,
    first_start SimpleAggregateFunction(min, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (person_id, site_id, role, org, team_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS person_cells_mv TO person_cells AS
SELECT person_id, site_id, role, org, team_id, min(started_at) AS first_start
FROM shifts
GROUP BY person_id, site_id, role, org, team_id;

-- Each person's first registration per org and team.
CREATE TABLE IF NOT EXISTS recruits
(
    person_id String,
    org       LowCardinality(String),
    team_id   String,
    first_ts  SimpleAggregateFunction(min, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (person_id, org, team_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS recruits_mv TO recruits AS
SELECT person_id, org, team_id, min(ts) AS first_ts
FROM events
WHERE type = 'registered'
GROUP BY person_id, org, team_id;

-- Orphan check-outs as +1 / -1 at their time (a late check-in can adopt an orphan).
CREATE TABLE IF NOT EXISTS orphan_deltas
(
    ts    DateTime64(6, 'UTC'),
    delta Int8
)
ENGINE = MergeTree
ORDER BY ts
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS orphan_deltas_mv TO orphan_deltas AS
SELECT ts, toInt8(orphan) - toInt8(ifNull(prev_orphan, 0)) AS delta
FROM checkouts
WHERE delta != 0;

-- A store written before the rollups existed: fill them once from what it holds.
INSERT INTO shift_deltas
SELECT 1, person_id, shift_id, site_id, role, org, team_id, started_at, ended_at, reason
FROM shifts FINAL;

INSERT INTO person_cells
SELECT person_id, site_id, role, org, team_id, min(started_at)
FROM shifts FINAL
GROUP BY person_id, site_id, role, org, team_id;

INSERT INTO recruits
SELECT person_id, org, team_id, min(ts)
FROM events FINAL
WHERE type = 'registered'
GROUP BY person_id, org, team_id;

INSERT INTO orphan_deltas
SELECT ts, 1 FROM checkouts FINAL WHERE orphan = 1;

-- The definition before the rollups (002_views.sql) stays, renamed: it re-reads every
-- shift, so it is slow on a large store, but it is the plainest statement of SPEC §4 and
-- what `muster bench` and the tests check the rollups against.
RENAME TABLE metrics_at TO metrics_brute_at;

-- SPEC §4, every metric at one cutoff and scope (same parameters and columns as before).
-- Days before the cutoff's UTC day come summed from shift_days; the shifts that can still
-- be on post, on post today or partly counted are read as signed rows from shift_deltas.
CREATE OR REPLACE VIEW metrics_at AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toDateTime64({day_start:DateTime64(6, 'UTC')}, 6, 'UTC') AS midnight,
    toDate(cutoff) AS utc_day,
    toDateTime64(toStartOfDay(cutoff), 6, 'UTC') AS utc_midnight,
    (SELECT ifNull(max(micros), 0) FROM shift_longest) AS longest,
    least(midnight, utc_midnight) - toIntervalMicrosecond(longest) AS window_start,
    {city:String} != '' OR {district:String} != '' OR {street:String} != ''
        OR {community:String} != '' OR {site_id:String} != '' AS site_scoped,
    scoped_sites AS
    (
        SELECT * FROM sites_at(at = {at:DateTime64(6, 'UTC')})
        WHERE ({city:String} = '' OR city = {city:String})
          AND ({district:String} = '' OR district = {district:String})
          AND ({street:String} = '' OR street = {street:String})
          AND ({community:String} = '' OR community = {community:String})
          AND ({site_id:String} = '' OR site_id = {site_id:String})
    ),
    staffed AS
    (
        SELECT site_id, mapFromArrays(groupArray(role), groupArray(n)) AS by_role,
               sum(n) AS people
        FROM
        (
            SELECT site_id, role, sum(toInt64(sign)) AS n
            FROM shift_deltas
            WHERE started_at > cutoff - toIntervalMicrosecond(longest)
              AND started_at <= cutoff AND ended_at > cutoff
            GROUP BY site_id, role
            HAVING n > 0
        )
        GROUP BY site_id
    ),
    coverage AS
    (
        SELECT countIf(active = 1) AS sites_active,
               countIf(active = 1 AND if(
                   empty(mapFilter((r, m) -> m > 0, requirements)),
                   people > 0,
                   arrayAll((r, m) -> by_role[r] >= m, mapKeys(requirements), mapValues(requirements))
               )) AS sites_covered
        FROM scoped_sites AS s
        LEFT JOIN staffed AS st ON st.site_id = s.site_id
    ),
    recent AS
    (
        SELECT sign, person_id, team_id, started_at, ended_at, reason,
               toInt64(sign) AS s,
               s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len
        FROM shift_deltas
        WHERE started_at > window_start AND started_at <= cutoff
          AND ({org:String} = '' OR org = {org:String})
          AND ({role:String} = '' OR role = {role:String})
          AND ({team_id:String} = '' OR team_id = {team_id:String})
          AND (NOT site_scoped OR site_id IN (SELECT site_id FROM scoped_sites))
    ),
    recent_totals AS
    (
        SELECT sumIf(s, started_at >= utc_midnight) AS person_times,
               sumIf(len, started_at >= utc_midnight) AS micros,
               sumIf(s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(cutoff)),
                     ended_at > cutoff) AS not_yet_micros,
               sumIf(s, ended_at > cutoff) AS on_post_now,
               sumIf(len, reason = 'auto' AND ended_at >= utc_midnight AND ended_at <= cutoff)
                   AS auto_micros
        FROM recent
    ),
    today AS
    (
        -- a person's signed rows ending after midnight sum to their current such shifts
        SELECT count() AS on_post_today
        FROM (SELECT person_id FROM recent WHERE ended_at > midnight
              GROUP BY person_id HAVING sum(s) > 0)
    ),
    past AS
    (
        -- whole days before the cutoff's, from the one grain that fits the scope
        SELECT sum(shifts) AS person_times, sum(micros) AS micros, sum(auto_micros) AS auto_micros
        FROM
        (
            SELECT shifts, micros, auto_micros FROM team_days
            WHERE {team_id:String} != '' AND team_id = {team_id:String} AND day < utc_day
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
              AND (NOT site_scoped OR site_id IN (SELECT site_id FROM scoped_sites))
            UNION ALL
            SELECT shifts, micros, auto_micros FROM site_days
            WHERE {team_id:String} = '' AND site_scoped AND day < utc_day
              AND site_id IN (SELECT site_id FROM scoped_sites)
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
            UNION ALL
            SELECT shifts, micros, auto_micros FROM shift_days
            WHERE {team_id:String} = '' AND NOT site_scoped AND day < utc_day
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
        )
    ),
    cells AS
    (
        SELECT uniqExact(person_id) AS cumulative_people,
               uniqExactIf(team_id, team_id != '') AS teams
        FROM person_cells
        WHERE first_start <= cutoff
          AND ({org:String} = '' OR org = {org:String})
          AND ({role:String} = '' OR role = {role:String})
          AND ({team_id:String} = '' OR team_id = {team_id:String})
          AND (NOT site_scoped OR site_id IN (SELECT site_id FROM scoped_sites))
    ),
    recruited_people AS
    (
        SELECT uniqExact(person_id) AS recruited
        FROM recruits
        WHERE first_ts <= cutoff
          AND ({org:String} = '' OR org = {org:String})
          AND ({team_id:String} = '' OR team_id = {team_id:String})
    )
SELECT
    cutoff AS at,
    if(site_scoped OR {role:String} != '', NULL,
       (SELECT recruited FROM recruited_people)) AS recruited,
    r.on_post_now AS on_post_now,
    (SELECT on_post_today FROM today) AS on_post_today,
    c.cumulative_people AS cumulative_people,
    p.person_times + r.person_times AS person_times,
    (p.micros + r.micros - r.not_yet_micros) / 3600e6 AS hours,
    (p.auto_micros + r.auto_micros) / 3600e6 AS hours_auto,
    c.teams AS teams,
    cov.sites_active AS sites_active,
    cov.sites_covered AS sites_covered,
    if(cov.sites_active = 0, 0, cov.sites_covered / cov.sites_active) AS coverage,
    (SELECT sum(delta) FROM orphan_deltas WHERE ts <= cutoff) AS orphan_checkouts,
    (SELECT count() FROM dlq FINAL) AS dlq
FROM recent_totals AS r, past AS p, cells AS c, coverage AS cov;
