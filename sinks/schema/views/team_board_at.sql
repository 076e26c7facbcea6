-- Per organisation and team, shifts started at or before `at`: SPEC §4 hours (up to `at`),
-- person-times and distinct people. team_id is '' for shifts without a team.
-- SELECT * FROM team_board_at(at = '2022-03-15 11:00:00')
CREATE OR REPLACE VIEW team_board_at AS
WITH toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff
SELECT org, team_id,
       sum(dateDiff('microsecond', started_at, least(ended_at, cutoff))) / 3600e6 AS hours,
       toUInt64(count()) AS person_times,
       toUInt64(uniqExact(person_id)) AS people
FROM shifts FINAL
WHERE started_at <= cutoff
GROUP BY org, team_id;
