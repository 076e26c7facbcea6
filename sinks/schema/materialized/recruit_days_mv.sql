CREATE MATERIALIZED VIEW IF NOT EXISTS recruit_days_mv TO recruit_days AS
SELECT key, toDate(ts) AS day, toInt64(sign) AS n
FROM recruit_deltas;
