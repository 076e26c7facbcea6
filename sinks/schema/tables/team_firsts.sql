-- Each team's first start under the four person keys without a team (k = org + 2 * role,
-- the other column ''), keyed by a hash of the team: cumulative teams for a national,
-- org or role scope read one key's 140,000 teams, not every (team, org, role) cell.
CREATE TABLE IF NOT EXISTS team_firsts
(
    k           UInt8,
    org         LowCardinality(String),
    role        LowCardinality(String),
    team_key    UInt64,
    first_start SimpleAggregateFunction(min, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (k, org, role, team_key)
SETTINGS non_replicated_deduplication_window = 1000;
