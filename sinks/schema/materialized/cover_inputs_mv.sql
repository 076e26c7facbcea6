CREATE MATERIALIZED VIEW IF NOT EXISTS cover_inputs_mv TO cover_inputs AS
SELECT toDateTime(hr, 'UTC') AS hour, sum(s) AS n,
       sum(toUInt64(s) * cityHash64(site_id, role,
           greatest(started_at, toDateTime64(hr, 6, 'UTC')),
           least(ended_at, toDateTime64(hr + 3600, 6, 'UTC')))) AS h
FROM
(
    SELECT toInt64(sign) AS s, site_id, role, started_at, ended_at,
           range(toUInt32(toStartOfHour(started_at)),
                 toUInt32(toStartOfHour(ended_at)) + 1, 3600) AS hours
    FROM shift_deltas
)
ARRAY JOIN hours AS hr
GROUP BY hour;
