-- SPEC §4, every metric at one cutoff and scope, from the rollups: what analysts and
-- Grafana call. Empty strings mean "no scope"; day_start is local midnight D in UTC.
-- SELECT * FROM metrics_at(at = '2022-03-15 11:00:00', day_start = '2022-03-14 16:00:00',
--     city = '', district = '', street = '', community = '', site_id = '',
--     org = '', role = '', team_id = '')
-- The one-row parts (`at_sites`, `elsewhere`) are joined once like `raw`, `past` and
-- `coverage` rather than read as a scalar subquery at each use: ClickHouse analyses a WITH
-- subquery again wherever it is named. The API reads the same rollups through
-- sinks/metric_reads.py; tests hold the two equal, and both to metrics_brute_at.
CREATE OR REPLACE VIEW metrics_at AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toUnixTimestamp64Micro(cutoff) AS cutoff_us,
    toDateTime64({day_start:DateTime64(6, 'UTC')}, 6, 'UTC') AS midnight,
    toDate(cutoff) AS utc_day,
    toDateTime64(toStartOfDay(cutoff), 6, 'UTC') AS utc_midnight,
    toDateTime64(toStartOfHour(cutoff), 6, 'UTC') AS hour_start,
    -- the first whole hour at or after local midnight D
    toDateTime64(toStartOfHour(midnight), 6, 'UTC')
        + toIntervalHour(toDateTime64(toStartOfHour(midnight), 6, 'UTC') != midnight)
        AS first_hour,
    toIntervalMicrosecond((SELECT ifNull(max(micros), 0) FROM shift_longest)) AS longest,
    {city:String} != '' OR {district:String} != '' OR {street:String} != ''
        OR {community:String} != '' OR {site_id:String} != '' AS site_scoped,
    {team_id:String} != '' AS by_team,
    NOT site_scoped AND NOT by_team AS hourly,
    if(hourly, hour_start, utc_midnight) AS raw_from,
    -- the person scope key: which bit of firsts / day_firsts applies
    toUInt8(({org:String} != '') + 2 * ({role:String} != '') + 4 * by_team) AS k,
    concat({org:String}, '\x1f\x1f', {team_id:String}) AS recruit_key,
    -- coverage from the cutoff's settled hour (sinks/coverage.py) when that settling was
    -- computed from exactly the shifts and site versions the store holds, and its rows
    -- are still there; otherwise from every shift on post (`staffed` below)
    toDateTime(toStartOfHour(cutoff), 'UTC') AS cover_hour,
    (SELECT argMax((n, h, v, gen), gen) FROM cover_prints WHERE hour = cover_hour) AS got,
    (SELECT (sum(n), sum(h)) FROM cover_inputs WHERE hour = cover_hour) AS inputs,
    got.1 = inputs.1 AND got.2 = inputs.2
        AND got.3 = (SELECT sum(DISTINCT x) FROM version_hashes WHERE ts < cover_hour + 3600)
        AND (SELECT count() FROM cover_hours
             WHERE hour = cover_hour AND gen = got.4 AND site_key = 0) > 0 AS settled,
    scoped_sites AS
    (
        SELECT site_id, active, requirements
        FROM sites_at(at = {at:DateTime64(6, 'UTC')})
        WHERE ({city:String} = '' OR city = {city:String})
          AND ({district:String} = '' OR district = {district:String})
          AND ({street:String} = '' OR street = {street:String})
          AND ({community:String} = '' OR community = {community:String})
          AND ({site_id:String} = '' OR site_id = {site_id:String})
    ),
    staffed AS
    (
        -- people on post at the cutoff per site and role (coverage ignores person scopes)
        SELECT site_id, mapFromArrays(groupArray(role), groupArray(n)) AS by_role,
               sum(n) AS people
        FROM
        (
            SELECT site_id, role, sum(toInt64(sign)) AS n
            FROM shift_deltas
            WHERE NOT settled
              AND ended_at > cutoff AND ended_at <= cutoff + longest
              AND started_at > cutoff - longest AND started_at <= cutoff
              AND (NOT site_scoped OR site_id IN (SELECT site_id FROM scoped_sites))
            GROUP BY site_id, role
            HAVING n > 0
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
        WHERE NOT settled
    ),
    settled_coverage AS
    (
        SELECT countIf(site_key != 0 AND bitXor(active,
                   arrayCount(x -> x <= cutoff, active_flips) % 2) = 1) AS sites_active,
               countIf(site_key != 0 AND bitXor(state,
                   arrayCount(x -> x <= cutoff, flips) % 2) = 1) AS sites_covered
        FROM cover_hours
        WHERE settled AND hour = cover_hour AND gen = got.4
          AND (NOT site_scoped
               OR site_key IN (SELECT cityHash64(site_id) FROM scoped_sites WHERE settled))
    ),
    raw AS
    (
        SELECT
            sumIf(s, ended_at > cutoff) AS on_post_now,
            sumIf(s * (toUnixTimestamp64Micro(ended_at) - cutoff_us), ended_at > cutoff)
                AS not_yet_micros,
            sumIf(s, started_at >= raw_from) AS person_times,
            sumIf(len, started_at >= raw_from) AS micros,
            sumIf(s, started_at >= raw_from AND bitTest(firsts, k)) AS new_people,
            sumIf(len, reason = 'auto' AND ended_at >= raw_from AND ended_at <= cutoff)
                AS auto_micros,
            -- on_post_today (person scopes): on post at D, plus first shifts of the day
            -- since D not yet summed per hour
            sumIf(s, started_at < midnight AND ended_at > midnight)
              + sumIf(s, started_at >= midnight AND bitTest(day_firsts, k)
                         AND (NOT hourly OR started_at < first_hour OR started_at >= hour_start))
                AS today
        FROM
        (
            SELECT toInt64(sign) AS s, started_at, ended_at, reason, firsts, day_firsts,
                   s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at))
                       AS len
            FROM shift_deltas
            WHERE started_at <= cutoff
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
              AND ({team_id:String} = '' OR team_id = {team_id:String})
              AND (NOT site_scoped OR site_id IN (SELECT site_id FROM scoped_sites))
              AND (
                    (ended_at > cutoff AND ended_at <= cutoff + longest
                     AND started_at > cutoff - longest)
                 OR (started_at >= raw_from AND ended_at >= raw_from
                     AND ended_at <= cutoff + longest)
                 OR (ended_at >= raw_from AND ended_at <= cutoff
                     AND started_at >= raw_from - longest)
                 OR (NOT site_scoped AND ended_at > midnight AND ended_at <= midnight + longest
                     AND started_at > midnight - longest AND started_at < midnight)
                 OR (NOT site_scoped AND started_at >= midnight AND ended_at >= midnight
                     AND ended_at <= cutoff + longest
                     AND (NOT hourly OR started_at < first_hour OR started_at >= hour_start))
              )
        )
    ),
    past AS
    (
        -- whole hours or days before raw_from, from the one grain that fits the scope
        SELECT sum(shifts) AS person_times, sum(micros) AS micros,
               sum(auto_micros) AS auto_micros, sum(firsts) AS new_people, sum(today) AS today
        FROM
        (
            SELECT shifts, micros, auto_micros,
                   if(k = 0, first0, if(k = 1, first1, if(k = 2, first2, first3))) AS firsts,
                   if(hour >= first_hour,
                      if(k = 0, today0, if(k = 1, today1, if(k = 2, today2, today3))), 0)
                       AS today
            FROM shift_hours
            WHERE hourly AND hour < hour_start
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
            UNION ALL
            SELECT shifts, micros, auto_micros,
                   if(k = 4, first4, if(k = 5, first5, if(k = 6, first6, first7))) AS firsts,
                   0 AS today
            FROM team_days
            WHERE by_team AND team_id = {team_id:String} AND day < utc_day
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
              AND (NOT site_scoped OR site_id IN (SELECT site_id FROM scoped_sites))
            UNION ALL
            SELECT shifts, micros, auto_micros, 0 AS firsts, 0 AS today
            FROM site_days
            WHERE site_scoped AND NOT by_team AND day < utc_day
              AND site_id IN (SELECT site_id FROM scoped_sites)
              AND ({org:String} = '' OR org = {org:String})
              AND ({role:String} = '' OR role = {role:String})
        )
    ),
    at_sites AS
    (
        -- site scopes count distinct people over the few sites in scope
        SELECT
            (SELECT count() FROM
                (SELECT person_id FROM shift_deltas
                 WHERE site_scoped
                   AND ended_at > midnight AND ended_at <= cutoff + longest
                   AND started_at > midnight - longest AND started_at <= cutoff
                   AND site_id IN (SELECT site_id FROM scoped_sites)
                   AND ({org:String} = '' OR org = {org:String})
                   AND ({role:String} = '' OR role = {role:String})
                   AND ({team_id:String} = '' OR team_id = {team_id:String})
                 GROUP BY person_id HAVING sum(sign) > 0)) AS today,
            uniqExact(person_id) AS people,
            uniqExactIf(team_id, team_id != '') AS teams
        FROM site_people
        WHERE site_scoped AND site_id IN (SELECT site_id FROM scoped_sites)
          AND first_start <= cutoff
          AND ({org:String} = '' OR org = {org:String})
          AND ({role:String} = '' OR role = {role:String})
          AND ({team_id:String} = '' OR team_id = {team_id:String})
    ),
    elsewhere AS
    (
        -- other scopes: teams are few, counted distinct; first registrations are summed
        SELECT
            if(hourly,
               (SELECT uniqExact(team_key) FROM team_firsts
                WHERE hourly AND team_firsts.k = toUInt8(({org:String} != '') + 2 * ({role:String} != ''))
                  AND org = {org:String} AND role = {role:String}
                  AND first_start <= cutoff),
               (SELECT uniqExact(team_id) FROM team_cells
             WHERE NOT site_scoped AND NOT hourly AND first_start <= cutoff
               AND ({org:String} = '' OR org = {org:String})
               AND ({role:String} = '' OR role = {role:String})
               AND ({team_id:String} = '' OR team_id = {team_id:String}))) AS teams,
            (SELECT sum(n) FROM recruit_days
             WHERE NOT site_scoped AND {role:String} = '' AND key = recruit_key
               AND day < utc_day)
          + (SELECT sum(sign) FROM recruit_deltas
             WHERE NOT site_scoped AND {role:String} = '' AND key = recruit_key
               AND ts >= utc_midnight AND ts <= cutoff) AS recruited
    )
SELECT
    cutoff AS at,
    if(site_scoped OR {role:String} != '', NULL, toUInt64(e.recruited)) AS recruited,
    toInt64(r.on_post_now) AS on_post_now,
    toInt64(if(site_scoped, a.today, p.today + r.today)) AS on_post_today,
    toInt64(if(site_scoped, a.people, p.new_people + r.new_people))
        AS cumulative_people,
    p.person_times + r.person_times AS person_times,
    (p.micros + r.micros - r.not_yet_micros) / 3600e6 AS hours,
    (p.auto_micros + r.auto_micros) / 3600e6 AS hours_auto,
    toInt64(if(site_scoped, a.teams, e.teams))
        AS teams,
    if(settled, sc.sites_active, cov.sites_active) AS sites_active,
    if(settled, sc.sites_covered, cov.sites_covered) AS sites_covered,
    if(sites_active = 0, 0, sites_covered / sites_active) AS coverage,
    (SELECT sum(delta) FROM orphan_deltas WHERE ts <= cutoff) AS orphan_checkouts,
    (SELECT count() FROM dlq FINAL) AS dlq
FROM raw AS r, past AS p, coverage AS cov, settled_coverage AS sc, at_sites AS a, elsewhere AS e;
