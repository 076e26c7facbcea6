CREATE MATERIALIZED VIEW IF NOT EXISTS recruit_deltas_mv TO recruit_deltas AS
SELECT key, d.1 AS ts, d.2 AS sign
FROM recruit_firsts
ARRAY JOIN
    arrayConcat(
        if(prev_ts IS NULL OR prev_ts = first_ts, [],
           [(assumeNotNull(prev_ts), toInt8(-1))]),
        if(prev_ts = first_ts, [], [(first_ts, toInt8(1))])) AS d;
