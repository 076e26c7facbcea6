-- on_post_series_at reads the people on post by city and district from district_series
-- (the changes of each whole minute and the people on post at each whole hour, filed
-- under the site's city and district when written), where it read every shift version
-- of the day; the files in sinks/schema say how. The shift versions the store holds are
-- filed as if written now. city_shifts is then written from filed_shifts too: one site
-- lookup per write where there were two.
CREATE TABLE IF NOT EXISTS district_series
(
    kind     Enum8('change' = 0, 'on_post' = 1),
    minute   DateTime('UTC'),
    city     LowCardinality(String),
    district LowCardinality(String),
    people   Int64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (kind, minute, city, district)
SETTINGS non_replicated_deduplication_window = 1000;
CREATE TABLE IF NOT EXISTS site_districts
(
    day      Date,
    site_key UInt64,
    city     String,
    district String
)
ENGINE = ReplacingMergeTree
ORDER BY (day, site_key, city, district);
CREATE TABLE IF NOT EXISTS filed_shifts
(
    site_key   UInt64,
    city_key   UInt64,
    city       String,
    district   String,
    sign       Int8,
    started_at DateTime64(6, 'UTC'),
    ended_at   DateTime64(6, 'UTC'),
    person_key UInt64,
    team_key   UInt64,
    org        LowCardinality(String),
    role       LowCardinality(String),
    reason     LowCardinality(String)
)
ENGINE = Null;
CREATE MATERIALIZED VIEW IF NOT EXISTS district_series_mv TO district_series AS
SELECT e.1 AS kind, toDateTime(intDiv(e.2, 1000000), 'UTC') AS minute, city, district,
       sum(e.3) AS people
FROM
(
    SELECT city, district, toInt64(sign) AS s, toUnixTimestamp64Micro(started_at) AS start_us,
           toUnixTimestamp64Micro(ended_at) AS end_us,
           -- the first whole hour at or after the start
           intDiv(start_us + 3599999999, 3600000000) * 3600000000 AS first_us
    FROM filed_shifts
)
ARRAY JOIN arrayConcat(
    [('change', intDiv(start_us + 59999999, 60000000) * 60000000, s),
     ('change', intDiv(end_us + 59999999, 60000000) * 60000000, -s)],
    arrayMap(i -> ('on_post', first_us + i * 3600000000, s),
             range(toUInt64(greatest(0, intDiv(end_us - first_us + 3599999999, 3600000000))))))
    AS e
GROUP BY kind, minute, city, district;
CREATE MATERIALIZED VIEW IF NOT EXISTS site_districts_mv TO site_districts AS
SELECT DISTINCT toDate(started_at) AS day, site_key, city, district FROM filed_shifts;
CREATE MATERIALIZED VIEW IF NOT EXISTS filed_shifts_mv TO filed_shifts AS
SELECT d.sk AS site_key, c.city_key AS city_key, c.place.1 AS city, c.place.2 AS district,
       d.sign AS sign, d.started_at AS started_at, d.ended_at AS ended_at,
       cityHash64(d.person_id) AS person_key,
       if(d.team_id = '', 0, cityHash64(d.team_id)) AS team_key, d.org AS org,
       d.role AS role, d.reason AS reason
FROM (SELECT *, cityHash64(site_id) AS sk FROM shift_deltas) AS d
LEFT JOIN
(
    SELECT cityHash64(site_id) AS sk,
           argMax((cityHash64(city), city, district), (ts, partition, offset)) AS latest,
           latest.1 AS city_key, (latest.2, latest.3) AS place
    FROM site_versions
    GROUP BY site_id
) AS c ON c.sk = d.sk;
FILL filed_shifts FROM filed_shifts_mv;
-- after the fill: city_shifts holds the versions written before
DROP TABLE city_shifts_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS city_shifts_mv TO city_shifts AS
SELECT city_key, started_at, ended_at, site_key, sign, person_key, team_key, org, role, reason
FROM filed_shifts;
VIEW on_post_series_at AS IN SCHEMA;
VIEW on_post_series_by_city_at AS IN SCHEMA;
