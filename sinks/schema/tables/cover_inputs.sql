-- The fingerprint of the shifts behind each hour: every signed shift version counted, and
-- a hash of its site, role and the part of the hour it covers summed, in each UTC hour
-- from the hour it starts to the hour it ends. A retraction cancels the version it
-- retracts exactly, so the sums depend only on the current versions; and a new version
-- that changes nothing within an hour (a check-out closing a shift some hours after it
-- began) leaves that hour's fingerprint, and its settled coverage, as they were.
CREATE TABLE IF NOT EXISTS cover_inputs
(
    hour DateTime('UTC'),
    n    Int64,
    h    UInt64
)
ENGINE = SummingMergeTree
ORDER BY hour
SETTINGS non_replicated_deduplication_window = 1000;
