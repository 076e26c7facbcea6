-- Each person's first start per site, org, role and team (site_people's, filed by city).
CREATE TABLE IF NOT EXISTS city_people
(
    city_key    UInt64,
    site_key    UInt64,
    person_key  UInt64,
    team_key    UInt64,
    org         LowCardinality(String),
    role        LowCardinality(String),
    first_start SimpleAggregateFunction(min, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (city_key, site_key, person_key, team_key, org, role)
SETTINGS non_replicated_deduplication_window = 1000;
