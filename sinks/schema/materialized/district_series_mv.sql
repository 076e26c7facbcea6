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
