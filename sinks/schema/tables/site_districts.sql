-- The cities and districts each site's shift versions were filed under (filed_shifts), by
-- the UTC day they start.
CREATE TABLE IF NOT EXISTS site_districts
(
    day      Date,
    site_key UInt64,
    city     String,
    district String
)
ENGINE = ReplacingMergeTree
ORDER BY (day, site_key, city, district);
