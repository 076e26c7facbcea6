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
