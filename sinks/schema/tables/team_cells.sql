-- Teams: each team's first start per org and role (teams are few; counted distinct).
CREATE TABLE IF NOT EXISTS team_cells
(
    team_id     String,
    org         LowCardinality(String),
    role        LowCardinality(String),
    first_start SimpleAggregateFunction(min, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (team_id, org, role)
SETTINGS non_replicated_deduplication_window = 1000;
