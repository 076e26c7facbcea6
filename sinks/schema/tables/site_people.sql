-- Site scopes: each person's first start per site, role, org and team, ordered by site.
CREATE TABLE IF NOT EXISTS site_people
(
    site_id     String,
    person_id   String,
    role        LowCardinality(String),
    org         LowCardinality(String),
    team_id     String,
    first_start SimpleAggregateFunction(min, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (site_id, person_id, role, org, team_id)
SETTINGS non_replicated_deduplication_window = 1000;
