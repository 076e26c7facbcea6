CREATE MATERIALIZED VIEW IF NOT EXISTS filed_shifts_mv TO filed_shifts AS
SELECT d.sk AS site_key, c.place.1 AS city, c.place.2 AS district, d.sign AS sign,
       d.started_at AS started_at, d.ended_at AS ended_at
FROM (SELECT sign, started_at, ended_at, cityHash64(site_id) AS sk FROM shift_deltas) AS d
LEFT JOIN
(
    SELECT cityHash64(site_id) AS sk, argMax((city, district), (ts, partition, offset)) AS place
    FROM site_versions
    GROUP BY site_id
) AS c ON c.sk = d.sk;
