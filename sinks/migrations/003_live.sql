-- The live layer (SPEC §6): what the site agent publishes, kept for the API and dashboards.

-- The latest published status of every site (one row per site after merges; read FINAL).
CREATE TABLE IF NOT EXISTS site_status
(
    site_id       String,
    at            DateTime64(6, 'UTC'),
    name          String,
    city          String,
    district      String,
    street        Nullable(String),
    community     Nullable(String),
    kind          Nullable(String),
    active        UInt8,
    requirements  Map(String, UInt32),
    lat           Nullable(Float64),
    lon           Nullable(Float64),
    on_post       Map(String, UInt32),
    people        UInt32,
    short         Map(String, UInt32),
    covered       UInt8,
    last_activity Nullable(DateTime64(6, 'UTC')),
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY site_id;

-- People on post per site, role and organisation, as a step function: a row at each minute
-- in which the number changed (the last change of the minute wins). "On post over the day"
-- charts carry each value forward to the next row.
CREATE TABLE IF NOT EXISTS on_post_minutely
(
    minute  DateTime('UTC'),
    site_id String,
    role    LowCardinality(String),
    org     LowCardinality(String),
    people  UInt32,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(minute)
ORDER BY (site_id, role, org, minute);

-- Understaffed alerts (SPEC §6), upserted on open, change and resolve.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id    String,
    kind        LowCardinality(String),
    site_id     String,
    opened_at   DateTime64(6, 'UTC'),
    short       Map(String, UInt32),
    people      UInt32,
    resolved_at Nullable(DateTime64(6, 'UTC')),
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY alert_id;

CREATE OR REPLACE VIEW alerts_current AS
SELECT alert_id, kind, site_id, opened_at, short, people, resolved_at FROM alerts FINAL;

-- SPEC §6 inputs at any cutoff, one row per site known then: its attributes, distinct people
-- on post per role, and its last activity. `short` and `covered` follow from these
-- (streams/core/status.py, the rule the live agent uses too).
-- SELECT * FROM site_inputs_at(at = '2022-03-15 11:00:00')
CREATE OR REPLACE VIEW site_inputs_at AS
WITH toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff
SELECT s.site_id AS site_id, s.name AS name, s.city AS city, s.district AS district,
       s.street AS street, s.community AS community, s.kind AS kind, s.active AS active,
       s.requirements AS requirements, s.lat AS lat, s.lon AS lon,
       p.on_post AS on_post, a.last_activity AS last_activity
FROM sites_at(at = {at:DateTime64(6, 'UTC')}) AS s
LEFT JOIN
(
    SELECT site_id, mapFromArrays(groupArray(role), groupArray(n)) AS on_post
    FROM
    (
        SELECT site_id, role, toUInt32(uniqExact(person_id)) AS n
        FROM shifts FINAL
        WHERE started_at <= cutoff AND ended_at > cutoff
        GROUP BY site_id, role
    )
    GROUP BY site_id
) AS p ON p.site_id = s.site_id
LEFT JOIN
(
    SELECT site_id,
           toNullable(max(if(reason IN ('check_out', 'transfer') AND ended_at <= cutoff,
                  greatest(started_at, ended_at), started_at))) AS last_activity
    FROM shifts FINAL
    WHERE started_at <= cutoff
    GROUP BY site_id
) AS a ON a.site_id = s.site_id;
