CREATE MATERIALIZED VIEW IF NOT EXISTS place_moments_mv TO place_moments AS
SELECT change.1 AS moment, city, district, sum(change.2) AS people
FROM filed_shifts
ARRAY JOIN [(started_at, toInt64(sign)), (ended_at, -toInt64(sign))] AS change
GROUP BY moment, city, district;
