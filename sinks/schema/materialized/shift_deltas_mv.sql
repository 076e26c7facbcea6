CREATE MATERIALIZED VIEW IF NOT EXISTS shift_deltas_mv TO shift_deltas AS
SELECT d.1 AS sign, person_id, shift_id, site_id, role, org, team_id, started_at,
       d.2 AS ended_at, d.3 AS reason, d.4 AS firsts, d.5 AS day_firsts
FROM
(
    SELECT person_id, shift_id, site_id, role, org, team_id, started_at,
           arrayConcat(
               if(prev_reason = '', [],
                  [(toInt8(-1), assumeNotNull(prev_ended_at), toString(prev_reason),
                    prev_firsts, prev_day_firsts)]),
               [(toInt8(1), ended_at, toString(reason), firsts, day_firsts)]) AS versions
    FROM shifts
)
ARRAY JOIN versions AS d;
