-- site_inputs_at counts the people on post per site and role from site_role_hours (the
-- people on post at each whole hour) and the shift versions of the cutoff's part hour,
-- where it read every shift version that could be on post (a day and more of
-- shift_deltas); the files in sinks/schema say how. Filled from the shift versions the
-- store holds.
CREATE TABLE IF NOT EXISTS site_role_hours
(
    hour     DateTime('UTC'),
    site_key UInt64,
    role     LowCardinality(String),
    people   Int64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, site_key, role)
SETTINGS non_replicated_deduplication_window = 1000;
CREATE MATERIALIZED VIEW IF NOT EXISTS site_role_hours_mv TO site_role_hours AS
SELECT toDateTime(intDiv(h, 1000000), 'UTC') AS hour, site_key, role, sum(s) AS people
FROM
(
    SELECT site_key, role, toInt64(sign) AS s, toUnixTimestamp64Micro(ended_at) AS end_us,
           -- the first whole hour at or after the start
           intDiv(toUnixTimestamp64Micro(started_at) + 3599999999, 3600000000) * 3600000000
               AS first_us,
           arrayMap(i -> first_us + i * 3600000000,
                    range(toUInt64(greatest(0, intDiv(end_us - first_us + 3599999999, 3600000000)))))
               AS hours
    FROM shift_deltas
)
ARRAY JOIN hours AS h
GROUP BY hour, site_key, role;
FILL site_role_hours FROM site_role_hours_mv;
VIEW site_inputs_at AS IN SCHEMA;
