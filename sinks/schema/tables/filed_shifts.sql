-- The signed shift versions as they are written, each with the city and district of its
-- site's latest version then ('' when the site had none yet; city_key 0 then, else
-- cityHash64 of the city): what city_shifts, district_series and site_districts are
-- written from. It keeps nothing (Null): the site lookup is made once per write, and the
-- materialized views over it read its rows as they pass. Hashes as in site_shifts.
CREATE TABLE IF NOT EXISTS filed_shifts
(
    site_key   UInt64,
    city_key   UInt64,
    city       String,
    district   String,
    sign       Int8,
    started_at DateTime64(6, 'UTC'),
    ended_at   DateTime64(6, 'UTC'),
    person_key UInt64,
    team_key   UInt64,
    org        LowCardinality(String),
    role       LowCardinality(String),
    reason     LowCardinality(String)
)
ENGINE = Null;
