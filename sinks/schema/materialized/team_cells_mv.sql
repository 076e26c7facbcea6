CREATE MATERIALIZED VIEW IF NOT EXISTS team_cells_mv TO team_cells AS
SELECT team_id, org, role, min(started_at) AS first_start
FROM shifts
WHERE team_id != ''
GROUP BY team_id, org, role;
