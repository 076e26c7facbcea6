-- The cities each site's shifts were filed under.
CREATE TABLE IF NOT EXISTS site_cities
(
    site_key UInt64,
    city_key UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (site_key, city_key);
