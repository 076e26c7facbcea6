-- People on post over the day by city: on_post_series_at with a city for each of its
-- districts (`district` is ''). Generated from sinks/schema/views/on_post_series_at.sql
-- by `python -m sinks.metric_reads` (city_series_view); that file says how it reads.
-- SELECT * FROM on_post_series_by_city_at(at = '2022-03-15 11:00:00', tz = 'Asia/Shanghai',
--                                          step_s = 900)
CREATE OR REPLACE VIEW on_post_series_by_city_at AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toDateTime64(toStartOfDay(toDateTime(cutoff, {tz:String})), 6, 'UTC') AS midnight,
    toInt64(greatest(intDiv(toUInt32({step_s:UInt32}) + 59, 60), 1) * 60000000) AS step_us,
    toUnixTimestamp64Micro(midnight) AS midnight_us,
    toUnixTimestamp64Micro(cutoff) AS cutoff_us,
    -- moments 1..grid are midnight + (k - 1) * step; moment n is `at` (n = grid when `at`
    -- is one of them)
    intDiv(cutoff_us - midnight_us, step_us) + 1 AS grid,
    midnight_us + (grid - 1) * step_us AS last_us,
    grid + toInt64(cutoff_us > last_us) AS n,
    -- the whole minute at or before `at`, the whole UTC hour at or before midnight
    intDiv(cutoff_us, 60000000) * 60000000 AS minute_us,
    intDiv(midnight_us, 3600000000) * 3600000000 AS hour_us,
    fromUnixTimestamp64Micro(hour_us, 'UTC') AS hour,
    -- the first moment a change at `us` reaches (1 for one before midnight)
    us -> if(us <= midnight_us, 1,
             if(us <= last_us, intDiv(us - midnight_us + step_us - 1, step_us) + 1, n))
        AS moment_of,
    toIntervalMicrosecond((SELECT toInt64(ifNull(max(micros), 0)) FROM shift_longest)) AS longest,
    -- the sites with a version of these days filed under a place that is not theirs at
    -- `at`: (site, place at `at`, known at `at`)
    (
        SELECT groupUniqArray((f.site_key, s.place, s.known))
        FROM
        (
            SELECT site_key, (city, '') AS place
            FROM site_districts
            WHERE day >= toDate(hour - longest) AND day <= toDate(cutoff)
        ) AS f
        LEFT JOIN
        (
            SELECT cityHash64(site_id) AS site_key, (city, '') AS place,
                   toUInt8(1) AS known
            FROM sites_at(at = {at:DateTime64(6, 'UTC')})
        ) AS s ON s.site_key = f.site_key
        WHERE s.known = 0 OR f.place != s.place
    ) AS moved,
    arrayMap(m -> m.1, moved) AS moved_keys
SELECT fromUnixTimestamp64Micro(if(k <= grid, midnight_us + (k - 1) * step_us, cutoff_us), 'UTC')
           AS time,
       place.1 AS city, place.2 AS district, toUInt32(people) AS people
FROM
(
    -- per place, every moment's change (0 where none) and their running sum
    SELECT place,
           mapPopulateSeries(arrayConcat([toInt64(0)], groupArray(k)),
                             arrayConcat([toInt64(0)], groupArray(d)), toInt64(n)).2 AS dense,
           arrayPopFront(arrayCumSum(dense)) AS running
    FROM
    (
        SELECT place, k, sum(d) AS d
        FROM
        (
            -- on post at the hour at or before midnight
            SELECT (city, '') AS place, toInt64(1) AS k, people AS d
            FROM district_series
            WHERE kind = 'on_post' AND minute = hour
            UNION ALL
            -- the whole minutes' changes since, each to the first moment it reaches
            SELECT place, toInt64(moment_of(b)) AS k, people AS d
            FROM
            (
                SELECT (city, '') AS place, people,
                       toInt64(toUnixTimestamp(minute)) * 1000000 AS b
                FROM district_series
                WHERE kind = 'change' AND minute > hour
                  AND minute <= fromUnixTimestamp64Micro(minute_us, 'UTC')
            )
            UNION ALL
            -- the part minute before `at`: all of it reaches `at`, the last moment
            SELECT (city, '') AS place, n AS k, people AS d
            FROM place_moments
            WHERE moment > fromUnixTimestamp64Micro(minute_us, 'UTC') AND moment <= cutoff
            UNION ALL
            -- the moved sites' versions: taken from the place filed, given to the place at
            -- `at` (none when the site is unknown then)
            SELECT t.1 AS place, m.k AS k, m.d * t.2 AS d
            FROM
            (
                SELECT filed, e.1 AS k, e.2 AS d,
                       moved[indexOf(moved_keys, site_key)] AS placed
                FROM
                (
                    SELECT site_key, (city, '') AS filed, toInt64(sign) AS v,
                           toUnixTimestamp64Micro(started_at) AS start_us,
                           toUnixTimestamp64Micro(ended_at) AS end_us
                    FROM site_shifts
                    WHERE notEmpty(moved_keys) AND has(moved_keys, site_key)
                      AND started_at > hour - longest AND started_at <= cutoff
                )
                ARRAY JOIN arrayFilter(x -> x.1 > 0, [
                    (if(start_us <= hour_us AND end_us > hour_us, 1, 0), v),
                    (if(start_us > hour_us AND start_us <= cutoff_us, moment_of(start_us), 0), v),
                    (if(end_us > hour_us AND end_us <= cutoff_us, moment_of(end_us), 0), -v)])
                    AS e
            ) AS m
            ARRAY JOIN arrayFilter(p -> p.2 != 0, [(m.placed.2, toInt64(m.placed.3)),
                                                   (m.filed, toInt64(-1))]) AS t
        )
        GROUP BY place, k
    )
    GROUP BY place
    HAVING arrayMax(running) > 0
)
ARRAY JOIN running AS people, range(1, toUInt64(n) + 1) AS k
ORDER BY time, city, district;
