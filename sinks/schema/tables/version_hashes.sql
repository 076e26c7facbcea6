-- Each site version's hash, as the fingerprints count it (a replayed version counts once).
CREATE TABLE IF NOT EXISTS version_hashes
(
    ts DateTime64(6, 'UTC'),
    x  UInt64
)
ENGINE = MergeTree
ORDER BY ts
SETTINGS non_replicated_deduplication_window = 1000;
