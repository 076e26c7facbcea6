-- Site scopes without a person scope: shift sums per site and UTC day, and per site and
-- UTC hour, keyed by the site's 64-bit hash. sinks/metric_reads.py reads the days before
-- the cutoff's UTC day from site_totals, that day's whole hours from site_hours, and raw
-- only the cutoff's own hour, where it read every shift of the UTC day (site_days keeps
-- org and role: a city's days there are about a million rows, here about 30,000).
CREATE TABLE IF NOT EXISTS site_totals
(
    site_key    UInt64,
    day         Date,
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (site_key, day)
SETTINGS non_replicated_deduplication_window = 1000;
