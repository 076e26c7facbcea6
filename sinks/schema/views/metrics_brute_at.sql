-- SPEC §4, every metric at one cutoff and scope, by re-reading every shift: the yardstick
-- the rollups (metrics_at, sinks/metric_reads.py) are checked against; slow on a large
-- store. Empty strings mean "no scope".
-- SELECT * FROM metrics_brute_at(at = '2022-03-15 11:00:00', day_start = '2022-03-14 16:00:00',
--     city = '', district = '', street = '', community = '', site_id = '',
--     org = '', role = '', team_id = '')
CREATE OR REPLACE VIEW metrics_brute_at AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toDateTime64({day_start:DateTime64(6, 'UTC')}, 6, 'UTC') AS midnight,
    {city:String} != '' OR {district:String} != '' OR {street:String} != ''
        OR {community:String} != '' OR {site_id:String} != '' AS site_scoped,
    scoped_sites AS
    (
        SELECT * FROM sites_at(at = {at:DateTime64(6, 'UTC')})
        WHERE ({city:String} = '' OR city = {city:String})
          AND ({district:String} = '' OR district = {district:String})
          AND ({street:String} = '' OR street = {street:String})
          AND ({community:String} = '' OR community = {community:String})
          AND ({site_id:String} = '' OR site_id = {site_id:String})
    ),
    staffed AS
    (
        SELECT site_id, mapFromArrays(groupArray(role), groupArray(n)) AS by_role,
               sum(n) AS people
        FROM
        (
            SELECT site_id, role, uniqExact(person_id) AS n
            FROM shifts FINAL
            WHERE started_at <= cutoff AND ended_at > cutoff
            GROUP BY site_id, role
        )
        GROUP BY site_id
    ),
    coverage AS
    (
        SELECT countIf(active = 1) AS sites_active,
               countIf(active = 1 AND if(
                   empty(mapFilter((r, m) -> m > 0, requirements)),
                   people > 0,
                   arrayAll((r, m) -> by_role[r] >= m, mapKeys(requirements), mapValues(requirements))
               )) AS sites_covered
        FROM scoped_sites AS s
        LEFT JOIN staffed AS st ON st.site_id = s.site_id
    ),
    scoped_shifts AS
    (
        SELECT person_id, team_id, started_at, ended_at, reason
        FROM shifts FINAL
        WHERE started_at <= cutoff
          AND ({org:String} = '' OR org = {org:String})
          AND ({role:String} = '' OR role = {role:String})
          AND ({team_id:String} = '' OR team_id = {team_id:String})
          AND (NOT site_scoped OR site_id IN (SELECT site_id FROM scoped_sites))
    ),
    totals AS
    (
        SELECT uniqExactIf(person_id, ended_at > cutoff) AS on_post_now,
               uniqExactIf(person_id, ended_at > midnight) AS on_post_today,
               uniqExact(person_id) AS cumulative_people,
               count() AS person_times,
               sum(dateDiff('microsecond', started_at, least(ended_at, cutoff))) AS micros,
               sumIf(dateDiff('microsecond', started_at, ended_at),
                     reason = 'auto' AND ended_at <= cutoff) AS micros_auto,
               uniqExactIf(team_id, team_id != '') AS teams
        FROM scoped_shifts
    ),
    recruits AS
    (
        SELECT uniqExact(person_id) AS recruited
        FROM events FINAL
        WHERE type = 'registered' AND ts <= cutoff
          AND ({org:String} = '' OR org = {org:String})
          AND ({team_id:String} = '' OR team_id = {team_id:String})
    )
SELECT
    cutoff AS at,
    if(site_scoped OR {role:String} != '', NULL, (SELECT recruited FROM recruits)) AS recruited,
    t.on_post_now AS on_post_now,
    t.on_post_today AS on_post_today,
    t.cumulative_people AS cumulative_people,
    t.person_times AS person_times,
    t.micros / 3600e6 AS hours,
    t.micros_auto / 3600e6 AS hours_auto,
    t.teams AS teams,
    c.sites_active AS sites_active,
    c.sites_covered AS sites_covered,
    if(c.sites_active = 0, 0, c.sites_covered / c.sites_active) AS coverage,
    (SELECT count() FROM checkouts FINAL WHERE orphan = 1 AND ts <= cutoff) AS orphan_checkouts,
    (SELECT count() FROM dlq FINAL) AS dlq
FROM totals AS t, coverage AS c;
