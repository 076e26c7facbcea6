CREATE MATERIALIZED VIEW IF NOT EXISTS city_shifts_mv TO city_shifts AS
SELECT c.city_key AS city_key, d.started_at AS started_at, d.ended_at AS ended_at,
       d.sk AS site_key, d.sign AS sign, cityHash64(d.person_id) AS person_key,
       if(d.team_id = '', 0, cityHash64(d.team_id)) AS team_key, d.org AS org,
       d.role AS role, d.reason AS reason
FROM (SELECT *, cityHash64(site_id) AS sk FROM shift_deltas) AS d
LEFT JOIN
(
    SELECT cityHash64(site_id) AS sk, argMax(cityHash64(city), (ts, partition, offset)) AS city_key
    FROM site_versions
    GROUP BY site_id
) AS c ON c.sk = d.sk;
