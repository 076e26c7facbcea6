CREATE MATERIALIZED VIEW IF NOT EXISTS city_shifts_mv TO city_shifts AS
SELECT city_key, started_at, ended_at, site_key, sign, person_key, team_key, org, role, reason
FROM filed_shifts;
