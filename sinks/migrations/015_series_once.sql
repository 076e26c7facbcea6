-- on_post_series_at reads the day's shift versions once (a running sum per district)
-- instead of every stored shift at every moment, and site_inputs_at the shifts on post
-- from one time range of shift_deltas: see their files in sinks/schema/views.
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
SELECT moments[k] AS time, district, toUInt32(people[k]) AS people
FROM
(
    SELECT district,
           arrayCumSum(arrayMap(k -> deltas[indexOf(at_moment, k)], range(1, n + 1))) AS people
    FROM
    (
        SELECT s.district AS district, sumMap([p.i], [p.d]) AS changes,
               changes.1 AS at_moment, changes.2 AS deltas
        FROM
        (
            SELECT site_id, e.1 AS i, sum(e.2) AS d
            FROM
            (
                SELECT site_id, toInt64(sign) AS v,
                       -- the first moment at or after a time: on the grid by arithmetic,
                       -- else `at` itself (moment n, when it is off the grid), else none
                       toUnixTimestamp64Micro(started_at) - midnight_us AS from_start,
                       toUnixTimestamp64Micro(ended_at) - midnight_us AS from_end,
                       if(from_start <= 0, 1, intDiv(from_start + step_us - 1, step_us) + 1) AS a,
                       if(from_end <= 0, 1, intDiv(from_end + step_us - 1, step_us) + 1) AS b,
                       toUInt32(if(a <= grid, a, if(from_start <= cutoff_us - midnight_us, n, n + 1))) AS first,
                       toUInt32(if(b <= grid, b, if(from_end <= cutoff_us - midnight_us, n, n + 1))) AS after
                FROM shift_deltas
                WHERE ended_at > midnight AND ended_at <= cutoff + longest
                  AND started_at <= cutoff AND started_at > midnight - longest
            )
            ARRAY JOIN [(first, v), (after, -v)] AS e
            WHERE first < after
            GROUP BY site_id, i
        ) AS p
        INNER JOIN sites_at(at = {at:DateTime64(6, 'UTC')}) AS s ON s.site_id = p.site_id
        GROUP BY district
    )
)
ARRAY JOIN range(1, n + 1) AS k
ORDER BY time, district;

CREATE OR REPLACE VIEW site_inputs_at AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toIntervalMicrosecond((SELECT toInt64(ifNull(max(micros), 0)) FROM shift_longest)) AS longest
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
        SELECT site_id, role, toUInt32(count()) AS n
        FROM
        (
            SELECT site_id, role, person_id
            FROM shift_deltas
            WHERE ended_at > cutoff AND ended_at <= cutoff + longest
              AND started_at <= cutoff AND started_at > cutoff - longest
            GROUP BY site_id, role, person_id
            HAVING sum(sign) > 0
        )
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
