-- Every SPEC §4 metric national (no scope) at `at`, with D local midnight in `tz`.
-- Generated from sinks/metric_reads.py (national_view) by `python -m sinks.metric_reads`:
-- the API's national reads, as one query.
-- SELECT * FROM metrics_tz(at = '2022-03-15 11:00:00', tz = 'Asia/Shanghai')
CREATE OR REPLACE VIEW metrics_tz AS
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS v_cutoff,
    toDateTime64(toStartOfDay(toDateTime(v_cutoff, {tz:String})), 6, 'UTC') AS v_midnight,
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
    (WITH (SELECT argMax((n, h, v, gen), gen) FROM cover_prints WHERE hour = v_hour) AS got, (SELECT (sum(n), sum(h)) FROM cover_inputs WHERE hour = v_hour) AS held SELECT got.1 = held.1 AND got.2 = held.2 AND got.3 = (SELECT sum(DISTINCT x) FROM version_hashes WHERE ts < v_hour + 3600) AS fresh, toUnixTimestamp64Micro(got.4) AS gen_us) AS v_fresh,
    v_fresh.2 AS v_gen_us,
    v_fresh.1 AND (SELECT count() FROM cover_hours WHERE hour = v_hour AND toUnixTimestamp64Micro(gen) = v_gen_us AND site_key = 0) > 0 AS v_settled
SELECT
    v_cutoff AS at,
    toUInt64(h.recruited) AS recruited,
    p.on_post_h + r.on_post_delta AS on_post_now,
    toInt64(p.today + r.today + if(v_whole_midnight, p.on_post_d, 0)) AS on_post_today,
    toInt64(p.new_people + r.new_people) AS cumulative_people,
    toInt64(p.person_times + r.person_times) AS person_times,
    (p.micros + r.micros - (p.left_h - r.gone_left - (v_cutoff_us - v_hour_us) * (p.on_post_h - r.gone_n) + r.new_left)) / 3600e6 AS hours,
    (p.auto_micros + r.auto_micros) / 3600e6 AS hours_auto,
    toInt64(t.teams) AS teams,
    toUInt64(c.sites_active) AS sites_active,
    toUInt64(c.sites_covered) AS sites_covered,
    if(sites_active = 0, 0, sites_covered / sites_active) AS coverage,
    h.orphan_checkouts AS orphan_checkouts,
    h.dlq AS dlq
FROM (SELECT sumIf(n, name = 'longest') AS longest, sumIf(n, name = 'orphan_checkouts') AS orphan_checkouts, sumIf(n, name = 'dlq') AS dlq, sumIf(n, name = 'recruited') AS recruited FROM (SELECT 'longest' AS name, toInt64(ifNull(max(micros), 0)) AS n FROM shift_longest UNION ALL SELECT 'orphan_checkouts', toInt64(sum(n)) FROM orphan_days WHERE day < v_utc_day UNION ALL SELECT 'orphan_checkouts', toInt64(sum(delta)) FROM orphan_deltas WHERE ts >= v_utc_midnight AND ts <= v_cutoff UNION ALL SELECT 'dlq', toInt64(count()) FROM dlq FINAL UNION ALL SELECT 'recruited', toInt64(sum(n)) FROM recruit_days WHERE key = v_recruit_key AND day < v_utc_day UNION ALL SELECT 'recruited', toInt64(sum(sign)) FROM recruit_deltas WHERE key = v_recruit_key AND ts >= v_utc_midnight AND ts <= v_cutoff)) AS h, (SELECT sumIf(s, started_at >= v_raw_from) AS person_times, sumIf(len, started_at >= v_raw_from) AS micros, sumIf(s, started_at >= v_raw_from AND bitTest(firsts, 0)) AS new_people, sumIf(len, reason = 'auto' AND ended_at >= v_raw_from AND ended_at <= v_cutoff) AS auto_micros, sumIf(s, started_at > v_hour_start AND ended_at > v_cutoff) - sumIf(s, started_at <= v_hour_start AND ended_at > v_hour_start AND ended_at <= v_cutoff) AS on_post_delta, sumIf(s * (end_us - v_cutoff_us), started_at > v_hour_start AND ended_at > v_cutoff) AS new_left, sumIf(s * (end_us - v_hour_us), started_at <= v_hour_start AND ended_at > v_hour_start AND ended_at <= v_cutoff) AS gone_left, sumIf(s, started_at <= v_hour_start AND ended_at > v_hour_start AND ended_at <= v_cutoff) AS gone_n, if(v_whole_midnight, -sumIf(s, started_at = v_midnight AND ended_at > v_midnight), sumIf(s, started_at < v_midnight AND ended_at > v_midnight)) + sumIf(s, started_at >= v_midnight AND bitTest(day_firsts, 0) AND (started_at < v_first_hour OR started_at >= v_hour_start)) AS today FROM (SELECT toInt64(sign) AS s, started_at, ended_at, reason, firsts, day_firsts, toUnixTimestamp64Micro(ended_at) AS end_us, s * (end_us - toUnixTimestamp64Micro(started_at)) AS len FROM shift_deltas WHERE started_at <= v_cutoff AND ((started_at >= v_raw_from AND ended_at >= v_raw_from AND ended_at <= v_after) OR (ended_at >= v_raw_from AND ended_at <= v_cutoff AND started_at >= v_raw_before) OR (v_whole_midnight AND (started_at = v_midnight AND ended_at > v_midnight AND ended_at <= v_midnight_after)) OR (NOT v_whole_midnight AND (ended_at > v_midnight AND ended_at <= v_midnight_after AND started_at > v_midnight_before AND started_at < v_midnight)) OR (NOT v_whole_midnight AND (started_at >= v_midnight AND ended_at >= v_midnight AND ended_at <= v_after AND (started_at < v_first_hour OR started_at >= v_hour_start)))))) AS r, (SELECT * FROM (SELECT sum(shifts) AS person_times, sum(micros) AS micros, sum(auto_micros) AS auto_micros, sum(first0) AS new_people, sumIf(today0, hour >= v_first_hour_s) AS today FROM shift_hours WHERE hour < v_hour) AS p, (SELECT sumIf(people, hour = v_hour) AS on_post_h, sumIf(left_micros, hour = v_hour) AS left_h, sumIf(people, hour = v_midnight_s) AS on_post_d FROM on_post_hours WHERE hour IN (v_hour, v_midnight_s)) AS o) AS p, (SELECT * FROM (SELECT sites_active, covered AS sites_covered FROM (SELECT countIf(site_key = 0) AS held, countIf(site_key != 0 AND bitXor(state, arrayCount(x -> x <= v_cutoff, flips) % 2) = 1) AS covered, countIf(site_key != 0 AND bitXor(active, arrayCount(x -> x <= v_cutoff, active_flips) % 2) = 1) AS sites_active FROM cover_hours WHERE hour = v_hour AND toUnixTimestamp64Micro(gen) = v_gen_us)) WHERE v_settled UNION ALL SELECT * FROM (SELECT sites_active, sites_covered FROM (SELECT countIf(site_key != 0) AS sites_active, countIf(site_key != 0 AND met = wants) AS sites_covered, sumIf(scope_n, site_key = 0) AS on_post_now, sumIf(scope_left, site_key = 0) AS not_yet_micros FROM (SELECT w.site_key AS site_key, any(w.wants) AS wants, sum(st.n >= w.need) AS met, sum(st.scope_n) AS scope_n, sum(st.scope_left) AS scope_left FROM (SELECT site_key, if(want.1 = '', site_key, bitXor(site_key, cityHash64(want.1))) AS c, want.2 AS need, length(wanted) AS wants FROM (SELECT cityHash64(site_id) AS site_key, arrayFilter(x -> x.2 > 0, arrayZip(mapKeys(requirements), mapValues(requirements))) AS required, if(empty(required), [('', toUInt32(1))], required) AS wanted FROM sites_at(at = v_cutoff) WHERE active = 1) ARRAY JOIN wanted AS want UNION ALL SELECT 0, 0, 0, 0) AS w LEFT JOIN (SELECT multiIf(grouping(site_key, cell) = 3, 0, grouping(site_key, cell) = 1, site_key, cell) AS c, sum(s) AS n, sum(if(matched, s, 0)) AS scope_n, sum(if(matched, s * left_us, 0)) AS scope_left FROM (SELECT site_key, cell, toInt64(sign) AS s, 1 AS matched, toUnixTimestamp64Micro(ended_at) - v_cutoff_us AS left_us FROM shift_deltas WHERE ended_at > v_cutoff AND ended_at <= v_after AND started_at > v_before AND started_at <= v_cutoff) GROUP BY GROUPING SETS ((site_key), (cell), ())) AS st ON st.c = w.c GROUP BY w.site_key))) WHERE NOT v_settled) AS c, (SELECT uniqExact(team_key) AS teams FROM team_firsts WHERE k = v_k AND org = v_key_org AND role = v_key_role AND first_start <= v_cutoff) AS t;
