CREATE MATERIALIZED VIEW IF NOT EXISTS team_days_mv TO team_days AS
SELECT team_id, r.1 AS day, site_id, org, role, r.2 * s AS shifts, r.2 * len AS micros,
       r.3 * len AS auto_micros,
       r.2 * s * bitTest(firsts, 4) AS first4, r.2 * s * bitTest(firsts, 5) AS first5,
       r.2 * s * bitTest(firsts, 6) AS first6, r.2 * s * bitTest(firsts, 7) AS first7
FROM
(
    SELECT team_id, site_id, org, role, firsts,
           toInt64(sign) AS s,
           s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
           arrayConcat(
               [(toDate(started_at), toInt64(1), toInt64(0))],
               if(reason = 'auto', [(toDate(ended_at), toInt64(0), toInt64(1))], [])) AS parts
    FROM shift_deltas
    WHERE team_id != ''
)
ARRAY JOIN parts AS r;
