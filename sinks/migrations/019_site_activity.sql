-- site_inputs_at finds each site's last activity in site_activity (its activity moments
-- by day, hour and moment) where it read every stored shift; the files in sinks/schema
-- say how. Filled from the shift versions the store holds.
CREATE TABLE IF NOT EXISTS site_activity
(
    kind     Enum8('day' = 0, 'hour' = 1, 'moment' = 2),
    bucket   DateTime('UTC'),
    site_key UInt64,
    moment   DateTime64(6, 'UTC'),
    n        Int64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (kind, bucket, site_key, moment)
SETTINGS non_replicated_deduplication_window = 1000;
CREATE MATERIALIZED VIEW IF NOT EXISTS site_activity_mv TO site_activity AS
SELECT level.1 AS kind, level.2 AS bucket, site_key, level.3 AS moment, sum(s) AS n
FROM
(
    SELECT site_key, toInt64(sign) AS s, toDateTime(toStartOfDay(at), 'UTC') AS day,
           arrayJoin(if(reason IN ('check_out', 'transfer'), [started_at, ended_at],
                        [started_at])) AS at
    FROM shift_deltas
)
ARRAY JOIN [('day', day, toDateTime64(day, 6, 'UTC')),
            ('hour', day, toDateTime64(toStartOfHour(at), 6, 'UTC')),
            ('moment', toDateTime(toStartOfHour(at), 'UTC'), at)] AS level
GROUP BY kind, bucket, site_key, moment;
FILL site_activity FROM site_activity_mv;
VIEW site_inputs_at AS IN SCHEMA;
