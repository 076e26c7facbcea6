-- Per UTC hour of start: shifts, full length, and under keys 0..3 (no team) shifts that
-- follow nothing (first*) and first shifts of a local day (today*); per hour of end: the
-- length of auto shifts (hours_auto counts them once ended).
CREATE TABLE IF NOT EXISTS shift_hours
(
    hour        DateTime('UTC'),
    org         LowCardinality(String),
    role        LowCardinality(String),
    shifts      Int64,
    micros      Int64,
    auto_micros Int64,
    first0 Int64, first1 Int64, first2 Int64, first3 Int64,
    today0 Int64, today1 Int64, today2 Int64, today3 Int64
)
ENGINE = SummingMergeTree
ORDER BY (hour, org, role)
SETTINGS non_replicated_deduplication_window = 1000;
