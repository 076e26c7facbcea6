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
