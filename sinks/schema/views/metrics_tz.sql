-- Every SPEC §4 metric at `at`, city-wide (no scope), with D taken from `tz`.
-- SELECT * FROM metrics_tz(at = '2022-03-15 11:00:00', tz = 'Asia/Shanghai')
CREATE OR REPLACE VIEW metrics_tz AS
SELECT *
FROM metrics_at(
    at = {at:DateTime64(6, 'UTC')},
    day_start = toDateTime64(toStartOfDay(toDateTime({at:DateTime64(6, 'UTC')}, {tz:String})), 6, 'UTC'),
    city = '', district = '', street = '', community = '', site_id = '',
    org = '', role = '', team_id = '');
