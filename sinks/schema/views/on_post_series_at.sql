-- People on post over the day, by district: at local midnight D and every `step_s` seconds
-- after it up to `at`, and at `at` itself. Districts are the sites' at `at`; a shift at a
-- site unknown then is not drawn. Every district with someone on post during the day has a
-- row at every moment (0 when nobody is on post there then).
-- SELECT * FROM on_post_series_at(at = '2022-03-15 11:00:00', tz = 'Asia/Shanghai', step_s = 900)
-- Read from the signed shift versions of the day (shift_deltas, by time): each version
-- adds its sign at the first moment it covers and takes it back at the first moment after
-- its end; the changes are summed per district and moment (sites matched by their key),
-- every moment gets a row, and a running sum per district (a window) gives the people on
-- post at each moment. A shift is read once, however many moments it covers.
CREATE OR REPLACE VIEW on_post_series_at AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toDateTime64(toStartOfDay(toDateTime(cutoff, {tz:String})), 6, 'UTC') AS midnight,
    greatest(toUInt32({step_s:UInt32}), 60) AS step,
    arrayDistinct(arrayConcat(
        arrayMap(k -> midnight + toIntervalSecond(k * step),
                 range(toUInt32(intDiv(dateDiff('second', midnight, cutoff), step) + 1))),
        [cutoff])) AS moments,
    length(moments) AS n,
    toUnixTimestamp64Micro(midnight) AS midnight_us,
    toUnixTimestamp64Micro(cutoff) AS cutoff_us,
    toInt64(step) * 1000000 AS step_us,
    toUInt32(intDiv(dateDiff('second', midnight, cutoff), step) + 1) AS grid,
    toIntervalMicrosecond((SELECT toInt64(ifNull(max(micros), 0)) FROM shift_longest)) AS longest
SELECT moments[k] AS time, district, toUInt32(sum(d) OVER (PARTITION BY district ORDER BY k)) AS people
FROM
(
    SELECT district, c.1 AS k, sum(c.2) AS d
    FROM
    (
        SELECT district, groupArray((k, d)) AS changes
        FROM
        (
            SELECT s.district AS district, e.1 AS k, sum(e.2) AS d
            FROM
            (
                SELECT site_key, toInt64(sign) AS v,
                       toUnixTimestamp64Micro(started_at) - midnight_us AS from_start,
                       toUnixTimestamp64Micro(ended_at) - midnight_us AS from_end,
                       if(from_start <= 0, 1, intDiv(from_start + step_us - 1, step_us) + 1) AS a,
                       if(from_end <= 0, 1, intDiv(from_end + step_us - 1, step_us) + 1) AS b,
                       toUInt32(if(a <= grid, a, if(from_start <= cutoff_us - midnight_us, n, n + 1))) AS first,
                       toUInt32(if(b <= grid, b, if(from_end <= cutoff_us - midnight_us, n, n + 1))) AS after
                FROM shift_deltas
                WHERE ended_at > midnight AND ended_at <= cutoff + longest
                  AND started_at <= cutoff AND started_at > midnight - longest
            ) AS p
            ARRAY JOIN [(first, v), (after, -v)] AS e
            INNER JOIN (SELECT cityHash64(site_id) AS site_key, district
                        FROM sites_at(at = {at:DateTime64(6, 'UTC')})) AS s ON s.site_key = p.site_key
            WHERE first < after AND e.1 <= n
            GROUP BY district, k
        )
        GROUP BY district
    )
    ARRAY JOIN arrayConcat(changes, arrayMap(i -> (toUInt32(i), toInt64(0)), range(1, n + 1))) AS c
    GROUP BY district, k
)
ORDER BY time, district;
