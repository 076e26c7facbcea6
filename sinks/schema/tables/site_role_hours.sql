-- People on post at each whole UTC hour (started at or before it, ending after it) per site
-- (cityHash64 of site_id), by role in `rolesMap` (summed by role when parts merge and
-- under FINAL; a role whose count is 0 is dropped): the people on post at a site at T are
-- this row for T's hour plus the shift versions started and ended since (site_inputs_at).
CREATE TABLE IF NOT EXISTS site_role_hours
(
    hour     DateTime('UTC'),
    site_key UInt64,
    rolesMap Nested(role LowCardinality(String), people Int64)
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, site_key)
SETTINGS non_replicated_deduplication_window = 1000;
