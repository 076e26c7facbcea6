CREATE MATERIALIZED VIEW IF NOT EXISTS filed_shifts_mv TO filed_shifts AS
SELECT d.sk AS site_key, c.city_key AS city_key, c.place.1 AS city, c.place.2 AS district,
       d.sign AS sign, d.started_at AS started_at, d.ended_at AS ended_at,
       cityHash64(d.person_id) AS person_key,
       if(d.team_id = '', 0, cityHash64(d.team_id)) AS team_key, d.org AS org,
       d.role AS role, d.reason AS reason
FROM (SELECT *, cityHash64(site_id) AS sk FROM shift_deltas) AS d
LEFT JOIN
(
    SELECT cityHash64(site_id) AS sk,
           argMax((cityHash64(city), city, district), (ts, partition, offset)) AS latest,
           latest.1 AS city_key, (latest.2, latest.3) AS place
    FROM site_versions
    GROUP BY site_id
) AS c ON c.sk = d.sk;
