-- on_post_series_at reads the part minute before its cutoff from place_moments (the exact
-- starts and ends per city and district) where it joined shift versions to the sites,
-- and corrects every site with a version filed under a place that is not its place at
-- the cutoff from site_shifts (now with the place each version was filed under), where a
-- site filed under two places sent it to every version of the day. The shift versions
-- the store holds are filed again as if written now, so that district_series,
-- site_districts, site_shifts and place_moments agree on where each was filed.
-- metrics_tz reads the part hour for either form of local midnight in one query.
ALTER TABLE site_shifts ADD COLUMN IF NOT EXISTS city LowCardinality(String);
ALTER TABLE site_shifts ADD COLUMN IF NOT EXISTS district LowCardinality(String);
CREATE TABLE IF NOT EXISTS place_moments
(
    moment   DateTime64(6, 'UTC'),
    city     LowCardinality(String),
    district LowCardinality(String),
    people   Int64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(moment)
ORDER BY (moment, city, district)
SETTINGS non_replicated_deduplication_window = 1000;
-- site_shifts is written from filed_shifts, with the place each version was filed under
DROP TABLE IF EXISTS site_shifts_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS site_shifts_mv TO site_shifts AS
SELECT site_key, started_at, ended_at, sign, person_key, org, role, reason, city, district
FROM filed_shifts;
CREATE MATERIALIZED VIEW IF NOT EXISTS place_moments_mv TO place_moments AS
SELECT change.1 AS moment, city, district, sum(change.2) AS people
FROM filed_shifts
ARRAY JOIN [(started_at, toInt64(sign)), (ended_at, -toInt64(sign))] AS change
GROUP BY moment, city, district;
TRUNCATE TABLE district_series;
TRUNCATE TABLE site_districts;
TRUNCATE TABLE site_shifts;
TRUNCATE TABLE place_moments;
-- city_shifts keeps the versions it holds: not written again by the fill
DROP TABLE IF EXISTS city_shifts_mv;
FILL filed_shifts FROM filed_shifts_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS city_shifts_mv TO city_shifts AS
SELECT city_key, started_at, ended_at, site_key, sign, person_key, team_key, org, role, reason
FROM filed_shifts;
VIEW on_post_series_at AS IN SCHEMA;
VIEW on_post_series_by_city_at AS IN SCHEMA;
VIEW metrics_tz AS IN SCHEMA;
