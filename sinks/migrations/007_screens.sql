-- Screens: what the Grafana dashboards, the built-in wall and the picture bulletin show
-- beside the SPEC §4 figures. Every view reads the same tables and rules as metrics_at and
-- site_inputs_at, so a screen, the CLI and the API agree. `tz` is the pipeline's time zone
-- (MUSTER_TZ): it fixes local midnight D, the start of "today".

-- Every SPEC §4 metric at `at`, city-wide (no scope), with D taken from `tz`.
-- SELECT * FROM metrics_tz(at = '2022-03-15 11:00:00', tz = 'Asia/Shanghai')
CREATE OR REPLACE VIEW metrics_tz AS
SELECT *
FROM metrics_at(
    at = {at:DateTime64(6, 'UTC')},
    day_start = toDateTime64(toStartOfDay(toDateTime({at:DateTime64(6, 'UTC')}, {tz:String})), 6, 'UTC'),
    city = '', district = '', street = '', community = '', site_id = '',
    org = '', role = '', team_id = '');

-- One row per site known at `at`: SPEC §6 attributes and people on post, the total missing
-- (`short`, summed over roles), `covered` (the SPEC §4 rule) and a status word for colour:
-- covered, understaffed (short of someone), unstaffed (active, no requirement, nobody on
-- post), inactive.
-- SELECT * FROM site_board_at(at = '2022-03-15 11:00:00')
CREATE OR REPLACE VIEW site_board_at AS
SELECT site_id, name, city, district, street, community, kind, active, lat, lon,
       requirements, on_post, people, required, short, covered,
       multiIf(NOT active, 'inactive', covered, 'covered', short > 0, 'understaffed',
               'unstaffed') AS status,
       last_activity
FROM
(
    SELECT site_id, name, city, district, street, community, kind, active, lat, lon,
           requirements, on_post,
           toUInt32(arraySum(mapValues(on_post))) AS people,
           toUInt32(arraySum(arrayFilter(m -> m > 0, mapValues(requirements)))) AS required,
           toUInt32(arraySum(arrayMap((r, m) -> greatest(toInt64(m) - toInt64(on_post[r]), 0),
                                      mapKeys(requirements), mapValues(requirements)))) AS short,
           active AND if(required = 0, people > 0, short = 0) AS covered,
           last_activity
    FROM site_inputs_at(at = {at:DateTime64(6, 'UTC')})
);

-- People on post over the day, by district: at local midnight D and every `step_s` seconds
-- after it up to `at`, and at `at` itself. Districts are the sites' at `at`.
-- SELECT * FROM on_post_series_at(at = '2022-03-15 11:00:00', tz = 'Asia/Shanghai', step_s = 900)
CREATE OR REPLACE VIEW on_post_series_at AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toDateTime64(toStartOfDay(toDateTime(cutoff, {tz:String})), 6, 'UTC') AS midnight,
    greatest(toUInt32({step_s:UInt32}), 60) AS step,
    arrayDistinct(arrayConcat(
        arrayMap(k -> midnight + toIntervalSecond(k * step),
                 range(toUInt32(intDiv(dateDiff('second', midnight, cutoff), step) + 1))),
        [cutoff])) AS moments
SELECT t AS time, s.district AS district, toUInt32(count()) AS people
FROM
(
    SELECT site_id, arrayJoin(arrayFilter(m -> started_at <= m AND m < ended_at, moments)) AS t
    FROM shifts FINAL
    WHERE started_at <= cutoff AND ended_at > midnight
) AS p
INNER JOIN sites_at(at = {at:DateTime64(6, 'UTC')}) AS s ON s.site_id = p.site_id
GROUP BY time, district
ORDER BY time, district;

-- One site's people on post by role, at `from`, every `step_s` seconds after it, and at `to`
-- (a role with nobody on post at a moment has no row for it).
-- SELECT * FROM site_on_post_series(site_id = 'S1', from = '2022-03-15 00:00:00',
--     to = '2022-03-15 11:00:00', step_s = 300)
CREATE OR REPLACE VIEW site_on_post_series AS
WITH
    toDateTime64({from:DateTime64(6, 'UTC')}, 6, 'UTC') AS t0,
    toDateTime64({to:DateTime64(6, 'UTC')}, 6, 'UTC') AS t1,
    greatest(toUInt32({step_s:UInt32}), 60) AS step,
    arrayDistinct(arrayConcat(
        arrayMap(k -> t0 + toIntervalSecond(k * step),
                 range(toUInt32(intDiv(greatest(dateDiff('second', t0, t1), 0), step) + 1))),
        [t1])) AS moments
SELECT t AS time, role, toUInt32(count()) AS people
FROM
(
    SELECT role, arrayJoin(arrayFilter(m -> started_at <= m AND m < ended_at, moments)) AS t
    FROM shifts FINAL
    WHERE site_id = {site_id:String} AND started_at <= t1 AND ended_at > t0
)
GROUP BY time, role
ORDER BY time, role;

-- Per organisation and team, shifts started at or before `at`: SPEC §4 hours (up to `at`),
-- person-times and distinct people. team_id is '' for shifts without a team.
-- SELECT * FROM team_board_at(at = '2022-03-15 11:00:00')
CREATE OR REPLACE VIEW team_board_at AS
WITH toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff
SELECT org, team_id,
       sum(dateDiff('microsecond', started_at, least(ended_at, cutoff))) / 3600e6 AS hours,
       toUInt64(count()) AS person_times,
       toUInt64(uniqExact(person_id)) AS people
FROM shifts FINAL
WHERE started_at <= cutoff
GROUP BY org, team_id;

-- Service hours per person (for certificates), shifts started at or before `at`.
-- SELECT * FROM person_hours_at(at = '2022-03-15 11:00:00')
CREATE OR REPLACE VIEW person_hours_at AS
WITH toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff
SELECT person_id,
       argMax(org, started_at) AS org,
       argMax(team_id, started_at) AS team_id,
       toUInt64(count()) AS person_times,
       sum(dateDiff('microsecond', started_at, least(ended_at, cutoff))) / 3600e6 AS hours,
       sumIf(dateDiff('microsecond', started_at, ended_at),
             reason = 'auto' AND ended_at <= cutoff) / 3600e6 AS hours_auto,
       min(started_at) AS first_shift,
       max(started_at) AS last_shift
FROM shifts FINAL
WHERE started_at <= cutoff
GROUP BY person_id;
