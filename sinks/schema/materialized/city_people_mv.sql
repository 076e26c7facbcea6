CREATE MATERIALIZED VIEW IF NOT EXISTS city_people_mv TO city_people AS
SELECT city_key, site_key, person_key, team_key, org, role, min(started_at) AS first_start
FROM city_shifts
WHERE sign = 1
GROUP BY city_key, site_key, person_key, team_key, org, role;
