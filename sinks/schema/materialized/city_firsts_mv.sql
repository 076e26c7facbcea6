CREATE MATERIALIZED VIEW IF NOT EXISTS city_firsts_mv TO city_firsts AS
SELECT city_key, x.1 AS kind, x.2 AS key, min(started_at) AS first_start
FROM city_shifts
ARRAY JOIN arrayFilter(y -> y.2 != 0, [(toUInt8(0), person_key), (toUInt8(1), team_key)]) AS x
WHERE sign = 1
GROUP BY city_key, kind, key;
