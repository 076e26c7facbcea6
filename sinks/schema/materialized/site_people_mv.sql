CREATE MATERIALIZED VIEW IF NOT EXISTS site_people_mv TO site_people AS
SELECT site_id, person_id, role, org, team_id, min(started_at) AS first_start
FROM shifts
GROUP BY site_id, person_id, role, org, team_id;
