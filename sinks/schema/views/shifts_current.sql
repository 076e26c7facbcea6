CREATE OR REPLACE VIEW shifts_current AS
SELECT person_id, shift_id, site_id, role, org, team_id, started_at, ended_at, reason,
       dateDiff('microsecond', started_at, ended_at) / 3600e6 AS hours
FROM shifts FINAL;
