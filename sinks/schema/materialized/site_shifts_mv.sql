CREATE MATERIALIZED VIEW IF NOT EXISTS site_shifts_mv TO site_shifts AS
SELECT cityHash64(site_id) AS site_key, started_at, ended_at, sign,
       cityHash64(person_id) AS person_key, org, role, reason
FROM shift_deltas;
