"""Named queries: every SPEC §4 metric at any cutoff and scope, site inputs, alerts, series.

Analysts and dashboards read the `metrics_at` view (sinks/schema/views), and the wall
`counts_tz` and `site_board_at`; the API, the CLI and the bulletin read the same rollups through
sinks/metric_reads.py, a few queries written for the scope asked (metrics_tz is those
reads for a national scope, as one query), which tests hold equal to the views.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.errors import UnknownScope
from schemas.metrics import FLOATS, NAMES, SITE_SCOPES
from sinks.metric_reads import Ask, QueryReader, read_metrics
from sinks.store import ch_time

METRICS = NAMES  # SPEC §4, in the catalogue's order (schemas/metrics.py)
FLOAT_METRICS = FLOATS


@dataclass(frozen=True)
class Scope:
    """SPEC §4 scopes; None means not narrowed."""

    city: str | None = None
    district: str | None = None
    street: str | None = None
    community: str | None = None
    site_id: str | None = None
    org: str | None = None
    role: str | None = None
    team_id: str | None = None


METRICS_SQL = (
    "SELECT * FROM {view}(at = {{at:String}}, day_start = {{day_start:String}}, "
    + ", ".join(f"{name} = {{{{{name}:String}}}}" for name in Scope.__dataclass_fields__)
    + ")"
)


def day_start(at: datetime, zone: ZoneInfo) -> datetime:
    """SPEC §4 `D`: local midnight of `at` in the pipeline's time zone."""
    local = at.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone).astimezone(UTC)


def metrics(
    reader: QueryReader,
    at: datetime,
    zone: ZoneInfo,
    scope: Scope,
    view: str | None = None,
) -> dict[str, Any]:
    """Every SPEC §4 metric at cutoff `at`, keyed as `muster metrics --json` prints them.
    With `view`, read through that view instead of the rollups the API reads: `metrics_at`
    (what analysts call) or `metrics_brute_at` (every shift read again)."""
    given = {name: value for name, value in asdict(scope).items() if value}
    if view:
        parameters = {"at": ch_time(at), "day_start": ch_time(day_start(at, zone))}
        parameters |= {name: value or "" for name, value in asdict(scope).items()}
        row = reader.query(METRICS_SQL.format(view=view), parameters).dicts()[0]
    else:
        ask = Ask(
            at,
            day_start(at, zone),
            {n: v for n, v in given.items() if n in SITE_SCOPES},
            {n: v for n, v in given.items() if n not in SITE_SCOPES},
        )
        row = read_metrics(reader, ask)
    if given:
        check_scope(reader, suspect_scopes(row, given))
    out: dict[str, Any] = {"at": at.astimezone(zone).isoformat()}
    for name in METRICS:
        value = row[name]
        if value is None:
            out[name] = None
        elif name in FLOAT_METRICS:
            out[name] = float(value)
        else:
            out[name] = int(value)
    return out


# Where each scope's values are known from: the sites' versions, and the accepted events
# (a check-in's site, role, org and team; a registration's org and team).
KNOWN_IN = {name: ("site_versions",) for name in SITE_SCOPES} | {
    "site_id": ("site_versions", "events"),
    "org": ("events",),
    "role": ("events",),
    "team_id": ("events",),
}
SHOWN_KNOWN = 12


def suspect_scopes(row: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """The given scope values under which every figure they narrow is zero: a true zero (a
    cutoff before anything happened there), or a value nobody has sent (a mistyped one)."""
    if row["person_times"] or row["recruited"]:
        return {}
    return {n: v for n, v in given.items() if n not in SITE_SCOPES or not row["sites_active"]}


def check_scope(reader: QueryReader, given: dict[str, str]) -> None:
    """UnknownScope naming the first scope value the store has never seen, with some of the
    values it knows; nothing when every value is known, or when the store knows none of its
    kind yet (the zeros are then true)."""
    for name, value in given.items():
        tables = KNOWN_IN[name]
        found = " UNION ALL ".join(
            f"SELECT 1 FROM {t} WHERE {name} = {{value:String}} LIMIT 1" for t in tables
        )
        if reader.query(found, {"value": value}).rows:
            continue
        some = reader.query(
            f"SELECT DISTINCT {name} FROM {tables[0]} WHERE {name} != '' "
            f"ORDER BY {name} LIMIT {SHOWN_KNOWN + 1}"
        ).rows
        if not some:
            continue  # the store knows no value yet: nothing has happened, zeros are true
        label = "site" if name == "site_id" else name.removesuffix("_id")
        known = ", ".join(repr(v) for (v,) in some[:SHOWN_KNOWN])
        more = ", …" if len(some) > SHOWN_KNOWN else ""
        raise UnknownScope(f"unknown {label} {value!r}; the store knows {known}{more}")


SITES_SQL = (
    "SELECT site_id, name, city, district, street, community, kind, active, requirements, "
    "lat, lon, on_post, toUnixTimestamp64Micro(last_activity) AS last_activity_us "
    "FROM site_inputs_at(at = {at:String}) WHERE "
    + " AND ".join(f"({{{n}:String}} = '' OR {n} = {{{n}:String}})" for n in SITE_SCOPES)
    + " ORDER BY site_id"
)


def site_inputs(reader: QueryReader, at: datetime, scope: Scope) -> list[dict[str, Any]]:
    """Each site known at `at` in the scope's site part: attributes, people on post per
    role, last activity (microseconds); SPEC §6 is finished by streams/core/status.py."""
    parameters = {"at": ch_time(at)} | {n: getattr(scope, n) or "" for n in SITE_SCOPES}
    rows: list[dict[str, Any]] = reader.query(SITES_SQL, parameters).dicts()
    return rows


def alerts(reader: QueryReader, open_only: bool, at: int | None = None) -> list[dict[str, Any]]:
    """Understaffed alerts, newest opened first (times in microseconds); with `at`, those
    opened by then, and `open_only` those not resolved by then."""
    cutoff = "fromUnixTimestamp64Micro({at:Int64})"
    where = [] if at is None else [f"opened_at <= {cutoff}"]
    if open_only:
        closed_later = "" if at is None else f" OR resolved_at > {cutoff}"
        where.append(f"(resolved_at IS NULL{closed_later})")
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    rows: list[dict[str, Any]] = reader.query(
        "SELECT alert_id, kind, site_id, toUnixTimestamp64Micro(opened_at) AS opened_us, "
        "short, people, toUnixTimestamp64Micro(resolved_at) AS resolved_us "
        f"FROM alerts_current {clause}ORDER BY opened_at DESC, alert_id",
        None if at is None else {"at": at},
    ).dicts()
    return rows


SERIES_STEP = timedelta(minutes=10)
SERIES_SQL = (
    "SELECT toUnixTimestamp64Micro(toDateTime64(time, 6, 'UTC')) AS t, district, people "
    "FROM on_post_series_at(at = {at:String}, tz = {tz:String}, step_s = {step:UInt32})"
)


def on_post_series(reader: QueryReader, at: datetime, zone: ZoneInfo) -> dict[str, Any]:
    """People on post by district at local midnight, every 10 minutes since, and at `at`."""
    start = day_start(at, zone)
    moments, t = [], start
    while t <= at:
        moments.append(t)
        t += SERIES_STEP
    if moments[-1] != at:
        moments.append(at)
    parameters = {"at": ch_time(at), "tz": str(zone), "step": int(SERIES_STEP.total_seconds())}
    rows = reader.query(SERIES_SQL, parameters).rows
    index = {int(m.timestamp() * 1_000_000): i for i, m in enumerate(moments)}
    people: dict[str, list[int]] = {}
    for micros, district, n in rows:
        if micros in index:
            # a district's name, summed over the cities that have one by it
            people.setdefault(district, [0] * len(moments))[index[micros]] += int(n)
    return {
        "at": at.astimezone(zone).isoformat(),
        "day_start": start.astimezone(zone).isoformat(),
        "step_s": int(SERIES_STEP.total_seconds()),
        "times": [m.astimezone(zone).isoformat() for m in moments],
        "districts": sorted(people),
        "people": people,
    }


WARM_UP_WEEKS = 5  # cutoffs a week apart from the latest hour: every month partition


def warm_up(reader: QueryReader, zone: ZoneInfo) -> int:
    """Ask one metrics question per scope kind at cutoffs a week apart back from the latest
    hour stored, so that the first answers a new worker gives are not the ones paying to
    load each table's index marks (100M bench store: a first call 110-120 ms, the next
    60-75). Returns the number of questions asked; an empty store needs none."""
    latest = reader.query(
        "SELECT toUnixTimestamp(max(hour)) AS h, count() AS n FROM shift_hours"
    ).dicts()[0]
    if not latest["n"]:
        return 0
    site = reader.query(
        "SELECT site_id, city, district FROM site_versions ORDER BY ts DESC LIMIT 1"
    ).dicts()
    person = reader.query("SELECT org, role FROM shift_hours LIMIT 1").dicts()
    team = reader.query("SELECT team_id FROM team_cells LIMIT 1").dicts()
    scopes = [Scope()]
    if site:
        s = site[0]
        scopes += [
            Scope(city=s["city"]),
            Scope(district=s["district"]),
            Scope(site_id=s["site_id"]),
        ]
    if person:
        org, role = person[0]["org"], person[0]["role"]
        scopes += [Scope(org=org), Scope(role=role)]
        if site:
            scopes.append(Scope(district=site[0]["district"], org=org))
    if team:
        scopes.append(Scope(team_id=team[0]["team_id"]))
    end = datetime.fromtimestamp(int(latest["h"]), UTC) + timedelta(minutes=30)
    asked = 0
    for week in range(WARM_UP_WEEKS):
        for scope in scopes:
            metrics(reader, end - timedelta(weeks=week), zone, scope)
            asked += 1
    return asked
