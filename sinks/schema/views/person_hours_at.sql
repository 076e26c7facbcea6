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
