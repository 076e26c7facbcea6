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
