"""SPEC §4 at a cutoff and scope as a few small queries, each written for the scope asked.

`metrics_at` (sinks/schema/views) answers every scope with one query, and ClickHouse spends
much of a call planning the branches the scope does not take. Here Python decides what the
scope needs (which rollup grain, which filters, which distinct counts), works out every
time bound itself, and sends only that. National, org and role scopes read whole hours
from rollups and only the shifts of the cutoff's own hour raw. Coverage comes from the
cutoff's settled hour (sinks/coverage.py) when that is up to date, and otherwise from every
shift on post, per site. The queries go in two rounds, each run at once when the reader
has helper clients (sinks/reader.py): what the rest depends on (the longest shift, the
sites in scope, whether coverage is settled), then everything else. The definitions are
the view's; tests check the two agree at every cutoff and scope they know, and `muster
bench` against a full re-read.

Views are generated from these reads (end of this module; `python -m sinks.metric_reads`
writes them): `metrics_tz`, every metric national; `counts_tz`, the same but the metrics
about sites (the Grafana wall's tiles); and `org_hours_at`, hours per organisation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any, Protocol

from sinks.coverage import fresh_sql, settled_sql
from sinks.store import ch_time
from streams.core.rows import to_micros

# Up to this many sites in scope (a community, a street), their recent shifts are read from
# site_shifts (ordered by site), a range per site; more (a district: about 50; a city:
# about 1,000) from their city's one range of city_shifts, or, when their shifts were not
# all filed under one city, from shift_deltas' time range with the sites as a filter
# (100M bench, p50: a district by site 114 ms, by city 80; a site by site 49, by city 56).
FEW_SITES = 10


@dataclass(frozen=True)
class Filed:
    """Where a site scope's shifts, first starts and sums are read, and how the sites in
    scope are picked out there."""

    shifts: str  # signed shift versions
    sites: str  # the filter on the sites in scope (shifts, people, days and hours)
    people: str  # first starts per site and person
    days: str  # sums per site and UTC day
    hours: str  # sums per site and UTC hour
    own_raw: bool  # the shifts since `raw_from` come from `shifts`, with those on post
    firsts: str = ""  # first starts per person and team, when `sites` is a whole range


KEYS = "site_key IN {site_keys:Array(UInt64)}"
# a range per site: few sites (sinks/migrations/012_site_shifts.sql)
BY_SITE = Filed("site_shifts", KEYS, "site_people", "site_totals", "site_hours", True)
# one range for a city's sites, when they were all filed under it (013_city_shifts.sql)
BY_CITY = Filed(
    "city_shifts",
    "city_key = {city_key:UInt64} AND " + KEYS,
    "city_people",
    "city_days",
    "city_hours",
    True,
)
WHOLE_CITY = replace(BY_CITY, sites="city_key = {city_key:UInt64}", firsts="city_firsts")
# the time-ordered table, with the sites as a filter
BY_TIME = Filed("shift_deltas", KEYS, "site_people", "site_totals", "site_hours", False)


class QueryReader(Protocol):
    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any: ...

    def query_all(self, queries: Sequence[tuple[str, dict[str, Any] | None]]) -> list[Any]: ...


@dataclass(frozen=True)
class Ask:
    """One metrics question: the cutoff, local midnight D and the scope's values."""

    at: datetime
    midnight: datetime
    sites: dict[str, str]  # site scopes given, by column
    person: dict[str, str]  # org / role / team_id given

    @property
    def site_scoped(self) -> bool:
        return bool(self.sites)

    @property
    def by_team(self) -> bool:
        return "team_id" in self.person

    @property
    def hourly(self) -> bool:
        """National and org/role scopes read the hourly rollup; the others read days."""
        return not self.site_scoped and not self.by_team

    @property
    def site_sums(self) -> bool:
        """Site scopes without a person scope read per-site days and hours (site_totals,
        site_hours) and raw only the cutoff's hour."""
        return self.site_scoped and not self.person

    @property
    def key(self) -> int:
        """The person scope key: which bit of `firsts` / `day_firsts` applies."""
        return ("org" in self.person) + 2 * ("role" in self.person) + 4 * self.by_team


def _hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def read_metrics(reader: QueryReader, ask: Ask) -> dict[str, Any]:
    """Every SPEC §4 metric at `ask.at` in its scope, with the columns `metrics_at` has."""
    cutoff = ask.at.astimezone(UTC)
    utc_day: date = cutoff.date()
    utc_midnight = datetime.combine(utc_day, datetime.min.time(), tzinfo=UTC)
    hour_start = _hour(cutoff)
    midnight = ask.midnight.astimezone(UTC)
    first_hour = _hour(midnight)
    if first_hour != midnight:
        first_hour += timedelta(hours=1)  # the first whole hour at or after local midnight D
    # D on a whole UTC hour: the people on post at D are one row of on_post_hours
    whole_midnight = ask.hourly and first_hour == midnight
    recruit_key = f"{ask.person.get('org', '')}\x1f\x1f{ask.person.get('team_id', '')}"
    counts_recruits = not ask.site_scoped and "role" not in ask.person

    params: dict[str, Any] = {
        "cutoff": ch_time(cutoff),
        "recruit_key": recruit_key,
        "utc_day": utc_day.isoformat(),
        "utc_midnight": ch_time(utc_midnight),
        "hour": _seconds(hour_start),  # also the settled hour coverage reads
    }
    params |= ask.person | ask.sites
    # first what the rest depends on: the longest shift (the head), the sites in scope,
    # and whether the cutoff's hour has settled coverage; then the rest, all at once
    first = [_head_sql(counts_recruits), fresh_sql()]
    if ask.site_scoped:
        first.append(
            "SELECT site_id, cityHash64(site_id) FROM sites_at(at = {cutoff:DateTime64(6, 'UTC')})"
            " WHERE " + _equal(ask.sites)
        )
    answers = _all(reader, first, params)
    head = {"longest": 0, "orphan_checkouts": 0, "dlq": 0, "recruited": 0}
    for name, n in answers[0].rows:
        head[name] += int(n)
    longest = timedelta(microseconds=int(head["longest"]))
    fresh = answers[1].dicts()[0]

    raw_from = hour_start if ask.hourly or ask.site_sums else utc_midnight
    times = {
        "after": cutoff + longest,
        "before": cutoff - longest,
        "midnight": midnight,
        "midnight_after": midnight + longest,
        "midnight_before": midnight - longest,
        "raw_from": raw_from,
        "raw_before": raw_from - longest,
        "hour_start": hour_start,
        "first_hour": first_hour,
    }
    params |= {name: ch_time(ts) for name, ts in times.items()}
    params |= {
        "cutoff_us": to_micros(cutoff),
        "hour_us": to_micros(hour_start),
        "first_hour_s": _seconds(first_hour),
        "midnight_s": _seconds(midnight),
        "k": ask.key,
        "key_org": ask.person.get("org", ""),
        "key_role": ask.person.get("role", ""),
        "gen_us": int(fresh["gen_us"]),
    }

    scoped = ""
    if ask.site_scoped:
        params["site_ids"] = [row[0] for row in answers[2].rows]
        params["site_keys"] = [int(row[1]) for row in answers[2].rows]
        scoped = "site_key IN {site_keys:Array(UInt64)}"

    filed = _filed(reader, ask, params) if ask.site_scoped else BY_TIME
    own_raw = filed.own_raw  # the raw shifts and those on post, from filed.shifts
    # coverage from the cutoff's settled hour (sinks/coverage.py) when it is up to date;
    # otherwise from every shift on post
    settled = bool(fresh["fresh"])
    reads = {
        "raw": _site_raw_sql(ask, filed) if own_raw else _raw_sql(ask, scoped, whole_midnight),
        "past": _past_sql(ask, filed),
        "cover": settled_sql(ask.site_scoped) if settled else _coverage_sql(ask, scoped),
    }
    if settled and not ask.hourly and not own_raw:
        reads["on_post"] = _on_post_sql(ask, scoped)
    reads |= {f"distinct{i}": sql for i, sql in enumerate(_distinct_sql(ask, filed))}
    answered = _all(reader, list(reads.values()), params)
    got = {name: answer.dicts()[0] for name, answer in zip(reads, answered, strict=True)}
    raw, past, cover = got["raw"], got["past"], got["cover"]
    distinct = {
        k: v for name, row in got.items() if name.startswith("distinct") for k, v in row.items()
    }
    if settled and not cover["held"]:  # settled anew since, and its rows merged away
        cover = _all(reader, [_coverage_sql(ask, scoped)], params)[0].dicts()[0]
    elif settled:
        cover["sites_covered"] = cover["covered"]
        cover |= got.get("on_post", {})
    if own_raw:  # the raw read counted the people on post too
        cover |= {"on_post_now": raw["on_post_now"], "not_yet_micros": raw["not_yet_micros"]}

    if ask.hourly:
        # the people on post at the cutoff's hour, plus those started and ended since
        on_post = int(past["on_post_h"]) + int(raw["on_post_delta"])
        not_yet = (
            int(past["left_h"])
            - int(raw["gone_left"])
            - (to_micros(cutoff) - to_micros(hour_start))
            * (int(past["on_post_h"]) - int(raw["gone_n"]))
            + int(raw["new_left"])
        )
        on_post_today = int(past["today"]) + int(raw["today"])
        on_post_today += int(past["on_post_d"]) if whole_midnight else 0
        people = int(past["new_people"]) + int(raw["new_people"])
    else:
        on_post, not_yet = int(cover["on_post_now"]), int(cover["not_yet_micros"])
        on_post_today = int(distinct["today"] if ask.site_scoped else raw["today"])
        people = int(
            distinct["people"] if ask.site_scoped else past["new_people"] + raw["new_people"]
        )
    active, covered = int(cover["sites_active"]), int(cover["sites_covered"])
    return {
        "recruited": head["recruited"] if counts_recruits else None,
        "on_post_now": on_post,
        "on_post_today": on_post_today,
        "cumulative_people": people,
        "person_times": int(past["person_times"]) + int(raw["person_times"]),
        "hours": (int(past["micros"]) + int(raw["micros"]) - not_yet) / 3600e6,
        "hours_auto": (int(past["auto_micros"]) + int(raw["auto_micros"])) / 3600e6,
        "teams": int(distinct["teams"]),
        "sites_active": active,
        "sites_covered": covered,
        "coverage": 0 if active == 0 else covered / active,
        "orphan_checkouts": head["orphan_checkouts"],
        "dlq": head["dlq"],
    }


def _filed(reader: QueryReader, ask: Ask, params: dict[str, Any]) -> Filed:
    """Few sites: by site. More (a city) by city, when every site in scope had its shifts
    filed under one city; otherwise (and for teams, which neither holds) by time. When
    every site filed under that city is in scope, its range needs no site filter."""
    if ask.by_team:
        return BY_TIME
    if len(params["site_keys"]) <= FEW_SITES:
        return BY_SITE
    sql = (
        "SELECT city_key, uniqExact(site_key) AS filed, uniqExactIf(site_key, "
        f"{KEYS}) AS scoped FROM site_cities GROUP BY city_key HAVING scoped > 0"
    )
    cities = reader.query(sql, _used(sql, params)).dicts()
    if len(cities) > 1:
        return BY_TIME
    if not cities:  # no shift at any site in scope yet
        params["city_key"] = 0
        return BY_CITY
    params["city_key"] = int(cities[0]["city_key"])
    return WHOLE_CITY if cities[0]["filed"] == cities[0]["scoped"] else BY_CITY


PARAMETER = re.compile(r"\{(\w+):")


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters `sql` names: every one sent is parsed, used or not (a city's two
    lists of 1,000 sites cost some 3 ms a query)."""
    return {name: params[name] for name in set(PARAMETER.findall(sql))}


def _all(reader: QueryReader, queries: list[str], params: dict[str, Any]) -> list[Any]:
    """The results of independent `queries`, run at once where the reader can, each sent
    with the parameters it names."""
    return list(reader.query_all([(sql, _used(sql, params)) for sql in queries]))


def _seconds(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


T = "DateTime64(6, 'UTC')"


def _head_sql(counts_recruits: bool) -> str:
    """The longest shift, orphan check-outs, the DLQ, and first registrations (SPEC §4
    `recruited`) when the scope counts them, as (name, n) rows to sum: small sums, each a
    branch of one UNION ALL (as scalar subqueries of one SELECT, ClickHouse runs each while
    planning: 11 against 8 ms)."""
    parts = [
        "SELECT 'longest' AS name, toInt64(ifNull(max(micros), 0)) AS n FROM shift_longest",
        "SELECT 'orphan_checkouts', toInt64(sum(n)) FROM orphan_days WHERE day < {utc_day:Date}",
        "SELECT 'orphan_checkouts', toInt64(sum(delta)) FROM orphan_deltas "
        f"WHERE ts >= {{utc_midnight:{T}}} AND ts <= {{cutoff:{T}}}",
        "SELECT 'dlq', toInt64(count()) FROM dlq FINAL",
    ]
    if counts_recruits:
        parts += [
            "SELECT 'recruited', toInt64(sum(n)) FROM recruit_days "
            "WHERE key = {recruit_key:String} AND day < {utc_day:Date}",
            "SELECT 'recruited', toInt64(sum(sign)) FROM recruit_deltas "
            f"WHERE key = {{recruit_key:String}} AND ts >= {{utc_midnight:{T}}} "
            f"AND ts <= {{cutoff:{T}}}",
        ]
    return " UNION ALL ".join(parts)


def _equal(names: dict[str, str]) -> str:
    """`name = {name:String}` for each scope given, joined with AND ('' for none)."""
    return " AND ".join(f"{name} = {{{name}:String}}" for name in names)


def _person_filter(ask: Ask) -> str:
    return f" AND {_equal(ask.person)}" if ask.person else ""


def _raw_sql(ask: Ask, scoped: str, whole_midnight: bool | None, by: str = "") -> str:
    """The shifts not yet in a rollup (a row per value of the column `by`, if given):
    since `raw_from` (the cutoff's hour, or its UTC day
    for site and team scopes); for national scopes the changes to on_post_hours since the
    hour; for on_post_today the first shifts of the day since D and, unless on_post_hours
    has it, the people on post at D. `whole_midnight` None (a view's): the reads of both
    forms, each guarded by the constant `whole_midnight`, in one query."""
    k = ask.key
    recent = f" AND (started_at < {{first_hour:{T}}} OR started_at >= {{hour_start:{T}}})"
    branches = [
        f"(started_at >= {{raw_from:{T}}} AND ended_at >= {{raw_from:{T}}} "
        f"AND ended_at <= {{after:{T}}})",
        f"(ended_at >= {{raw_from:{T}}} AND ended_at <= {{cutoff:{T}}} "
        f"AND started_at >= {{raw_before:{T}}})",
    ]
    sums = [
        f"sumIf(s, started_at >= {{raw_from:{T}}}) AS person_times",
        f"sumIf(len, started_at >= {{raw_from:{T}}}) AS micros",
        f"sumIf(s, started_at >= {{raw_from:{T}}} AND bitTest(firsts, {k})) AS new_people",
        f"sumIf(len, reason = 'auto' AND ended_at >= {{raw_from:{T}}} "
        f"AND ended_at <= {{cutoff:{T}}}) AS auto_micros",
    ]
    if ask.hourly:
        new = f"started_at > {{hour_start:{T}}} AND ended_at > {{cutoff:{T}}}"
        gone = (
            f"started_at <= {{hour_start:{T}}} AND ended_at > {{hour_start:{T}}} "
            f"AND ended_at <= {{cutoff:{T}}}"
        )
        sums += [
            f"sumIf(s, {new}) - sumIf(s, {gone}) AS on_post_delta",
            f"sumIf(s * (end_us - {{cutoff_us:Int64}}), {new}) AS new_left",
            f"sumIf(s * (end_us - {{hour_us:Int64}}), {gone}) AS gone_left",
            f"sumIf(s, {gone}) AS gone_n",
        ]
    whole, split = whole_midnight in (True, None), whole_midnight in (False, None)

    def only(form: bool, branch: str) -> str:
        if whole_midnight is not None:
            return branch
        return f"({'' if form else 'NOT '}{{whole_midnight:UInt8}} AND {branch})"

    today, today_whole, today_split = [], [], []
    if whole:
        # on_post_hours counts a shift started at D as on post at D; SPEC's first part
        # (started before D) does not, and the day-first sum below already has it
        branches.append(
            only(
                True,
                f"(started_at = {{midnight:{T}}} AND ended_at > {{midnight:{T}}} "
                f"AND ended_at <= {{midnight_after:{T}}})",
            )
        )
        today_whole.append(
            f"-sumIf(s, started_at = {{midnight:{T}}} AND ended_at > {{midnight:{T}}})"
        )
    if not ask.site_scoped:
        if split:
            branches.append(
                only(
                    False,
                    f"(ended_at > {{midnight:{T}}} AND ended_at <= {{midnight_after:{T}}} "
                    f"AND started_at > {{midnight_before:{T}}} AND started_at < {{midnight:{T}}})",
                )
            )
            today_split.append(
                f"sumIf(s, started_at < {{midnight:{T}}} AND ended_at > {{midnight:{T}}})"
            )
        since = recent if ask.hourly else ""
        if split:  # else the first shifts of the day since the hour are read
            branches.append(
                only(
                    False,
                    f"(started_at >= {{midnight:{T}}} AND ended_at >= {{midnight:{T}}} "
                    f"AND ended_at <= {{after:{T}}}{since})",
                )
            )
        today.append(
            f"sumIf(s, started_at >= {{midnight:{T}}} AND bitTest(day_firsts, {k}){since})"
        )
    if whole_midnight is None:
        either = (" + ".join(t) or "0" for t in (today_whole, today_split))
        today.insert(0, "if({{whole_midnight:UInt8}}, {}, {})".format(*either))
    else:
        today = today_whole + today_split + today
    sums.append(f"{' + '.join(today) or '0'} AS today")
    return (
        f"SELECT {by + ', ' if by else ''}{', '.join(sums)} "
        f"FROM (SELECT {by + ', ' if by else ''}toInt64(sign) AS s, started_at, ended_at, "
        "reason, firsts, day_firsts, toUnixTimestamp64Micro(ended_at) AS end_us, "
        "s * (end_us - toUnixTimestamp64Micro(started_at)) AS len "
        f"FROM shift_deltas WHERE started_at <= {{cutoff:{T}}}"
        + _person_filter(ask)
        + (f" AND {scoped}" if scoped else "")
        + " AND ("
        + " OR ".join(branches)
        + "))"
        + (f" GROUP BY {by}" if by else "")
    )


def _site_raw_sql(ask: Ask, filed: Filed) -> str:
    """Site scopes read by site or by city, with an org or role scope or none: the shifts
    since `raw_from` (the cutoff's hour; its UTC day with a person scope, which the hour
    sums lack) at the sites in scope, and those on post at the cutoff."""
    after_from = f"started_at >= {{raw_from:{T}}}"
    on_post = f"started_at > {{before:{T}}} AND ended_at > {{cutoff:{T}}}"
    return (
        f"SELECT sumIf(s, {after_from}) AS person_times, sumIf(len, {after_from}) AS micros, "
        f"sumIf(len, reason = 'auto' AND ended_at >= {{raw_from:{T}}} "
        f"AND ended_at <= {{cutoff:{T}}}) AS auto_micros, 0 AS new_people, 0 AS today, "
        f"sumIf(s, {on_post}) AS on_post_now, "
        f"sumIf(s * (end_us - {{cutoff_us:Int64}}), {on_post}) AS not_yet_micros "
        "FROM (SELECT toInt64(sign) AS s, started_at, ended_at, reason, "
        "toUnixTimestamp64Micro(ended_at) AS end_us, "
        "s * (end_us - toUnixTimestamp64Micro(started_at)) AS len "
        f"FROM {filed.shifts} WHERE {filed.sites} "
        f"AND started_at >= {{raw_before:{T}}} AND started_at <= {{cutoff:{T}}}"
        + _person_filter(ask)
        + ")"
    )


def _past_sql(ask: Ask, filed: Filed, by: str = "") -> str:
    """Whole hours (or UTC days) before `raw_from`, from the grain that fits the scope (site
    scopes without a person scope: days, then the hours of the cutoff's UTC day); for
    national scopes also the people on post at the cutoff's hour and at D."""
    k = ask.key
    person = _person_filter(ask)
    if ask.hourly:  # by `by` (org or role), if given, a row per value
        cols, group = (f"{by}, ", f" GROUP BY {by}") if by else ("", "")
        return (
            f"SELECT * FROM (SELECT {cols}sum(shifts) AS person_times, sum(micros) AS micros, "
            f"sum(auto_micros) AS auto_micros, sum(first{k}) AS new_people, "
            f"sumIf(today{k}, hour >= {{first_hour_s:DateTime('UTC')}}) AS today "
            f"FROM shift_hours WHERE hour < {{hour:DateTime('UTC')}}{person}{group}) AS p"
            + (" FULL JOIN " if by else ", ")
            + f"(SELECT {cols}sumIf(people, hour = {{hour:DateTime('UTC')}}) AS on_post_h, "
            "sumIf(left_micros, hour = {hour:DateTime('UTC')}) AS left_h, "
            "sumIf(people, hour = {midnight_s:DateTime('UTC')}) AS on_post_d "
            "FROM on_post_hours WHERE hour IN "
            f"({{hour:DateTime('UTC')}}, {{midnight_s:DateTime('UTC')}}){person}{group}) AS o"
            + (f" USING ({by})" if by else "")
        )
    if ask.site_sums:
        sums = "sum(shifts) AS person_times, sum(micros) AS micros, sum(auto_micros) AS auto_micros"
        keys = filed.sites
        return (
            "SELECT p.person_times + h.person_times AS person_times, p.micros + h.micros AS "
            "micros, p.auto_micros + h.auto_micros AS auto_micros, 0 AS new_people FROM "
            f"(SELECT {sums} FROM {filed.days} WHERE day < {{utc_day:Date}} AND {keys}) AS p, "
            f"(SELECT {sums} FROM {filed.hours} WHERE hour >= {{utc_midnight:{T}}} "
            f"AND hour < {{hour:DateTime('UTC')}} AND {keys}) AS h"
        )
    sites = " AND site_id IN {site_ids:Array(String)}" if ask.site_scoped else ""
    if ask.by_team:
        return (
            f"SELECT sum(shifts) AS person_times, sum(micros) AS micros, "
            f"sum(auto_micros) AS auto_micros, sum(first{k}) AS new_people "
            f"FROM team_days WHERE day < {{utc_day:Date}}{person}{sites}"
        )
    return (
        "SELECT sum(shifts) AS person_times, sum(micros) AS micros, "
        "sum(auto_micros) AS auto_micros, 0 AS new_people "
        f"FROM site_days WHERE day < {{utc_day:Date}}{person}{sites}"
    )


def _coverage_sql(ask: Ask, scoped: str) -> str:
    """SPEC §6 coverage of the active sites in scope (person scopes do not apply), and from
    the same read of the shifts on post, `on_post_now` and the time they have yet to run.

    Shifts on post are counted per cell (a site's hash XOR a role's) and per site. Each
    active site wants its cells (a requirement with a minimum above 0) or, with no such
    requirement, its site total at 1 or more; it is covered when every cell it wants is
    met. Row 0 of both sides carries the scope's totals."""
    sites = _equal(ask.sites)
    match = _equal(ask.person) or "1"
    return (
        "SELECT countIf(site_key != 0) AS sites_active, "
        "countIf(site_key != 0 AND met = wants) AS sites_covered, "
        "sumIf(scope_n, site_key = 0) AS on_post_now, "
        "sumIf(scope_left, site_key = 0) AS not_yet_micros "
        "FROM (SELECT w.site_key AS site_key, any(w.wants) AS wants, "
        "sum(st.n >= w.need) AS met, sum(st.scope_n) AS scope_n, "
        "sum(st.scope_left) AS scope_left "
        "FROM (SELECT site_key, "
        "if(want.1 = '', site_key, bitXor(site_key, cityHash64(want.1))) AS c, "
        "want.2 AS need, length(wanted) AS wants "
        "FROM (SELECT cityHash64(site_id) AS site_key, arrayFilter(x -> x.2 > 0, "
        "arrayZip(mapKeys(requirements), mapValues(requirements))) AS required, "
        "if(empty(required), [('', toUInt32(1))], required) AS wanted "
        f"FROM sites_at(at = {{cutoff:{T}}}) WHERE active = 1"
        + (f" AND {sites}" if sites else "")
        + ") ARRAY JOIN wanted AS want "
        "UNION ALL SELECT 0, 0, 0, 0) AS w "
        "LEFT JOIN (SELECT multiIf(grouping(site_key, cell) = 3, 0, "
        "grouping(site_key, cell) = 1, site_key, cell) AS c, sum(s) AS n, "
        "sum(if(matched, s, 0)) AS scope_n, sum(if(matched, s * left_us, 0)) AS scope_left "
        "FROM (SELECT site_key, cell, "
        f"toInt64(sign) AS s, {match} AS matched, "
        "toUnixTimestamp64Micro(ended_at) - {cutoff_us:Int64} AS left_us FROM shift_deltas "
        f"WHERE ended_at > {{cutoff:{T}}} AND ended_at <= {{after:{T}}} "
        f"AND started_at > {{before:{T}}} AND started_at <= {{cutoff:{T}}}"
        + (f" AND {scoped}" if scoped else "")
        + ") GROUP BY GROUPING SETS ((site_key), (cell), ())) AS st ON st.c = w.c "
        "GROUP BY w.site_key)"
    )


def _on_post_sql(ask: Ask, scoped: str) -> str:
    """The shifts on post at the cutoff in scope, and the time they have yet to run."""
    return (
        "SELECT sum(s) AS on_post_now, sum(s * left_us) AS not_yet_micros "
        "FROM (SELECT toInt64(sign) AS s, "
        "toUnixTimestamp64Micro(ended_at) - {cutoff_us:Int64} AS left_us FROM shift_deltas "
        f"WHERE ended_at > {{cutoff:{T}}} AND ended_at <= {{after:{T}}} "
        f"AND started_at > {{before:{T}}} AND started_at <= {{cutoff:{T}}}"
        + (f" AND {scoped}" if scoped else "")
        + _person_filter(ask)
        + ")"
    )


def _distinct_sql(ask: Ask, filed: Filed) -> list[str]:
    """Distinct counts: people on post today, people and teams over the sites in scope
    (two queries, run at once), or teams elsewhere."""
    person = _person_filter(ask)
    if ask.hourly:
        return [
            "SELECT uniqExact(team_key) AS teams FROM team_firsts WHERE k = {k:UInt8} "
            "AND org = {key_org:String} AND role = {key_role:String} "
            f"AND first_start <= {{cutoff:{T}}}"
        ]
    if not ask.site_scoped:
        return [
            "SELECT uniqExact(team_id) AS teams FROM team_cells "
            f"WHERE first_start <= {{cutoff:{T}}}{person}"
        ]
    who = "person_id" if filed.shifts == "shift_deltas" else "person_key"
    # people and teams counted by their 64-bit hashes: about twice as fast as the strings
    if filed.firsts and not person:  # a row per person and team (014_city_firsts.sql)
        firsts = (
            "countIf(kind = 0) AS people, countIf(kind = 1) AS teams "
            f"FROM {filed.firsts} FINAL WHERE {filed.sites}"
        )
    elif filed.people == "city_people":  # by city
        firsts = (
            "uniqExact(person_key) AS people, uniqExactIf(team_key, team_key != 0) AS teams "
            f"FROM {filed.people} WHERE {filed.sites}"
        )
    else:
        firsts = (
            "uniqExact(cityHash64(person_id)) AS people, "
            "uniqExactIf(cityHash64(team_id), team_id != '') AS teams "
            "FROM site_people WHERE site_id IN {site_ids:Array(String)}"
        )
    return [
        f"SELECT count() AS today FROM (SELECT {who} FROM {filed.shifts} "
        f"WHERE ended_at > {{midnight:{T}}} AND ended_at <= {{after:{T}}} "
        f"AND started_at > {{midnight_before:{T}}} AND started_at <= {{cutoff:{T}}} "
        f"AND {filed.sites}{person} GROUP BY {who} HAVING sum(sign) > 0)",
        f"SELECT {firsts} AND first_start <= {{cutoff:{T}}}{person}",
    ]


# The national reads above as one query: `metrics_tz` (and `counts_tz`, the wall's). Each
# read is the text its builder gives the API; its parameters become constants the query
# works out first (the longest shift and whether the cutoff's hour is settled are scalar
# subqueries, run once while ClickHouse plans), and of two forms of a read only the one
# whose constant guard holds is run. Only how the reads combine is written again below,
# as read_metrics does it for national scopes; tests hold the two equal.
NATIONAL_CONSTANTS = {
    "cutoff": "toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC')",
    "midnight": "toDateTime64(toStartOfDay(toDateTime(v_cutoff, {tz:String})), 6, 'UTC')",
    "utc_day": "toDate(v_cutoff)",
    "utc_midnight": "toDateTime64(toStartOfDay(v_cutoff), 6, 'UTC')",
    "hour_start": "toDateTime64(toStartOfHour(v_cutoff), 6, 'UTC')",
    "hour": "toDateTime(v_hour_start, 'UTC')",
    # the first whole hour at or after local midnight D
    "first_hour": "toDateTime64(toStartOfHour(v_midnight), 6, 'UTC') "
    "+ toIntervalHour(toDateTime64(toStartOfHour(v_midnight), 6, 'UTC') != v_midnight)",
    "longest": "toIntervalMicrosecond((SELECT toInt64(ifNull(max(micros), 0)) FROM shift_longest))",
    "after": "v_cutoff + v_longest",
    "before": "v_cutoff - v_longest",
    "midnight_after": "v_midnight + v_longest",
    "midnight_before": "v_midnight - v_longest",
    "raw_from": "v_hour_start",
    "raw_before": "v_raw_from - v_longest",
    "cutoff_us": "toUnixTimestamp64Micro(v_cutoff)",
    "hour_us": "toUnixTimestamp64Micro(v_hour_start)",
    "first_hour_s": "toDateTime(v_first_hour, 'UTC')",
    "midnight_s": "toDateTime(v_midnight, 'UTC')",
    "whole_midnight": "v_first_hour = v_midnight",
    "k": "toUInt8(0)",
    "key_org": "''",
    "key_role": "''",
    "recruit_key": "'\\x1f\\x1f'",
    "fresh": f"({fresh_sql()})",
    "gen_us": "v_fresh.2",
    # settled coverage is read when it is up to date and its rows are still there
    "settled": "v_fresh.1 AND (SELECT count() FROM cover_hours WHERE hour = v_hour "
    "AND toUnixTimestamp64Micro(gen) = v_gen_us AND site_key = 0) > 0",
}


VIEW_PARAMETERS = ("at", "tz")
# The views' reads are the ones a national ask gets (its times are constants of the view)
NATIONAL = Ask(datetime.min.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC), {}, {})


def _as_view(sql: str) -> str:
    """`sql` with each parameter a constant of the view (`{name:Type}` → `v_name`), but
    for the view's own parameters."""

    def constant(match: re.Match[str]) -> str:
        return match[0] if match[1] in VIEW_PARAMETERS else f"v_{match[1]}"

    return re.sub(r"\{(\w+):[^{}]*\}", constant, sql)


def _one_of(*forms: tuple[str, str]) -> str:
    """The forms of one read (guard, sql) as one row: the form whose guard holds."""
    return " UNION ALL ".join(f"SELECT * FROM ({sql}) WHERE {guard}" for guard, sql in forms)


# SPEC §4 hours for national, org and role scopes, as read_metrics adds them up: whole
# hours and the raw shifts since, less what the shifts on post have yet to run (on post
# at the hour, less those gone since, for the time since; plus the new ones' remainder)
HOURS = (
    "(p.micros + r.micros - (p.left_h - r.gone_left - (v_cutoff_us - v_hour_us) "
    "* (p.on_post_h - r.gone_n) + r.new_left)) / 3600e6"
)


def _constants(**instead: str) -> str:
    named = NATIONAL_CONSTANTS | instead
    return ",\n    ".join(f"{_as_view(sql)} AS v_{name}" for name, sql in named.items())


HEAD_COMMENTS = {
    True: (
        "-- Every SPEC §4 metric national (no scope) at `at`, with D local midnight in `tz`.\n"
        "-- Generated from sinks/metric_reads.py (national_view) by "
        "`python -m sinks.metric_reads`:\n"
        "-- the API's national reads, as one query.\n"
        "-- SELECT * FROM metrics_tz(at = '2022-03-15 11:00:00', tz = 'Asia/Shanghai')\n"
        "CREATE OR REPLACE VIEW metrics_tz AS"
    ),
    False: (
        "-- metrics_tz but the three metrics about sites (sites_active, sites_covered, "
        "coverage),\n"
        "-- which it reads no coverage for: what the Grafana wall's tiles read (the wall counts\n"
        "-- those three from its read of every site, site_board_at). Generated from\n"
        "-- sinks/metric_reads.py (national_view) by `python -m sinks.metric_reads`.\n"
        "-- SELECT * FROM counts_tz(at = '2022-03-15 11:00:00', tz = 'Asia/Shanghai')\n"
        "CREATE OR REPLACE VIEW counts_tz AS"
    ),
}


def national_view(sites: bool = True) -> str:
    """CREATE for `metrics_tz(at, tz)`: every SPEC §4 metric national at `at`, D local
    midnight in `tz`, from the reads `read_metrics` sends for a national scope; or, without
    `sites`, for `counts_tz(at, tz)`: every one but the SITE_METRICS (no coverage read)."""
    head = _head_sql(counts_recruits=True)
    raw = _raw_sql(NATIONAL, "", whole_midnight=None)
    (teams,) = _distinct_sql(NATIONAL, BY_TIME)
    # without the coverage read, nothing asks whether the cutoff's hour is settled
    constants = _constants() if sites else _constants(fresh="(1, 0)", settled="0")
    reads = {
        "h": f"SELECT sumIf(n, name = 'longest') AS longest, "
        f"sumIf(n, name = 'orphan_checkouts') AS orphan_checkouts, "
        f"sumIf(n, name = 'dlq') AS dlq, sumIf(n, name = 'recruited') AS recruited "
        f"FROM ({head})",
        "r": raw,
        "p": _past_sql(NATIONAL, BY_TIME),
    }
    if sites:
        reads["c"] = _one_of(
            (
                "v_settled",
                f"SELECT sites_active, covered AS sites_covered FROM ({settled_sql(False)})",
            ),
            (
                "NOT v_settled",
                f"SELECT sites_active, sites_covered FROM ({_coverage_sql(NATIONAL, '')})",
            ),
        )
    reads["t"] = teams
    joined = ", ".join(f"({_as_view(sql)}) AS {name}" for name, sql in reads.items())
    site_columns = (
        """
    toUInt64(c.sites_active) AS sites_active,
    toUInt64(c.sites_covered) AS sites_covered,
    if(sites_active = 0, 0, sites_covered / sites_active) AS coverage,"""
        if sites
        else ""
    )
    head_comment = HEAD_COMMENTS[sites]
    return f"""{head_comment}
WITH
    {constants}
SELECT
    v_cutoff AS at,
    toUInt64(h.recruited) AS recruited,
    p.on_post_h + r.on_post_delta AS on_post_now,
    toInt64(p.today + r.today + if(v_whole_midnight, p.on_post_d, 0)) AS on_post_today,
    toInt64(p.new_people + r.new_people) AS cumulative_people,
    toInt64(p.person_times + r.person_times) AS person_times,
    {HOURS} AS hours,
    (p.auto_micros + r.auto_micros) / 3600e6 AS hours_auto,
    toInt64(t.teams) AS teams,{site_columns}
    h.orphan_checkouts AS orphan_checkouts,
    h.dlq AS dlq
FROM {joined};
"""


def counts_view() -> str:
    """CREATE for `counts_tz(at, tz)`: metrics_tz but the SITE_METRICS."""
    return national_view(sites=False)


def org_hours_view() -> str:
    """CREATE for `org_hours_at(at)`: SPEC §4 hours and person-times at `at` per
    organisation, as `read_metrics` reads them for an org scope, every org at once."""
    raw = _raw_sql(NATIONAL, "", whole_midnight=True, by="org")  # D is a whole hour here
    past = _past_sql(NATIONAL, BY_TIME, by="org")
    reads = f"({_as_view(past)}) AS p FULL JOIN ({_as_view(raw)}) AS r"
    # D plays no part in hours: it is put on the cutoff's hour, which adds no reads
    constants = _constants(midnight="v_hour_start", fresh="(1, 0)", settled="0")
    return f"""-- SPEC §4 hours (service hours, in hours) and person-times at `at` per organisation,
-- every organisation at once: what an org scope of `muster metrics` gives. Generated from
-- sinks/metric_reads.py (org_hours_view) by `python -m sinks.metric_reads`.
-- SELECT * FROM org_hours_at(at = '2022-03-15 11:00:00')
CREATE OR REPLACE VIEW org_hours_at AS
WITH
    {constants}
SELECT org, {HOURS} AS hours, toInt64(p.person_times + r.person_times) AS person_times
FROM {reads} USING (org)
ORDER BY org;
"""


# on_post_series_at with a city for a place (its district ''): what changes, each once.
CITY_SERIES = (
    ("VIEW on_post_series_at AS", "VIEW on_post_series_by_city_at AS"),
    ("(city, district) AS filed", "(city, '') AS filed"),
)


def city_series_view() -> str:
    """on_post_series_by_city_at: the people on post over the day by city, as
    on_post_series_at reads them by district, with (city, '') for each (city, district).
    A site that moved district within its city is then in its place, and the sum over a
    city is made before every moment's row is (dozens of rows a moment, not hundreds)."""
    text = resources.files("sinks.schema").joinpath("views", "on_post_series_at.sql")
    body = text.read_text(encoding="utf-8")
    body = body[body.index("CREATE OR REPLACE VIEW") :]
    for old, new in CITY_SERIES:
        if body.count(old) != 1:
            raise ValueError(f"on_post_series_at.sql: {old!r} is not there once")
        body = body.replace(old, new)
    places = body.count("(city, district) AS place")
    if places != 5:
        raise ValueError(f"on_post_series_at.sql: (city, district) AS place {places} times, not 5")
    body = body.replace("(city, district) AS place", "(city, '') AS place")
    return f"""-- People on post over the day by city: on_post_series_at with a city for each of its
-- districts (`district` is ''). Generated from sinks/schema/views/on_post_series_at.sql
-- by `python -m sinks.metric_reads` (city_series_view); that file says how it reads.
-- SELECT * FROM on_post_series_by_city_at(at = '2022-03-15 11:00:00', tz = 'Asia/Shanghai',
--                                          step_s = 900)
{body}"""


# The views generated above (from the API's reads, and the series by city): name -> CREATE
GENERATED = {
    "metrics_tz": national_view,
    "counts_tz": counts_view,
    "org_hours_at": org_hours_view,
    "on_post_series_by_city_at": city_series_view,
}


if __name__ == "__main__":
    from pathlib import Path

    for name, create in GENERATED.items():
        path = Path(__file__).parent / "schema" / "views" / f"{name}.sql"
        path.write_text(create(), encoding="utf-8")
        print(f"wrote {path}")
