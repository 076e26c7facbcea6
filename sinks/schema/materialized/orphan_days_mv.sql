CREATE MATERIALIZED VIEW IF NOT EXISTS orphan_days_mv TO orphan_days AS
SELECT toDate(ts) AS day, sum(toInt64(delta)) AS n
FROM orphan_deltas
GROUP BY day;
