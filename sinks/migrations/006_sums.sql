-- Distinct people as sums, and reads that touch only the shifts they need: every metric
-- fast at national scale.
--
-- 004's rollups made shift sums fast but still counted distinct people (uniqExact over
-- millions of rows) and read every shift of the last day and a half at query time. Here:
--
-- * Each shift row carries two bit masks from the person agent (streams/core/follows.py):
--   under scope key k (k = org + 2 * role + 4 * team), bit k of `firsts` says the shift
--   follows no earlier shift of the person under that key, and bit k of `day_firsts` that
--   it is the person's first under that key reaching past the local midnight of its start.
--   `cumulative_people` and `on_post_today` become sums, kept per hour like the others.
-- * `shift_deltas` is ordered by the hour a shift ends, then its start: the shifts on post
--   at T (started in (T - longest, T], ended after T) are a few thousand granules.
-- * First registrations per org/team key come from the person agent too (recruit_firsts),
--   as signed rows by time, summed per day.
--
-- The rollups are rebuilt empty: a store already holding shifts predates what the person
-- agent now remembers (the ends of forgotten shifts), so it must be built again by a
-- replay of the topics into an empty store.

SELECT throwIf((SELECT count() FROM shifts) > 0,
    'this store holds shifts written before migration 006 (distinct people as sums): start muster on an empty data directory and replay the topics into it');

DROP VIEW IF EXISTS shift_deltas_mv;
DROP VIEW IF EXISTS team_days_mv;
DROP VIEW IF EXISTS site_days_mv;
DROP VIEW IF EXISTS shift_days_mv;
DROP VIEW IF EXISTS shift_longest_mv;
DROP VIEW IF EXISTS person_cells_mv;
DROP VIEW IF EXISTS recruits_mv;
DROP TABLE IF EXISTS shift_deltas;
DROP TABLE IF EXISTS team_days;
DROP TABLE IF EXISTS site_days;
DROP TABLE IF EXISTS shift_days;
DROP TABLE IF EXISTS person_cells;
DROP TABLE IF EXISTS recruits;

ALTER TABLE shifts ADD COLUMN IF NOT EXISTS firsts UInt8;
ALTER TABLE shifts ADD COLUMN IF NOT EXISTS day_firsts UInt8;
ALTER TABLE shifts ADD COLUMN IF NOT EXISTS prev_firsts UInt8;
ALTER TABLE shifts ADD COLUMN IF NOT EXISTS prev_day_firsts UInt8;

-- Signed shift versions, ordered by the hour they end, then their start. Every read gives
-- both a start range and an end range (a shift lasts at most `longest`).
CREATE TABLE IF NOT EXISTS shift_deltas
(
    sign       Int8,
    person_id  String,
    shift_id   String,
    site_id    LowCardinality(String),
    role       LowCardinality(String),
    org        LowCardinality(String),
    team_id    String,
    started_at DateTime64(6, 'UTC'),
    ended_at   DateTime64(6, 'UTC'),
    reason     LowCardinality(String),
    firsts     UInt8,
    day_firsts UInt8,
    INDEX team_idx team_id TYPE bloom_filter GRANULARITY 1,
    INDEX site_idx site_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (toStartOfHour(ended_at), started_at)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS shift_deltas_mv TO shift_deltas AS
SELECT d.1 AS sign, person_id, shift_id, site_id, role, org, team_id, started_at,
       d.2 AS ended_at, d.3 AS reason, d.4 AS firsts, d.5 AS day_firsts
FROM
(
    SELECT person_id, shift_id, site_id, role, org, team_id, started_at,
           arrayConcat(
               if(prev_reason = '', [],
                  [(toInt8(-1), assumeNotNull(prev_ended_at), toString(prev_reason),
                    prev_firsts, prev_day_firsts)]),
               [(toInt8(1), ended_at, toString(reason), firsts, day_firsts)]) AS versions
    FROM shifts
)
ARRAY JOIN versions AS d;

-- Per UTC hour of start: shifts, full length, and under keys 0..3 (no team) shifts that
-- follow nothing (first*) and first shifts of a local day (today*); per hour of end: the
-- length of auto shifts (hours_auto counts them once ended).
CREATE TABLE IF NOT EXISTS shift_hours
(
    hour        DateTime('UTC'),
    org         LowCardinality(String),
    role        LowCardinality(String),
    shifts      Int64,
    micros      Int64,
    auto_micros Int64,
    first0 Int64, first1 Int64, first2 Int64, first3 Int64,
    today0 Int64, today1 Int64, today2 Int64, today3 Int64
)
ENGINE = SummingMergeTree
ORDER BY (hour, org, role)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS shift_hours_mv TO shift_hours AS
SELECT r.1 AS hour, org, role, r.2 * s AS shifts, r.2 * len AS micros,
       r.3 * len AS auto_micros,
       r.2 * s * bitTest(firsts, 0) AS first0, r.2 * s * bitTest(firsts, 1) AS first1,
       r.2 * s * bitTest(firsts, 2) AS first2, r.2 * s * bitTest(firsts, 3) AS first3,
       r.2 * s * bitTest(day_firsts, 0) AS today0, r.2 * s * bitTest(day_firsts, 1) AS today1,
       r.2 * s * bitTest(day_firsts, 2) AS today2, r.2 * s * bitTest(day_firsts, 3) AS today3
FROM
(
    SELECT org, role, firsts, day_firsts,
           toInt64(sign) AS s,
           s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
           -- (hour, counts as started in it, counts as an auto shift ended in it)
           arrayConcat(
               [(toStartOfHour(started_at), toInt64(1), toInt64(0))],
               if(reason = 'auto', [(toStartOfHour(ended_at), toInt64(0), toInt64(1))], []))
               AS parts
    FROM shift_deltas
)
ARRAY JOIN parts AS r;

-- The same per UTC day for one team (with first* under keys 4..7) and for one site.
CREATE TABLE IF NOT EXISTS team_days
(
    team_id     String,
    day         Date,
    site_id     String,
    org         LowCardinality(String),
    role        LowCardinality(String),
    shifts      Int64,
    micros      Int64,
    auto_micros Int64,
    first4 Int64, first5 Int64, first6 Int64, first7 Int64
)
ENGINE = SummingMergeTree
ORDER BY (team_id, day, site_id, org, role)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS team_days_mv TO team_days AS
SELECT team_id, r.1 AS day, site_id, org, role, r.2 * s AS shifts, r.2 * len AS micros,
       r.3 * len AS auto_micros,
       r.2 * s * bitTest(firsts, 4) AS first4, r.2 * s * bitTest(firsts, 5) AS first5,
       r.2 * s * bitTest(firsts, 6) AS first6, r.2 * s * bitTest(firsts, 7) AS first7
FROM
(
    SELECT team_id, site_id, org, role, firsts,
           toInt64(sign) AS s,
           s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
           arrayConcat(
               [(toDate(started_at), toInt64(1), toInt64(0))],
               if(reason = 'auto', [(toDate(ended_at), toInt64(0), toInt64(1))], [])) AS parts
    FROM shift_deltas
    WHERE team_id != ''
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
SELECT site_id, r.1 AS day, org, role, r.2 * s AS shifts, r.2 * len AS micros,
       r.3 * len AS auto_micros
FROM
(
    SELECT site_id, org, role,
           toInt64(sign) AS s,
           s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
           arrayConcat(
               [(toDate(started_at), toInt64(1), toInt64(0))],
               if(reason = 'auto', [(toDate(ended_at), toInt64(0), toInt64(1))], [])) AS parts
    FROM shift_deltas
)
ARRAY JOIN parts AS r;

CREATE MATERIALIZED VIEW IF NOT EXISTS shift_longest_mv TO shift_longest AS
SELECT toUInt8(0) AS k,
       max(toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS micros
FROM shift_deltas;

-- Site scopes: each person's first start per site, role, org and team, ordered by site.
CREATE TABLE IF NOT EXISTS site_people
(
    site_id     String,
    person_id   String,
    role        LowCardinality(String),
    org         LowCardinality(String),
    team_id     String,
    first_start SimpleAggregateFunction(min, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (site_id, person_id, role, org, team_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS site_people_mv TO site_people AS
SELECT site_id, person_id, role, org, team_id, min(started_at) AS first_start
FROM shifts
GROUP BY site_id, person_id, role, org, team_id;

-- Teams: each team's first start per org and role (teams are few; counted distinct).
CREATE TABLE IF NOT EXISTS team_cells
(
    team_id     String,
    org         LowCardinality(String),
    role        LowCardinality(String),
    first_start SimpleAggregateFunction(min, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (team_id, org, role)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS team_cells_mv TO team_cells AS
SELECT team_id, org, role, min(started_at) AS first_start
FROM shifts
WHERE team_id != ''
GROUP BY team_id, org, role;

-- A person's first registration per org/team key (streams/core/follows.py), with the
-- earlier first it replaces; as signed rows by time, `recruited` is a sum.
CREATE TABLE IF NOT EXISTS recruit_firsts
(
    person_id String,
    key       String,
    first_ts  DateTime64(6, 'UTC'),
    prev_ts   Nullable(DateTime64(6, 'UTC')),
    version   UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (person_id, key)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS recruit_deltas
(
    key  String,
    ts   DateTime64(6, 'UTC'),
    sign Int8
)
ENGINE = MergeTree
ORDER BY (key, ts)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS recruit_deltas_mv TO recruit_deltas AS
SELECT key, d.1 AS ts, d.2 AS sign
FROM recruit_firsts
ARRAY JOIN
    arrayConcat(
        if(prev_ts IS NULL OR prev_ts = first_ts, [],
           [(assumeNotNull(prev_ts), toInt8(-1))]),
        if(prev_ts = first_ts, [], [(first_ts, toInt8(1))])) AS d;

-- First registrations summed per UTC day and key.
CREATE TABLE IF NOT EXISTS recruit_days
(
    key  String,
    day  Date,
    n    Int64
)
ENGINE = SummingMergeTree
ORDER BY (key, day)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS recruit_days_mv TO recruit_days AS
SELECT key, toDate(ts) AS day, toInt64(sign) AS n
FROM recruit_deltas;

-- SPEC §4, every metric at one cutoff and scope (same parameters and columns as before).
-- National, org and role scopes read whole hours before the cutoff's from shift_hours;
-- team and site scopes whole days from team_days / site_days. The rest comes from one read
-- of shift_deltas over the start and end ranges that matter: shifts on post at the
-- cutoff, shifts started since the last whole hour (or day), auto shifts ended since then,
-- and around local midnight D.
-- Redefined, with the same results, by 008_metrics_once.sql.
CREATE OR REPLACE VIEW metrics_at AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toUnixTimestamp64Micro(cutoff) AS cutoff_us,
    toDateTime64({day_start:DateTime64(6, 'UTC')}, 6, 'UTC') AS midnight,
    toDate(cutoff) AS utc_day,
    toDateTime64(toStartOfDay(cutoff), 6, 'UTC') AS utc_midnight,
    toDateTime64(toStartOfHour(cutoff), 6, 'UTC') AS hour_start,
    -- the first whole hour at or after local midnight D
    toDateTime64(toStartOfHour(midnight), 6, 'UTC')
        + toIntervalHour(toDateTime64(toStartOfHour(midnight), 6, 'UTC') != midnight)
        AS first_hour,
    toIntervalMicrosecond((SELECT ifNull(max(micros), 0) FROM shift_longest)) AS longest,
    {city:String} != '' OR {district:String} != '' OR {street:String} != ''
        OR {community:String} != '' OR {site_id:String} != '' AS site_scoped,
    {team_id:String} != '' AS by_team,
    NOT site_scoped AND NOT by_team AS hourly,
    if(hourly, hour_start, utc_midnight) AS raw_from,
    -- the person scope key: which bit of firsts / day_firsts applies
    toUInt8(({org:String} != '') + 2 * ({role:String} != '') + 4 * by_team) AS k,
    concat({org:String}, '\x1f\x1f', {team_id:String}) AS recruit_key,
    scoped_sites AS
    (
        SELECT site_id, active, requirements
        FROM sites_at(at = {at:DateTime64(6, 'UTC')})
        WHERE ({city:String} = '' OR city = {city:String})
          AND ({district:String} = '' OR district = {district:String})
          AND ({street:String} = '' OR street = {street:String})
          AND ({community:String} = '' OR community = {community:String})
          AND ({site_id:String} = '' OR site_id = {site_id:String})
    ),
    staffed AS
    (
        -- people on post at the cutoff per site and role (coverage ignores person scopes)
        SELECT site_id, mapFromArrays(groupArray(role), groupArray(n)) AS by_role,
               sum(n) AS people
        FROM
        (
            SELECT site_id, role, sum(toInt64(sign)) AS n
            FROM shift_deltas
            WHERE ended_at > cutoff AND ended_at <= cutoff + longest
              AND started_at > cutoff - longest AND started_at <= cutoff
              AND (NOT site_scoped OR site_id IN (SELECT site_id FROM scoped_sites))
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
    raw AS
    (
        SELECT
            sumIf(s, ended_at > cutoff) AS on_post_now,
            sumIf(s * (toUnixTimestamp64Micro(ended_at) - cutoff_us), ended_at > cutoff)
                AS not_yet_micros,
            sumIf(s, started_at >= raw_from) AS person_times,
            sumIf(len, started_at >= raw_from) AS micros,
            sumIf(s, started_at >= raw_from AND bitTest(firsts, k)) AS new_people,
            sumIf(len, reason = 'auto' AND ended_at >= raw_from AND ended_at <= cutoff)
                AS auto_micros,
            -- on_post_today (person scopes): on post at D, plus first shifts of the day
            -- since D not yet summed per hour
            sumIf(s, started_at < midnight AND ended_at > midnight)
              + sumIf(s, started_at >= midnight AND bitTest(day_firsts, k)
                         AND (NOT hourly OR started_at < first_hour OR started_at >= hour_start))
                AS today
        FROM
        (
            SELECT toInt64(sign) AS s, started_at, ended_at, reason, firsts, day_firsts,
                   s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at))
                       AS len
            FROM shift_deltas
            WHERE started_at <= cutoff
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
              AND ({team_id:String} = '' OR team_id = {team_id:String})
              AND (NOT site_scoped OR site_id IN (SELECT site_id FROM scoped_sites))
              AND (
                    (ended_at > cutoff AND ended_at <= cutoff + longest
                     AND started_at > cutoff - longest)
                 OR (started_at >= raw_from AND ended_at >= raw_from
                     AND ended_at <= cutoff + longest)
                 OR (ended_at >= raw_from AND ended_at <= cutoff
                     AND started_at >= raw_from - longest)
                 OR (NOT site_scoped AND ended_at > midnight AND ended_at <= midnight + longest
                     AND started_at > midnight - longest AND started_at < midnight)
                 OR (NOT site_scoped AND started_at >= midnight AND ended_at >= midnight
                     AND ended_at <= cutoff + longest
                     AND (NOT hourly OR started_at < first_hour OR started_at >= hour_start))
              )
        )
    ),
    past AS
    (
        -- whole hours or days before raw_from, from the one grain that fits the scope
        SELECT sum(shifts) AS person_times, sum(micros) AS micros,
               sum(auto_micros) AS auto_micros, sum(firsts) AS new_people, sum(today) AS today
        FROM
        (
            SELECT shifts, micros, auto_micros,
                   if(k = 0, first0, if(k = 1, first1, if(k = 2, first2, first3))) AS firsts,
                   if(hour >= first_hour,
                      if(k = 0, today0, if(k = 1, today1, if(k = 2, today2, today3))), 0)
                       AS today
            FROM shift_hours
            WHERE hourly AND hour < hour_start
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
            UNION ALL
            SELECT shifts, micros, auto_micros,
                   if(k = 4, first4, if(k = 5, first5, if(k = 6, first6, first7))) AS firsts,
                   0 AS today
            FROM team_days
            WHERE by_team AND team_id = {team_id:String} AND day < utc_day
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
              AND (NOT site_scoped OR site_id IN (SELECT site_id FROM scoped_sites))
            UNION ALL
            SELECT shifts, micros, auto_micros, 0 AS firsts, 0 AS today
            FROM site_days
            WHERE site_scoped AND NOT by_team AND day < utc_day
              AND site_id IN (SELECT site_id FROM scoped_sites)
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
        )
    ),
    at_sites AS
    (
        -- site scopes count distinct people over the few sites in scope
        SELECT
            (SELECT count() FROM
                (SELECT person_id FROM shift_deltas
                 WHERE site_scoped
                   AND ended_at > midnight AND ended_at <= cutoff + longest
                   AND started_at > midnight - longest AND started_at <= cutoff
                   AND site_id IN (SELECT site_id FROM scoped_sites)
                   AND ({org:String} = '' OR org = {org:String})
                   AND ({role:String} = '' OR role = {role:String})
                   AND ({team_id:String} = '' OR team_id = {team_id:String})
                 GROUP BY person_id HAVING sum(sign) > 0)) AS today,
            uniqExact(person_id) AS people,
            uniqExactIf(team_id, team_id != '') AS teams
        FROM site_people
        WHERE site_scoped AND site_id IN (SELECT site_id FROM scoped_sites)
          AND first_start <= cutoff
          AND ({org:String} = '' OR org = {org:String})
          AND ({role:String} = '' OR role = {role:String})
          AND ({team_id:String} = '' OR team_id = {team_id:String})
    ),
    elsewhere AS
    (
        -- other scopes: teams are few, counted distinct; first registrations are summed
        SELECT
            (SELECT uniqExact(team_id) FROM team_cells
             WHERE NOT site_scoped AND first_start <= cutoff
               AND ({org:String} = '' OR org = {org:String})
               AND ({role:String} = '' OR role = {role:String})
               AND ({team_id:String} = '' OR team_id = {team_id:String})) AS teams,
            (SELECT sum(n) FROM recruit_days
             WHERE NOT site_scoped AND {role:String} = '' AND key = recruit_key
               AND day < utc_day)
          + (SELECT sum(sign) FROM recruit_deltas
             WHERE NOT site_scoped AND {role:String} = '' AND key = recruit_key
               AND ts >= utc_midnight AND ts <= cutoff) AS recruited
    )
SELECT
    cutoff AS at,
    if(site_scoped OR {role:String} != '', NULL,
       toUInt64((SELECT recruited FROM elsewhere))) AS recruited,
    toInt64(r.on_post_now) AS on_post_now,
    toInt64(if(site_scoped, (SELECT today FROM at_sites), p.today + r.today)) AS on_post_today,
    toInt64(if(site_scoped, (SELECT people FROM at_sites), p.new_people + r.new_people))
        AS cumulative_people,
    p.person_times + r.person_times AS person_times,
    (p.micros + r.micros - r.not_yet_micros) / 3600e6 AS hours,
    (p.auto_micros + r.auto_micros) / 3600e6 AS hours_auto,
    toInt64(if(site_scoped, (SELECT teams FROM at_sites), (SELECT teams FROM elsewhere)))
        AS teams,
    cov.sites_active AS sites_active,
    cov.sites_covered AS sites_covered,
    if(cov.sites_active = 0, 0, cov.sites_covered / cov.sites_active) AS coverage,
    (SELECT sum(delta) FROM orphan_deltas WHERE ts <= cutoff) AS orphan_checkouts,
    (SELECT count() FROM dlq FINAL) AS dlq
FROM raw AS r, past AS p, coverage AS cov;
