-- Scopes over many sites (a city: about 1,000) read their shifts filed by city: one range
-- of city_shifts, ordered by city and start, where shift_deltas (ordered by time) holds
-- every city's and site_shifts (ordered by site) needs a range per site. A shift version
-- is filed under the city of its site's latest version when it is written (city_key 0:
-- the site had none yet). Readers keep the rows of the sites in scope at the cutoff, and
-- take this path only when every one of those sites was filed under a single city
-- (site_cities); a site that moved city, or a shift written before its site's first
-- version, sends the scope back to the other tables. Hashes as in site_shifts: person,
-- team (0 for none) and city as cityHash64.
CREATE TABLE IF NOT EXISTS city_shifts
(
    city_key   UInt64,
    started_at DateTime64(6, 'UTC'),
    ended_at   DateTime64(6, 'UTC'),
    site_key   UInt64,
    sign       Int8,
    person_key UInt64,
    team_key   UInt64,
    org        LowCardinality(String),
    role       LowCardinality(String),
    reason     LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (city_key, started_at)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS city_shifts_mv TO city_shifts AS
SELECT c.city_key AS city_key, d.started_at AS started_at, d.ended_at AS ended_at,
       d.sk AS site_key, d.sign AS sign, cityHash64(d.person_id) AS person_key,
       if(d.team_id = '', 0, cityHash64(d.team_id)) AS team_key, d.org AS org,
       d.role AS role, d.reason AS reason
FROM (SELECT *, cityHash64(site_id) AS sk FROM shift_deltas) AS d
LEFT JOIN
(
    SELECT cityHash64(site_id) AS sk, argMax(cityHash64(city), (ts, partition, offset)) AS city_key
    FROM site_versions
    GROUP BY site_id
) AS c ON c.sk = d.sk;

-- The cities each site's shifts were filed under.
CREATE TABLE IF NOT EXISTS site_cities
(
    site_key UInt64,
    city_key UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (site_key, city_key);

CREATE MATERIALIZED VIEW IF NOT EXISTS site_cities_mv TO site_cities AS
SELECT DISTINCT site_key, city_key FROM city_shifts;

-- Each person's first start per site, org, role and team (site_people's, filed by city).
CREATE TABLE IF NOT EXISTS city_people
(
    city_key    UInt64,
    site_key    UInt64,
    person_key  UInt64,
    team_key    UInt64,
    org         LowCardinality(String),
    role        LowCardinality(String),
    first_start SimpleAggregateFunction(min, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (city_key, site_key, person_key, team_key, org, role)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS city_people_mv TO city_people AS
SELECT city_key, site_key, person_key, team_key, org, role, min(started_at) AS first_start
FROM city_shifts
WHERE sign = 1
GROUP BY city_key, site_key, person_key, team_key, org, role;

-- Shift sums per site and UTC hour and day (site_hours' and site_totals'), filed by city.
CREATE TABLE IF NOT EXISTS city_hours
(
    city_key    UInt64,
    hour        DateTime('UTC'),
    site_key    UInt64,
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (city_key, hour, site_key)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS city_days
(
    city_key    UInt64,
    day         Date,
    site_key    UInt64,
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (city_key, day, site_key)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS city_hours_mv TO city_hours AS
SELECT city_key, toStartOfHour(r.1) AS hour, site_key, sum(r.2 * s) AS shifts,
       sum(r.2 * len) AS micros, sum(r.3 * len) AS auto_micros
FROM
(
    SELECT city_key, site_key, toInt64(sign) AS s,
           s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
           arrayConcat(
               [(started_at, toInt64(1), toInt64(0))],
               if(reason = 'auto', [(ended_at, toInt64(0), toInt64(1))], [])) AS parts
    FROM city_shifts
)
ARRAY JOIN parts AS r
GROUP BY city_key, hour, site_key;

CREATE MATERIALIZED VIEW IF NOT EXISTS city_days_mv TO city_days AS
SELECT city_key, toDate(hour) AS day, site_key, sum(shifts) AS shifts, sum(micros) AS micros,
       sum(auto_micros) AS auto_micros
FROM city_hours
GROUP BY city_key, day, site_key;

-- What the store already holds, filed by the cities its sites have now; through
-- city_shifts' views, the other tables too.
FILL city_shifts FROM city_shifts_mv;
