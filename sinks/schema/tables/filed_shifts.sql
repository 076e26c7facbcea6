-- The signed shift versions as they are written, each with the city and district of its
-- site's latest version then ('' when the site had none yet): what district_series and
-- site_districts are written from. It keeps nothing (Null): the site lookup is made once
-- per write, and the two materialized views over it read its rows as they pass.
CREATE TABLE IF NOT EXISTS filed_shifts
(
    site_key   UInt64,
    city       String,
    district   String,
    sign       Int8,
    started_at DateTime64(6, 'UTC'),
    ended_at   DateTime64(6, 'UTC')
)
ENGINE = Null;
