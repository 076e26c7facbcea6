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
