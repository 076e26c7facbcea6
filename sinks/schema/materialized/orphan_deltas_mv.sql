CREATE MATERIALIZED VIEW IF NOT EXISTS orphan_deltas_mv TO orphan_deltas AS
SELECT ts, toInt8(orphan) - toInt8(ifNull(prev_orphan, 0)) AS delta
FROM checkouts
WHERE delta != 0;
