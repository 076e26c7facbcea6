CREATE MATERIALIZED VIEW IF NOT EXISTS shift_hours_mv TO shift_hours AS
SELECT r.1 AS hour, org, role, r.2 * s AS shifts, r.2 * len AS micros,
       r.3 * len AS auto_micros,
       r.2 * s * bitTest(firsts, 0) AS first0, r.2 * s * bitTest(firsts, 1) AS first1,
       r.2 * s * bitTest(firsts, 2) AS first2, r.2 * s * bitTest(firsts, 3) AS first3,
       r.2 * s * bitTest(day_firsts, 0) AS today0, r.2 * s * bitTest(day_firsts, 1) AS today1,
       r.2 * s * bitTest(day_firsts, 2) AS today2, r.2 * s * bitTest(day_firsts, 3) AS today3
FROM
(
    SELECT org, role, firsts, day_firsts,
           toInt64(sign) AS s,
           s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
           -- (hour, counts as started in it, counts as an auto shift ended in it)
           arrayConcat(
               [(toStartOfHour(started_at), toInt64(1), toInt64(0))],
               if(reason = 'auto', [(toStartOfHour(ended_at), toInt64(0), toInt64(1))], []))
               AS parts
    FROM shift_deltas
)
ARRAY JOIN parts AS r;
