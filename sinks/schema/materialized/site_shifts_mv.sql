CREATE MATERIALIZED VIEW IF NOT EXISTS site_shifts_mv TO site_shifts AS
SELECT site_key, started_at, ended_at, sign, person_key, org, role, reason, city, district
FROM filed_shifts;
