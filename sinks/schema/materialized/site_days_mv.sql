CREATE MATERIALIZED VIEW IF NOT EXISTS site_days_mv TO site_days AS
SELECT site_id, r.1 AS day, org, role, r.2 * s AS shifts, r.2 * len AS micros,
       r.3 * len AS auto_micros
FROM
(
    SELECT site_id, org, role,
           toInt64(sign) AS s,
           s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
           arrayConcat(
               [(toDate(started_at), toInt64(1), toInt64(0))],
               if(reason = 'auto', [(toDate(ended_at), toInt64(0), toInt64(1))], [])) AS parts
    FROM shift_deltas
)
ARRAY JOIN parts AS r;
