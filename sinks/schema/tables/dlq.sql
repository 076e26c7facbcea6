-- Records rejected to the DLQ, one row per original record.
CREATE TABLE IF NOT EXISTS dlq
(
    topic       String,
    partition   UInt32,
    offset      UInt64,
    key         String,
    error       String,
    raw         String,
    received_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;
