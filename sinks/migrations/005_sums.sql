-- Distinct people as sums, and site-ordered reads: every metric fast at national scale.
--
-- 004's rollups made the shift sums fast but still counted distinct people (uniqExact over
-- millions of rows) at query time. Here each shift row carries what it follows
-- (streams/core/follows.py): for each of the eight person scope keys (org?, role?, team?),
-- the end of the same person's previous shift under that key, 0 when none. Under key k,
-- `cumulative_people` counts shifts that follow nothing and `on_post_today` counts shifts
-- reaching past D that follow a shift ended by D; both are sums, kept per day like the
-- others. First registrations per org/team key come from the person agent too
-- (recruit_firsts), as signed rows by time. Site scopes read tables ordered by site.
--
-- The rollups are rebuilt empty: a store already holding shifts predates what the person
-- agent now remembers (the ends of forgotten shifts), so it must be built again by a replay
-- of the topics into an empty store.

SELECT throwIf((SELECT count() FROM shifts) > 0,
    'this store holds shifts written before migration 005 (distinct people as sums): start muster on an empty data directory and replay the topics into it');

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

ALTER TABLE shifts ADD COLUMN IF NOT EXISTS follows Array(Int64);
ALTER TABLE shifts ADD COLUMN IF NOT EXISTS prev_follows Array(Int64);

-- Signed shift versions by start time, with what each follows under scope key k (f0..f7,
-- k = org + 2 * role + 4 * team).
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
    f0 Int64, f1 Int64, f2 Int64, f3 Int64, f4 Int64, f5 Int64, f6 Int64, f7 Int64,
    INDEX team_idx team_id TYPE bloom_filter GRANULARITY 2,
    INDEX site_idx site_id TYPE bloom_filter GRANULARITY 2
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY started_at
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS shift_deltas_mv TO shift_deltas AS
SELECT d.1 AS sign, person_id, shift_id, site_id, role, org, team_id, started_at,
       d.2 AS ended_at, d.3 AS reason,
       d.4[1] AS f0, d.4[2] AS f1, d.4[3] AS f2, d.4[4] AS f3,
       d.4[5] AS f4, d.4[6] AS f5, d.4[7] AS f6, d.4[8] AS f7
FROM
(
    SELECT person_id, shift_id, site_id, role, org, team_id, started_at,
           arrayConcat(
               if(prev_reason = '', [],
                  [(toInt8(-1), assumeNotNull(prev_ended_at), toString(prev_reason), prev_follows)]),
               [(toInt8(1), ended_at, toString(reason), follows)]) AS versions
    FROM shifts
)
ARRAY JOIN versions AS d;

-- Per UTC day of start: shifts, their full length, and shifts that follow nothing under
-- each key (first0..first7: new people); per day of end: the length of auto shifts.
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
    first0 Int64, first1 Int64, first2 Int64, first3 Int64,
    first4 Int64, first5 Int64, first6 Int64, first7 Int64
)
ENGINE = SummingMergeTree
ORDER BY (team_id, day, site_id, org, role)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS team_days_mv TO team_days AS
SELECT team_id, r.1 AS day, site_id, org, role, r.2 * s AS shifts, r.2 * len AS micros,
       r.3 * len AS auto_micros,
       r.2 * s * (f0 = 0) AS first0, r.2 * s * (f1 = 0) AS first1,
       r.2 * s * (f2 = 0) AS first2, r.2 * s * (f3 = 0) AS first3,
       r.2 * s * (f4 = 0) AS first4, r.2 * s * (f5 = 0) AS first5,
       r.2 * s * (f6 = 0) AS first6, r.2 * s * (f7 = 0) AS first7
FROM
(
    SELECT site_id, role, org, team_id, f0, f1, f2, f3, f4, f5, f6, f7,
           toInt64(sign) AS s,
           s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
           -- (day, counts as started that day, counts as an auto shift ended that day)
           arrayConcat(
               [(toDate(started_at), toInt64(1), toInt64(0))],
               if(reason = 'auto', [(toDate(ended_at), toInt64(0), toInt64(1))], [])) AS parts
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
    auto_micros Int64,
    first0 Int64, first1 Int64, first2 Int64, first3 Int64
)
ENGINE = SummingMergeTree
ORDER BY (site_id, day, org, role)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS site_days_mv TO site_days AS
SELECT site_id, day, org, role, sum(shifts) AS shifts, sum(micros) AS micros,
       sum(auto_micros) AS auto_micros, sum(first0) AS first0, sum(first1) AS first1,
       sum(first2) AS first2, sum(first3) AS first3
FROM team_days
GROUP BY site_id, day, org, role;

CREATE TABLE IF NOT EXISTS shift_days
(
    day         Date,
    org         LowCardinality(String),
    role        LowCardinality(String),
    shifts      Int64,
    micros      Int64,
    auto_micros Int64,
    first0 Int64, first1 Int64, first2 Int64, first3 Int64
)
ENGINE = SummingMergeTree
ORDER BY (day, org, role)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS shift_days_mv TO shift_days AS
SELECT day, org, role, sum(shifts) AS shifts, sum(micros) AS micros,
       sum(auto_micros) AS auto_micros, sum(first0) AS first0, sum(first1) AS first1,
       sum(first2) AS first2, sum(first3) AS first3
FROM site_days
GROUP BY day, org, role;

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

-- Site attributes at a cutoff (same columns as before): the latest version by
-- (ts, partition, offset). Sorting and keeping one row per site is several times faster
-- than argMax over that tuple for every column, maps included.
CREATE OR REPLACE VIEW sites_at AS
SELECT site_id, name, city, district, street, community, kind, requirements, active, lat, lon
FROM site_versions
WHERE ts <= {at:DateTime64(6, 'UTC')}
ORDER BY site_id, ts DESC, partition DESC, offset DESC
LIMIT 1 BY site_id;

-- SPEC §4, every metric at one cutoff and scope (same parameters and columns as before).
-- Whole UTC days before the cutoff's come from the day sums; shifts that can still be on
-- post, on post today or partly counted are read as signed rows from shift_deltas.
CREATE OR REPLACE VIEW metrics_at AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toDateTime64({day_start:DateTime64(6, 'UTC')}, 6, 'UTC') AS midnight,
    toUnixTimestamp64Micro(midnight) AS midnight_us,
    toDate(cutoff) AS utc_day,
    toDateTime64(toStartOfDay(cutoff), 6, 'UTC') AS utc_midnight,
    (SELECT ifNull(max(micros), 0) FROM shift_longest) AS longest,
    least(midnight, utc_midnight) - toIntervalMicrosecond(longest) AS window_start,
    {city:String} != '' OR {district:String} != '' OR {street:String} != ''
        OR {community:String} != '' OR {site_id:String} != '' AS site_scoped,
    -- the person scope key: which of f0..f7 and first0..first7 applies
    ({org:String} != '') + 2 * ({role:String} != '') + 4 * ({team_id:String} != '') AS k,
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
        SELECT site_id, mapFromArrays(groupArray(role), groupArray(n)) AS by_role,
               sum(n) AS people
        FROM
        (
            SELECT site_id, role, sum(toInt64(sign)) AS n
            FROM shift_deltas
            PREWHERE ended_at > cutoff
            WHERE started_at > cutoff - toIntervalMicrosecond(longest) AND started_at <= cutoff
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
    recent AS
    (
        SELECT person_id, started_at, ended_at, reason,
               toInt64(sign) AS s,
               s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
               if(k = 0, f0, if(k = 1, f1, if(k = 2, f2, if(k = 3, f3,
                   if(k = 4, f4, if(k = 5, f5, if(k = 6, f6, f7))))))) AS f
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
                   AS auto_micros,
               -- a person's first shift under the key reaching past D (person scopes)
               sumIf(s, ended_at > midnight AND f <= midnight_us) AS on_post_today,
               sumIf(s, started_at >= utc_midnight AND f = 0) AS new_people
        FROM recent
    ),
    today_at_sites AS
    (
        -- site scopes: a person's signed rows ending after midnight sum to their shifts
        SELECT count() AS on_post_today
        FROM (SELECT person_id FROM recent WHERE site_scoped AND ended_at > midnight
              GROUP BY person_id HAVING sum(s) > 0)
    ),
    past AS
    (
        -- whole days before the cutoff's, from the one grain that fits the scope
        SELECT sum(shifts) AS person_times, sum(micros) AS micros, sum(auto_micros) AS auto_micros,
               sum(firsts) AS new_people
        FROM
        (
            SELECT shifts, micros, auto_micros,
                   if(k = 4, first4, if(k = 5, first5, if(k = 6, first6, first7))) AS firsts
            FROM team_days
            WHERE {team_id:String} != '' AND team_id = {team_id:String} AND day < utc_day
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
              AND (NOT site_scoped OR site_id IN (SELECT site_id FROM scoped_sites))
            UNION ALL
            SELECT shifts, micros, auto_micros, 0 AS firsts FROM site_days
            WHERE {team_id:String} = '' AND site_scoped AND day < utc_day
              AND site_id IN (SELECT site_id FROM scoped_sites)
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
            UNION ALL
            SELECT shifts, micros, auto_micros,
                   if(k = 0, first0, if(k = 1, first1, if(k = 2, first2, first3))) AS firsts
            FROM shift_days
            WHERE {team_id:String} = '' AND NOT site_scoped AND day < utc_day
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
        )
    ),
    people_at_sites AS
    (
        SELECT uniqExact(person_id) AS cumulative_people,
               uniqExactIf(team_id, team_id != '') AS teams
        FROM site_people
        WHERE site_scoped AND site_id IN (SELECT site_id FROM scoped_sites)
          AND first_start <= cutoff
          AND ({org:String} = '' OR org = {org:String})
          AND ({role:String} = '' OR role = {role:String})
          AND ({team_id:String} = '' OR team_id = {team_id:String})
    ),
    teams_started AS
    (
        SELECT uniqExact(team_id) AS teams
        FROM team_cells
        WHERE NOT site_scoped AND first_start <= cutoff
          AND ({org:String} = '' OR org = {org:String})
          AND ({role:String} = '' OR role = {role:String})
          AND ({team_id:String} = '' OR team_id = {team_id:String})
    ),
    recruited_people AS
    (
        SELECT sum(sign) AS recruited
        FROM recruit_deltas
        WHERE key = concat({org:String}, '\x1f\x1f', {team_id:String}) AND ts <= cutoff
    )
SELECT
    cutoff AS at,
    if(site_scoped OR {role:String} != '', NULL,
       (SELECT toUInt64(recruited) FROM recruited_people)) AS recruited,
    r.on_post_now AS on_post_now,
    if(site_scoped, (SELECT on_post_today FROM today_at_sites), r.on_post_today) AS on_post_today,
    if(site_scoped, (SELECT cumulative_people FROM people_at_sites),
       p.new_people + r.new_people) AS cumulative_people,
    p.person_times + r.person_times AS person_times,
    (p.micros + r.micros - r.not_yet_micros) / 3600e6 AS hours,
    (p.auto_micros + r.auto_micros) / 3600e6 AS hours_auto,
    if(site_scoped, (SELECT teams FROM people_at_sites), (SELECT teams FROM teams_started))
        AS teams,
    cov.sites_active AS sites_active,
    cov.sites_covered AS sites_covered,
    if(cov.sites_active = 0, 0, cov.sites_covered / cov.sites_active) AS coverage,
    (SELECT sum(delta) FROM orphan_deltas WHERE ts <= cutoff) AS orphan_checkouts,
    (SELECT count() FROM dlq FINAL) AS dlq
FROM recent_totals AS r, past AS p, coverage AS cov;
