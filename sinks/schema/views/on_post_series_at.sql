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
