-- SPEC §4 hours (service hours, in hours) and person-times at `at` per organisation,
-- every organisation at once: what an org scope of `muster metrics` gives. Generated from
-- sinks/metric_reads.py (org_hours_view) by `python -m sinks.metric_reads`.
-- SELECT * FROM org_hours_at(at = '2022-03-15 11:00:00')
CREATE OR REPLACE VIEW org_hours_at AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS v_cutoff,
    v_hour_start AS v_midnight,
    toDate(v_cutoff) AS v_utc_day,
    toDateTime64(toStartOfDay(v_cutoff), 6, 'UTC') AS v_utc_midnight,
    toDateTime64(toStartOfHour(v_cutoff), 6, 'UTC') AS v_hour_start,
    toDateTime(v_hour_start, 'UTC') AS v_hour,
    toDateTime64(toStartOfHour(v_midnight), 6, 'UTC') + toIntervalHour(toDateTime64(toStartOfHour(v_midnight), 6, 'UTC') != v_midnight) AS v_first_hour,
    toIntervalMicrosecond((SELECT toInt64(ifNull(max(micros), 0)) FROM shift_longest)) AS v_longest,
    v_cutoff + v_longest AS v_after,
    v_cutoff - v_longest AS v_before,
    v_midnight + v_longest AS v_midnight_after,
    v_midnight - v_longest AS v_midnight_before,
    v_hour_start AS v_raw_from,
    v_raw_from - v_longest AS v_raw_before,
    toUnixTimestamp64Micro(v_cutoff) AS v_cutoff_us,
    toUnixTimestamp64Micro(v_hour_start) AS v_hour_us,
    toDateTime(v_first_hour, 'UTC') AS v_first_hour_s,
    toDateTime(v_midnight, 'UTC') AS v_midnight_s,
    v_first_hour = v_midnight AS v_whole_midnight,
    toUInt8(0) AS v_k,
    '' AS v_key_org,
    '' AS v_key_role,
    '\x1f\x1f' AS v_recruit_key,
    (1, 0) AS v_fresh,
    v_fresh.2 AS v_gen_us,
    0 AS v_settled
SELECT org, (p.micros + r.micros - (p.left_h - r.gone_left - (v_cutoff_us - v_hour_us) * (p.on_post_h - r.gone_n) + r.new_left)) / 3600e6 AS hours, toInt64(p.person_times + r.person_times) AS person_times
FROM (SELECT * FROM (SELECT org, sum(shifts) AS person_times, sum(micros) AS micros, sum(auto_micros) AS auto_micros, sum(first0) AS new_people, sumIf(today0, hour >= v_first_hour_s) AS today FROM shift_hours WHERE hour < v_hour GROUP BY org) AS p FULL JOIN (SELECT org, sumIf(people, hour = v_hour) AS on_post_h, sumIf(left_micros, hour = v_hour) AS left_h, sumIf(people, hour = v_midnight_s) AS on_post_d FROM on_post_hours WHERE hour IN (v_hour, v_midnight_s) GROUP BY org) AS o USING (org)) AS p FULL JOIN (SELECT org, sumIf(s, started_at >= v_raw_from) AS person_times, sumIf(len, started_at >= v_raw_from) AS micros, sumIf(s, started_at >= v_raw_from AND bitTest(firsts, 0)) AS new_people, sumIf(len, reason = 'auto' AND ended_at >= v_raw_from AND ended_at <= v_cutoff) AS auto_micros, sumIf(s, started_at > v_hour_start AND ended_at > v_cutoff) - sumIf(s, started_at <= v_hour_start AND ended_at > v_hour_start AND ended_at <= v_cutoff) AS on_post_delta, sumIf(s * (end_us - v_cutoff_us), started_at > v_hour_start AND ended_at > v_cutoff) AS new_left, sumIf(s * (end_us - v_hour_us), started_at <= v_hour_start AND ended_at > v_hour_start AND ended_at <= v_cutoff) AS gone_left, sumIf(s, started_at <= v_hour_start AND ended_at > v_hour_start AND ended_at <= v_cutoff) AS gone_n, -sumIf(s, started_at = v_midnight AND ended_at > v_midnight) + sumIf(s, started_at >= v_midnight AND bitTest(day_firsts, 0) AND (started_at < v_first_hour OR started_at >= v_hour_start)) AS today FROM (SELECT org, toInt64(sign) AS s, started_at, ended_at, reason, firsts, day_firsts, toUnixTimestamp64Micro(ended_at) AS end_us, s * (end_us - toUnixTimestamp64Micro(started_at)) AS len FROM shift_deltas WHERE started_at <= v_cutoff AND ((started_at >= v_raw_from AND ended_at >= v_raw_from AND ended_at <= v_after) OR (ended_at >= v_raw_from AND ended_at <= v_cutoff AND started_at >= v_raw_before) OR (started_at = v_midnight AND ended_at > v_midnight AND ended_at <= v_midnight_after))) GROUP BY org) AS r USING (org)
ORDER BY org;
