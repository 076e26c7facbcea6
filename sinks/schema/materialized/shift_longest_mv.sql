CREATE MATERIALIZED VIEW IF NOT EXISTS shift_longest_mv TO shift_longest AS
SELECT toUInt8(0) AS k,
       max(toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS micros
FROM shift_deltas;
