-- site_activity and site_role_hours keep one row per site and bucket, with the counts
-- per moment (site_activity) and per role (site_role_hours) in a nested map, where they
-- kept a row per moment and per role: site_inputs_at reads a row per site (the days of a
-- site's whole history in one row), not every moment of the hours and days it looks in
-- or every role at the hour. Both filled again from the shift versions the store holds.
-- counts_tz: metrics_tz but the metrics about sites, which the Grafana wall's tiles read
-- (its gauge and site tiles count the sites of its site_board_at read).
DROP TABLE IF EXISTS site_activity_mv;
DROP TABLE IF EXISTS site_activity;
DROP TABLE IF EXISTS site_role_hours_mv;
DROP TABLE IF EXISTS site_role_hours;
CREATE TABLE IF NOT EXISTS site_activity
(
    kind        Enum8('day' = 0, 'hour' = 1, 'moment' = 2),
    bucket      DateTime('UTC'),
    site_key    UInt64,
    activityMap Nested(us UInt64, n Int64)
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (kind, bucket, site_key)
SETTINGS non_replicated_deduplication_window = 1000;
CREATE MATERIALIZED VIEW IF NOT EXISTS site_activity_mv TO site_activity AS
SELECT kind, bucket, site_key, groupArray(us) AS `activityMap.us`,
       groupArray(n) AS `activityMap.n`
FROM
(
    SELECT level.1 AS kind, level.2 AS bucket, site_key, level.3 AS us, sum(s) AS n
    FROM
    (
        SELECT site_key, toInt64(sign) AS s,
               arrayJoin(if(reason IN ('check_out', 'transfer'), [started_at, ended_at],
                            [started_at])) AS moment,
               toDateTime(toStartOfDay(moment), 'UTC') AS day,
               toDateTime(toStartOfHour(moment), 'UTC') AS hour
        FROM shift_deltas
    )
    -- (level, bucket, moment in microseconds)
    ARRAY JOIN [('day', toDateTime(0, 'UTC'), toUInt64(toUnixTimestamp(day)) * 1000000),
                ('hour', day, toUInt64(toUnixTimestamp(hour)) * 1000000),
                ('moment', hour, toUInt64(toUnixTimestamp64Micro(moment)))] AS level
    GROUP BY kind, bucket, site_key, us
    HAVING n != 0
)
GROUP BY kind, bucket, site_key;
CREATE TABLE IF NOT EXISTS site_role_hours
(
    hour     DateTime('UTC'),
    site_key UInt64,
    rolesMap Nested(role LowCardinality(String), people Int64)
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, site_key)
SETTINGS non_replicated_deduplication_window = 1000;
CREATE MATERIALIZED VIEW IF NOT EXISTS site_role_hours_mv TO site_role_hours AS
SELECT hour, site_key, groupArray(role) AS `rolesMap.role`, groupArray(people) AS `rolesMap.people`
FROM
(
    SELECT toDateTime(intDiv(h, 1000000), 'UTC') AS hour, site_key, role, sum(s) AS people
    FROM
    (
        SELECT site_key, role, toInt64(sign) AS s, toUnixTimestamp64Micro(ended_at) AS end_us,
               -- the first whole hour at or after the start
               intDiv(toUnixTimestamp64Micro(started_at) + 3599999999, 3600000000) * 3600000000
                   AS first_us,
               arrayMap(i -> first_us + i * 3600000000,
                        range(toUInt64(greatest(0, intDiv(end_us - first_us + 3599999999,
                                                          3600000000)))))
                   AS hours
        FROM shift_deltas
    )
    ARRAY JOIN hours AS h
    GROUP BY hour, site_key, role
    HAVING people != 0
)
GROUP BY hour, site_key;
FILL site_activity FROM site_activity_mv;
FILL site_role_hours FROM site_role_hours_mv;
VIEW site_inputs_at AS IN SCHEMA;
VIEW metrics_tz AS IN SCHEMA;
VIEW counts_tz AS IN SCHEMA;
