-- Rollups that let sinks/metric_reads.py answer national, org and role scopes from whole
-- hours plus the raw shifts of the cutoff's own hour (coverage still counts every shift
-- on post, per site). Each is filled by a materialized view like every other rollup, and
-- once here from what an existing store already holds.

-- Shift deltas carry their site as a 64-bit hash, and their (site, role) cell as that hash
-- XOR the role's. Coverage counts the shifts on post per cell and per site: on a national
-- store about 550,000 rows into 220,000 groups at any cutoff. Grouping by a stored UInt64
-- is several times faster than by the LowCardinality site_id and role, whose dictionary at
-- 30,000 sites is also slow to read (measured on the 100M bench store: 36 ms against
-- 97 ms). Two of 220,000 cells share a hash with odds of about 1 in 10^9.
ALTER TABLE shift_deltas ADD COLUMN IF NOT EXISTS site_key UInt64 MATERIALIZED cityHash64(site_id);
ALTER TABLE shift_deltas ADD COLUMN IF NOT EXISTS cell UInt64 MATERIALIZED bitXor(cityHash64(site_id), cityHash64(role));
ALTER TABLE shift_deltas MATERIALIZE COLUMN site_key SETTINGS mutations_sync = 1;
ALTER TABLE shift_deltas MATERIALIZE COLUMN cell SETTINGS mutations_sync = 1;

-- People on post at each whole UTC hour (started at or before it, ending after it) by org
-- and role, and how long they have yet to run from it. People on post at any T are then
-- this row for T's hour plus the shifts started and ended since, and a local midnight on a
-- whole hour is one row.
CREATE TABLE IF NOT EXISTS on_post_hours
(
    hour        DateTime('UTC'),
    org         LowCardinality(String),
    role        LowCardinality(String),
    people      Int64,
    left_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (hour, org, role)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS on_post_hours_mv TO on_post_hours AS
SELECT toDateTime(intDiv(h, 1000000), 'UTC') AS hour, org, role, sum(s) AS people,
       sum(s * (end_us - h)) AS left_micros
FROM
(
    SELECT org, role, toInt64(sign) AS s, toUnixTimestamp64Micro(ended_at) AS end_us,
           -- the first whole hour at or after the start
           intDiv(toUnixTimestamp64Micro(started_at) + 3599999999, 3600000000) * 3600000000
               AS first_us,
           arrayMap(i -> first_us + i * 3600000000,
                    range(toUInt64(greatest(0, intDiv(end_us - first_us + 3599999999, 3600000000)))))
               AS hours
    FROM shift_deltas
)
ARRAY JOIN hours AS h
GROUP BY hour, org, role;

INSERT INTO on_post_hours
SELECT toDateTime(intDiv(h, 1000000), 'UTC') AS hour, org, role, sum(s) AS people,
       sum(s * (end_us - h)) AS left_micros
FROM
(
    SELECT org, role, toInt64(sign) AS s, toUnixTimestamp64Micro(ended_at) AS end_us,
           intDiv(toUnixTimestamp64Micro(started_at) + 3599999999, 3600000000) * 3600000000
               AS first_us,
           arrayMap(i -> first_us + i * 3600000000,
                    range(toUInt64(greatest(0, intDiv(end_us - first_us + 3599999999, 3600000000)))))
               AS hours
    FROM shift_deltas
)
ARRAY JOIN hours AS h
GROUP BY hour, org, role;

-- Each team's first start under the four person keys without a team (k = org + 2 * role,
-- the other column ''), keyed by a hash of the team: cumulative teams for a national,
-- org or role scope read one key's 140,000 teams, not every (team, org, role) cell.
CREATE TABLE IF NOT EXISTS team_firsts
(
    k           UInt8,
    org         LowCardinality(String),
    role        LowCardinality(String),
    team_key    UInt64,
    first_start SimpleAggregateFunction(min, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (k, org, role, team_key)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS team_firsts_mv TO team_firsts AS
SELECT k, key_org AS org, key_role AS role, team_key, first_start
FROM
(
    SELECT key.1 AS k, key.2 AS key_org, key.3 AS key_role, cityHash64(team_id) AS team_key,
           min(started_at) AS first_start
    FROM shifts
    ARRAY JOIN [(toUInt8(0), '', ''), (toUInt8(1), toString(org), ''),
                (toUInt8(2), '', toString(role)), (toUInt8(3), toString(org), toString(role))]
        AS key
    WHERE team_id != ''
    GROUP BY k, key_org, key_role, team_key
);

INSERT INTO team_firsts
SELECT k, key_org AS org, key_role AS role, team_key, first_start
FROM
(
    SELECT key.1 AS k, key.2 AS key_org, key.3 AS key_role, cityHash64(team_id) AS team_key,
           min(first_start) AS first_start
    FROM team_cells
    ARRAY JOIN [(toUInt8(0), '', ''), (toUInt8(1), toString(org), ''),
                (toUInt8(2), '', toString(role)), (toUInt8(3), toString(org), toString(role))]
        AS key
    GROUP BY k, key_org, key_role, team_key
);

-- Orphan check-outs per UTC day: the count at T is the days before T's plus T's own.
CREATE TABLE IF NOT EXISTS orphan_days
(
    day   Date,
    n     Int64
)
ENGINE = SummingMergeTree
ORDER BY day
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS orphan_days_mv TO orphan_days AS
SELECT toDate(ts) AS day, sum(toInt64(delta)) AS n
FROM orphan_deltas
GROUP BY day;

INSERT INTO orphan_days
SELECT toDate(ts) AS day, sum(toInt64(delta)) AS n
FROM orphan_deltas
GROUP BY day;
