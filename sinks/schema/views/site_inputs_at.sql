-- SPEC §6 inputs at any cutoff, one row per site known then: its attributes, distinct people
-- on post per role, and its last activity. `short` and `covered` follow from these
-- (streams/core/status.py, the rule the live agent uses too).
-- SELECT * FROM site_inputs_at(at = '2022-03-15 11:00:00')
CREATE OR REPLACE VIEW site_inputs_at AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toStartOfHour(cutoff) AS cutoff_hour,
    toStartOfDay(cutoff_hour) AS cutoff_day,
    toUInt64(toUnixTimestamp64Micro(cutoff)) AS cutoff_us,
    toUInt64(toUnixTimestamp(cutoff_hour)) * 1000000 AS cutoff_hour_us,
    toUInt64(toUnixTimestamp(cutoff_day)) * 1000000 AS cutoff_day_us,
    toIntervalMicrosecond((SELECT toInt64(ifNull(max(micros), 0)) FROM shift_longest)) AS longest
SELECT s.site_id AS site_id, s.name AS name, s.city AS city, s.district AS district,
       s.street AS street, s.community AS community, s.kind AS kind, s.active AS active,
       s.requirements AS requirements, s.lat AS lat, s.lon AS lon,
       p.on_post AS on_post, a.last_activity AS last_activity
FROM sites_at(at = {at:DateTime64(6, 'UTC')}) AS s
LEFT JOIN
(
    -- people on post per site and role: at the whole hour at or before the cutoff
    -- (site_role_hours, a row per site), plus the shift versions starting since, less
    -- those ending since (the shift versions ending in that part hour, and those starting
    -- in it and ending later: two short ranges of shift_deltas). A person's shifts never
    -- overlap, so the net count is the distinct people.
    SELECT site_key,
           mapApply((r, n) -> (r, toUInt32(n)), mapFilter((r, n) -> n > 0, mapAdd(h.m, d.m)))
               AS on_post
    FROM
    (
        SELECT site_key, mapFromArrays(rolesMap.role, rolesMap.people) AS m
        FROM site_role_hours FINAL
        WHERE hour = cutoff_hour
    ) AS h
    FULL JOIN
    (
        SELECT site_key, mapFromArrays(groupArray(role), groupArray(n)) AS m
        FROM
        (
            SELECT site_key, role, sum(n) AS n
            FROM
            (
                SELECT site_key, role,
                       toInt64(sign) * (toInt64(started_at > cutoff_hour) - 1) AS n
                FROM shift_deltas
                WHERE ended_at > cutoff_hour AND ended_at <= cutoff
                  AND started_at <= cutoff
                UNION ALL
                SELECT site_key, role, toInt64(sign) AS n
                FROM shift_deltas
                WHERE started_at > cutoff_hour AND started_at <= cutoff
                  AND ended_at > cutoff AND ended_at <= cutoff + longest
            )
            GROUP BY site_key, role
        )
        GROUP BY site_key
    ) AS d USING (site_key)
) AS p ON p.site_key = cityHash64(s.site_id)
LEFT JOIN
(
    -- the latest activity moment at or before the cutoff (site_activity): in the cutoff's
    -- part hour, or else in the site's latest hour before it with any, found in the
    -- site's latest day before the cutoff's UTC day or the whole hours of that day so far.
    -- FINAL sums each moment's count over retracted and current versions; only the
    -- moments still counted are taken.
    SELECT site_key, toNullable(fromUnixTimestamp64Micro(toInt64(max(latest)), 'UTC'))
               AS last_activity
    FROM
    (
        SELECT site_key,
               arrayMax(arrayFilter((m, n) -> n > 0 AND m <= cutoff_us,
                                    activityMap.us, activityMap.n)) AS latest
        FROM site_activity FINAL
        WHERE kind = 'moment'
          AND (bucket = cutoff_hour OR (bucket, site_key) IN
          (
              SELECT toDateTime(intDiv(max(hour), 1000000), 'UTC'), site_key
              FROM
              (
                  SELECT site_key,
                         arrayMax(arrayFilter((h, n) -> n > 0 AND h < cutoff_hour_us,
                                              activityMap.us, activityMap.n)) AS hour
                  FROM site_activity FINAL
                  WHERE kind = 'hour'
                    AND (bucket = cutoff_day OR (bucket, site_key) IN
                    (
                        SELECT toDateTime(intDiv(arrayMax(arrayFilter(
                                   (d, n) -> n > 0 AND d < cutoff_day_us,
                                   activityMap.us, activityMap.n)), 1000000), 'UTC'),
                               site_key
                        FROM site_activity FINAL
                        WHERE kind = 'day'
                    ))
              )
              WHERE hour > 0
              GROUP BY site_key
          ))
    )
    WHERE latest > 0
    GROUP BY site_key
) AS a ON a.site_key = cityHash64(s.site_id);
