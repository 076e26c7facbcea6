"""Settled coverage: which sites were covered, per whole UTC hour, worked out after the fact.

SPEC §6 coverage at T needs every shift on post at T grouped per site and role, and at
national scale that is most of a metrics call. Coverage cannot be summed, so no rollup
view keeps it; instead `settle` works it out per hour that the store holds shifts for:
per site, covered or not at the hour's start, and the moments in the hour at which that
changed. Readers then count covered sites at any T of a settled hour from one row per site
(migration 010).

An hour's rows carry fingerprints of the shifts and site versions they were computed
from. `fresh_sql` compares them with the store's, so a late event that changes an hour
sends readers back to the shifts until the hour is settled again: settled rows are never
read stale. The worker settles finished hours in the background; `muster bench` settles
its month before timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from sinks.store import StoreError, ch_time, first_line

HOUR = timedelta(hours=1)
CHUNK_HOURS = 6  # hours settled by one statement (a national 6 hours: about 2M shift rows)

T = "DateTime64(6, 'UTC')"


def _version_prints(hours: str) -> str:
    """Per hour of the query `hours`, the fingerprint `v` of the site versions dated before
    the hour's end: the distinct version hashes summed per hour of their date, then those
    sums up to the hour (what `fresh_sql` sums for one hour)."""
    return (
        "SELECT hs.hour AS hour, arraySum(arrayFilter((x, b) -> b <= hs.hour, vb.xs, vb.bs)) "
        f"AS v FROM ({hours}) AS hs CROSS JOIN (SELECT groupArray(x) AS xs, "
        "groupArray(b) AS bs FROM (SELECT toStartOfHour(ts) AS b, sum(x) AS x "
        "FROM (SELECT DISTINCT x, ts FROM version_hashes) GROUP BY b)) AS vb"
    )


# Settles the hours [start, end): one row per site and hour in which the site was active
# at some moment, and per hour a row for site_key 0 with the fingerprints.
SETTLE_SQL = f"""
INSERT INTO cover_hours (hour, site_key, gen, state, flips, active, active_flips, n, h, v)
WITH
    {{start:{T}}} AS a,
    {{end:{T}}} AS b,
    now64(6, 'UTC') AS g,
    -- the shift versions behind the hours: started before b, ended in a or later
    rows AS (
        SELECT site_key, site_id, toString(role) AS role, toInt64(sign) AS s, started_at,
               ended_at
        FROM shift_deltas
        WHERE started_at < b AND ended_at >= a AND started_at >= {{since:{T}}}
    ),
    -- people on post per site and role (role '' is the whole site) after each change;
    -- shifts started before a change the count at a
    steps AS (
        SELECT site_key, role, t, sum(d) OVER (PARTITION BY site_key, role ORDER BY t) AS n
        FROM (
            SELECT site_key, r AS role, e.1 AS t, sum(e.2) AS d
            FROM rows
            ARRAY JOIN [role, ''] AS r
            ARRAY JOIN [(greatest(started_at, a), s), (ended_at, -s)] AS e
            WHERE e.1 < b
            GROUP BY site_key, role, t
        )
    ),
    -- each site's versions, the latest per moment (ties: later in topic order)
    versions AS (
        SELECT cityHash64(site_id) AS site_key, ts,
               argMax(active, (partition, offset)) AS on,
               argMax(requirements, (partition, offset)) AS reqs
        FROM site_versions
        WHERE ts < b
        GROUP BY site_id, ts
    ),
    -- every site known before b, and those with shifts but no version yet
    sites AS (
        SELECT DISTINCT site_key FROM (
            SELECT site_key FROM versions UNION ALL SELECT site_key FROM steps
        )
    ),
    -- the moments coverage can change: each hour's start, each change of people on post,
    -- each new version
    moments AS (
        SELECT DISTINCT site_key, t FROM (
            SELECT site_key, t FROM steps
            UNION ALL
            SELECT site_key, toDateTime64(hr, 6, 'UTC') AS t FROM sites
            ARRAY JOIN range(toUInt32(a), toUInt32(b), 3600) AS hr
            UNION ALL
            SELECT site_key, ts AS t FROM versions WHERE ts > a
        )
    ),
    -- what each moment wants: the version then in force, each role with a minimum above 0,
    -- or, with none, one person on the site
    wants AS (
        SELECT m.site_key AS site_key, m.t AS t, v.on AS on,
               arrayFilter(x -> x.2 > 0, arrayZip(mapKeys(v.reqs), mapValues(v.reqs)))
                   AS required,
               if(empty(required), [('', toUInt32(1))], required) AS wanted,
               v.ts > toDateTime64(0, 6, 'UTC') AS known
        FROM moments AS m
        ASOF LEFT JOIN versions AS v ON m.site_key = v.site_key AND m.t >= v.ts
    ),
    checked AS (
        SELECT w.site_key AS site_key, w.t AS t, any(w.known AND w.on = 1) AS active,
               min(w.known AND w.on = 1 AND st.n >= w.need) AS covered
        FROM (
            SELECT site_key, t, known, on, want.1 AS role, want.2 AS need
            FROM wants ARRAY JOIN wanted AS want
        ) AS w
        ASOF LEFT JOIN steps AS st
            ON w.site_key = st.site_key AND w.role = st.role AND w.t >= st.t
        GROUP BY site_key, t
    ),
    turns AS (
        SELECT site_key, t, covered, active,
               lagInFrame(covered) OVER w AS covered_before,
               lagInFrame(active) OVER w AS active_before
        FROM checked
        WINDOW w AS (PARTITION BY site_key ORDER BY t
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ),
    per_hour AS (
        SELECT toStartOfHour(t) AS hour, site_key,
               toUInt8(anyIf(covered, t = hour)) AS state,
               arraySort(groupArrayIf(t, t != hour AND covered != covered_before)) AS flips,
               toUInt8(anyIf(active, t = hour)) AS on,
               arraySort(groupArrayIf(t, t != hour AND active != active_before)) AS on_flips
        FROM turns
        GROUP BY hour, site_key
        HAVING on = 1 OR notEmpty(on_flips)
    ),
    hours AS (SELECT toDateTime(arrayJoin(range(toUInt32(a), toUInt32(b), 3600)), 'UTC') AS hour),
    -- as cover_inputs sums them (migration 010)
    prints AS (
        SELECT toDateTime(hr, 'UTC') AS hour, sum(s) AS n,
               sum(toUInt64(s) * cityHash64(site_id, role,
                   greatest(started_at, toDateTime64(hr, 6, 'UTC')),
                   least(ended_at, toDateTime64(hr + 3600, 6, 'UTC')))) AS h
        FROM (
            SELECT s, site_id, role, started_at, ended_at,
                   range(toUInt32(greatest(toStartOfHour(started_at), a)),
                         toUInt32(least(toStartOfHour(ended_at), b - 1)) + 1, 3600) AS hrs
            FROM rows
        )
        ARRAY JOIN hrs AS hr
        GROUP BY hour
    ),
    version_prints AS ({_version_prints("SELECT hour FROM hours")})
SELECT hour, site_key, g AS gen, state, flips, on AS active, on_flips AS active_flips,
       toInt64(0) AS n, toUInt64(0) AS h, toUInt64(0) AS v
FROM per_hour
UNION ALL
SELECT hours.hour, toUInt64(0), g, toUInt8(0), [], toUInt8(0), [], toInt64(prints.n),
       toUInt64(prints.h), toUInt64(version_prints.v)
FROM hours
LEFT JOIN prints ON hours.hour = prints.hour
LEFT JOIN version_prints ON hours.hour = version_prints.hour
"""


def _dirty_sql(before: bool) -> str:
    """The hours whose latest settling (if any) was not computed from what the store holds
    now, oldest first."""
    return f"""
SELECT i.hour
FROM (SELECT hour, sum(n) AS n, sum(h) AS h FROM cover_inputs GROUP BY hour) AS i
LEFT JOIN (
    SELECT hour, argMax((n, h, v), gen) AS got FROM cover_prints GROUP BY hour
) AS d ON i.hour = d.hour
LEFT JOIN ({_version_prints("SELECT DISTINCT hour FROM cover_inputs")}) AS vp
    ON i.hour = vp.hour
WHERE (i.n, i.h, vp.v) != d.got{f" AND i.hour + 3600 <= {{before:{T}}}" if before else ""}
ORDER BY i.hour
"""


def fresh_sql() -> str:
    """Whether the settled rows of `cutoff`'s hour `hour` may be read: `fresh` is 1 when
    the hour's latest settling was computed from exactly the shifts and site versions the
    store holds now; `gen_us` names that settling (read it with `settled_sql`)."""
    hour = "{hour:DateTime('UTC')}"
    return (
        f"WITH (SELECT argMax((n, h, v, gen), gen) FROM cover_prints WHERE hour = {hour}) "
        f"AS got, (SELECT (sum(n), sum(h)) FROM cover_inputs WHERE hour = {hour}) AS held "
        "SELECT got.1 = held.1 AND got.2 = held.2 AND got.3 = (SELECT sum(DISTINCT x) "
        f"FROM version_hashes WHERE ts < {hour} + 3600) AS fresh, "
        "toUnixTimestamp64Micro(got.4) AS gen_us"
    )


def settled_sql(site_scoped: bool) -> str:
    """Covered and active sites at `cutoff` from settling `gen_us` of its hour `hour` (site
    scopes narrow to `site_keys`). `held` is 0 when that settling's rows are gone (settled
    anew since, and merged away): the caller then counts from the shifts instead."""
    hour = "{hour:DateTime('UTC')}"
    cutoff = "{cutoff:DateTime64(6, 'UTC')}"
    scoped = " AND (site_key = 0 OR site_key IN {site_keys:Array(UInt64)})" if site_scoped else ""
    return (
        "SELECT countIf(site_key = 0) AS held, countIf(site_key != 0 AND bitXor(state, "
        f"arrayCount(x -> x <= {cutoff}, flips) % 2) = 1) AS covered, countIf(site_key != 0 "
        f"AND bitXor(active, arrayCount(x -> x <= {cutoff}, active_flips) % 2) = 1) AS "
        f"sites_active FROM cover_hours WHERE hour = {hour} "
        "AND toUnixTimestamp64Micro(gen) = {gen_us:Int64}" + scoped
    )


def dirty_hours(client: Client, before: datetime | None = None) -> list[datetime]:
    """The hours to settle (ending by `before`, if given)."""
    params = {"before": ch_time(before)} if before else {}
    rows = client.query(_dirty_sql(before is not None), parameters=params).result_rows
    return [row[0].replace(tzinfo=UTC) for row in rows]


def settle(
    client: Client,
    before: datetime | None = None,
    budget: float | None = None,
    chunk: int = CHUNK_HOURS,
    say: Callable[[str], None] | None = None,
) -> int:
    """Settle the hours whose coverage rows are missing or stale (those ending by `before`,
    if given), oldest first, `chunk` consecutive hours per statement; with a `budget` (in
    seconds), start no statement after it is spent. Return how many hours were settled."""
    try:
        hours = dirty_hours(client, before)
        longest = client.query("SELECT ifNull(max(micros), 0) FROM shift_longest").result_rows
    except (ClickHouseError, OSError) as exc:
        raise StoreError(f"finding the hours to settle failed: {first_line(exc)}") from exc
    span = timedelta(microseconds=int(longest[0][0]))
    done, started = 0, time.monotonic()
    for first, last in _runs(hours, chunk):
        if budget is not None and time.monotonic() - started > budget:
            break
        end = last + HOUR
        params = {"start": ch_time(first), "end": ch_time(end), "since": ch_time(first - span)}
        try:
            client.command(SETTLE_SQL, parameters=params)
        except (ClickHouseError, OSError) as exc:
            raise StoreError(
                f"settling coverage for {first:%Y-%m-%d %H:00}–{end:%H:00} UTC failed: "
                f"{first_line(exc)}"
            ) from exc
        done += int((end - first) / HOUR)
        if say is not None:
            rate = done / max(time.monotonic() - started, 1e-9)
            say(f"coverage settled for {done:,}/{len(hours):,} hours ({rate:.1f} hours/s)")
    return done


def _runs(hours: list[datetime], chunk: int) -> list[tuple[datetime, datetime]]:
    """Consecutive hours in runs of at most `chunk`: (first, last) of each."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in hours:
        if runs and hour - runs[-1][1] == HOUR and hour - runs[-1][0] < chunk * HOUR:
            runs[-1] = (runs[-1][0], hour)
        else:
            runs.append((hour, hour))
    return runs
