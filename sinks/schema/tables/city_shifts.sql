-- Scopes over many sites (a city: about 1,000) read their shifts filed by city: one range
-- of city_shifts, ordered by city and start, where shift_deltas (ordered by time) holds
-- every city's and site_shifts (ordered by site) needs a range per site. A shift version
-- is filed under the city of its site's latest version when it is written (city_key 0:
-- the site had none yet). Readers keep the rows of the sites in scope at the cutoff, and
-- take this path only when every one of those sites was filed under a single city
-- (site_cities); a site that moved city, or a shift written before its site's first
-- version, sends the scope back to the other tables. Hashes as in site_shifts: person,
-- team (0 for none) and city as cityHash64.
CREATE TABLE IF NOT EXISTS city_shifts
(
    city_key   UInt64,
    started_at DateTime64(6, 'UTC'),
    ended_at   DateTime64(6, 'UTC'),
    site_key   UInt64,
    sign       Int8,
    person_key UInt64,
    team_key   UInt64,
    org        LowCardinality(String),
    role       LowCardinality(String),
    reason     LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (city_key, started_at)
SETTINGS non_replicated_deduplication_window = 1000;
