-- People on post over the day, by city and district: at local midnight D and every
-- `step_s` seconds after it (rounded up to whole minutes, at least one) up to `at`, and at
-- `at` itself. Cities and districts are the sites' at `at`; a shift at a site unknown
-- then is not drawn. Every district with someone on post at one of the moments has a row
-- at every moment (0 when nobody is on post there then).
-- SELECT * FROM on_post_series_at(at = '2022-03-15 11:00:00', tz = 'Asia/Shanghai', step_s = 900)
--
-- A moment is a whole minute (but `at`), so it reads district_series: the people on post
-- at the whole UTC hour at or before midnight, plus the changes of every whole minute
-- since, up to the last whole minute before `at`; then the shift versions starting or
-- ending in the part minute before `at` (shift_deltas). Each change is given to the first
-- moment it reaches, and a running sum per district gives the people on post at each
-- moment. A district is its city's: (city, district) is its `place`.
-- district_series files a shift version under its site's place when it was written.
-- A site whose versions of these days were all filed under one district that is not its
-- district at `at` (it moved, or was unknown then) is corrected from its own versions
-- (site_shifts): taken from the district filed, given to its district at `at`. When a
-- site's versions of these days were filed under two districts, the day's shift versions
-- are read instead (shift_deltas, by time), as district_series would have counted them.
CREATE OR REPLACE VIEW on_post_series_at AS
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
    -- the first moment a change at `us` reaches (1 for one before midnight), and the whole
    -- minute at or after `us` (the change's row in district_series)
    us -> if(us <= midnight_us, 1,
             if(us <= last_us, intDiv(us - midnight_us + step_us - 1, step_us) + 1, n))
        AS moment_of,
    us -> intDiv(us + 59999999, 60000000) * 60000000 AS minute_after,
    toIntervalMicrosecond((SELECT toInt64(ifNull(max(micros), 0)) FROM shift_longest)) AS longest,
    -- the sites filed under a place that is not theirs at `at`, with (site, place filed,
    -- place at `at`, known at `at`); and whether one was filed under two
    (
        SELECT (groupArrayIf((f.site_key, f.filed, s.place, s.known), f.filings = 1),
                max(f.filings) > 1)
        FROM
        (
            SELECT site_key, any((city, district)) AS filed,
                   uniqExact(city, district) AS filings
            FROM site_districts
            WHERE day >= toDate(hour - longest) AND day <= toDate(cutoff)
            GROUP BY site_key
        ) AS f
        LEFT JOIN
        (
            SELECT cityHash64(site_id) AS site_key, (city, district) AS place,
                   toUInt8(1) AS known
            FROM sites_at(at = {at:DateTime64(6, 'UTC')})
        ) AS s ON s.site_key = f.site_key
        WHERE s.known = 0 OR f.filings > 1 OR f.filed != s.place
    ) AS placed,
    placed.1 AS moved,
    arrayMap(m -> m.1, moved) AS moved_keys,
    placed.2 AS refiled,
    -- the changes read from shift versions: since the hour at or before midnight when a
    -- site was filed under two places (every version of the day), else the part minute
    if(refiled, hour_us, minute_us) AS raw_us
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
            SELECT (city, district) AS place, toInt64(1) AS k, people AS d
            FROM district_series
            WHERE NOT refiled AND kind = 'on_post' AND minute = hour
            UNION ALL
            -- the whole minutes' changes since, each to the first moment it reaches
            SELECT place, toInt64(moment_of(b)) AS k, people AS d
            FROM
            (
                SELECT (city, district) AS place, people,
                       toInt64(toUnixTimestamp(minute)) * 1000000 AS b
                FROM district_series
                WHERE NOT refiled AND kind = 'change' AND minute > hour
                  AND minute <= fromUnixTimestamp64Micro(minute_us, 'UTC')
            )
            UNION ALL
            -- the part minute before `at`, and the moved sites' versions
            -- (taken from the district filed, given to the district at `at`);
            -- or, with a site filed under two districts, every version of the day
            SELECT s.place AS place, r.k AS k, r.d AS d
            FROM
            (
                SELECT site_key, e.1 AS k, e.2 AS d
                FROM
                (
                    -- ending in the part minute (one hour of shift_deltas), or starting
                    -- in it and ending later (a short range of starts in each hour)
                    SELECT site_key, toInt64(sign) AS v,
                           toUnixTimestamp64Micro(started_at) AS start_us,
                           toUnixTimestamp64Micro(ended_at) AS end_us
                    FROM shift_deltas
                    WHERE NOT refiled AND ended_at > fromUnixTimestamp64Micro(minute_us, 'UTC')
                      AND ended_at <= cutoff AND started_at <= cutoff
                    UNION ALL
                    SELECT site_key, toInt64(sign) AS v,
                           toUnixTimestamp64Micro(started_at) AS start_us,
                           toUnixTimestamp64Micro(ended_at) AS end_us
                    FROM shift_deltas
                    WHERE NOT refiled AND started_at > fromUnixTimestamp64Micro(minute_us, 'UTC')
                      AND started_at <= cutoff AND ended_at > cutoff
                      AND ended_at <= cutoff + longest
                    UNION ALL
                    -- every version on post at one of the moments
                    SELECT site_key, toInt64(sign) AS v,
                           toUnixTimestamp64Micro(started_at) AS start_us,
                           toUnixTimestamp64Micro(ended_at) AS end_us
                    FROM shift_deltas
                    WHERE refiled AND ended_at > hour AND ended_at <= cutoff + longest
                      AND started_at <= cutoff AND started_at > hour - longest
                )
                ARRAY JOIN arrayFilter(x -> x.1 > 0, [
                    (if(refiled, if(start_us <= hour_us AND end_us > hour_us, 1, 0), 0), v),
                    (if(start_us > raw_us AND start_us <= cutoff_us, moment_of(start_us), 0), v),
                    (if(end_us > raw_us AND end_us <= cutoff_us, moment_of(end_us), 0), -v)])
                    AS e
            ) AS r
            INNER JOIN
            (
                SELECT cityHash64(site_id) AS site_key, (city, district) AS place
                FROM sites_at(at = {at:DateTime64(6, 'UTC')})
            ) AS s ON s.site_key = r.site_key
            UNION ALL
            SELECT t.1 AS place, m.k AS k, m.d * t.2 AS d
            FROM
            (
                SELECT site_key, e.1 AS k, e.2 AS d,
                       moved[indexOf(moved_keys, site_key)] AS filing
                FROM
                (
                    SELECT site_key, toInt64(sign) AS v,
                           toUnixTimestamp64Micro(started_at) AS start_us,
                           toUnixTimestamp64Micro(ended_at) AS end_us
                    FROM site_shifts
                    WHERE NOT refiled AND notEmpty(moved_keys) AND has(moved_keys, site_key)
                      AND started_at > hour - longest AND started_at <= cutoff
                )
                ARRAY JOIN arrayFilter(x -> x.1 > 0, [
                    (if(start_us <= hour_us AND end_us > hour_us, 1, 0), v),
                    (if(minute_after(start_us) > hour_us AND minute_after(start_us) <= minute_us,
                        moment_of(start_us), 0), v),
                    (if(minute_after(end_us) > hour_us AND minute_after(end_us) <= minute_us,
                        moment_of(end_us), 0), -v)])
                    AS e
            ) AS m
            ARRAY JOIN arrayFilter(p -> p.2 != 0, [(m.filing.3, toInt64(m.filing.4)),
                                                   (m.filing.2, toInt64(-1))]) AS t
        )
        GROUP BY place, k
    )
    GROUP BY place
    HAVING arrayMax(running) > 0
)
ARRAY JOIN running AS people, range(1, toUInt64(n) + 1) AS k
ORDER BY time, city, district;
