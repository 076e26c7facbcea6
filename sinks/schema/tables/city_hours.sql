-- Shift sums per site and UTC hour and day (site_hours' and site_totals'), filed by city.
CREATE TABLE IF NOT EXISTS city_hours
(
    city_key    UInt64,
    hour        DateTime('UTC'),
    site_key    UInt64,
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (city_key, hour, site_key)
SETTINGS non_replicated_deduplication_window = 1000;
