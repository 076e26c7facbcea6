-- Per shift version: counted in the hour it starts, and as an auto shift in the hour it
-- ends, like shift_hours; the days are those hours summed (an hour lies in one UTC day).
CREATE MATERIALIZED VIEW IF NOT EXISTS site_hours_mv TO site_hours AS
SELECT toStartOfHour(r.1) AS hour, site_key, sum(r.2 * s) AS shifts,
       sum(r.2 * len) AS micros, sum(r.3 * len) AS auto_micros
FROM
(
    SELECT cityHash64(site_id) AS site_key, toInt64(sign) AS s,
           s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
           arrayConcat(
               [(started_at, toInt64(1), toInt64(0))],
               if(reason = 'auto', [(ended_at, toInt64(0), toInt64(1))], [])) AS parts
    FROM shift_deltas
)
ARRAY JOIN parts AS r
GROUP BY hour, site_key;
