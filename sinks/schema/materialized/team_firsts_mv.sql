CREATE MATERIALIZED VIEW IF NOT EXISTS team_firsts_mv TO team_firsts AS
SELECT k, key_org AS org, key_role AS role, team_key, first_start
FROM
(
    SELECT key.1 AS k, key.2 AS key_org, key.3 AS key_role, cityHash64(team_id) AS team_key,
           min(started_at) AS first_start
    FROM shifts
    ARRAY JOIN [(toUInt8(0), '', ''), (toUInt8(1), toString(org), ''),
                (toUInt8(2), '', toString(role)), (toUInt8(3), toString(org), toString(role))]
        AS key
    WHERE team_id != ''
    GROUP BY k, key_org, key_role, team_key
);
