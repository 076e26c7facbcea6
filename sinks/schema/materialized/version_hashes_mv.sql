CREATE MATERIALIZED VIEW IF NOT EXISTS version_hashes_mv TO version_hashes AS
SELECT ts, cityHash64(site_id, event_id, ts, partition, offset, active) AS x
FROM site_versions;
