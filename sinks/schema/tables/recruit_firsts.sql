-- A person's first registration per org/team key (streams/core/follows.py), with the
-- earlier first it replaces; as signed rows by time, `recruited` is a sum.
CREATE TABLE IF NOT EXISTS recruit_firsts
(
    person_id String,
    key       String,
    first_ts  DateTime64(6, 'UTC'),
    prev_ts   Nullable(DateTime64(6, 'UTC')),
    version   UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (person_id, key)
SETTINGS non_replicated_deduplication_window = 1000;
