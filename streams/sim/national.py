"""`muster bench --scale N --data-dir D`: a synthetic national month, and how fast it reads.

The month (30 days up to the build's start) has N shifts of 1.4M people at 30,000 sites in
30 cities and 600 districts, with registrations, orphan check-outs, site versions (some
sites change their requirements or close) and shifts first stored open and later closed,
so the rollups see retractions as well as assertions. Every row is built by the pipeline's
own row builders (streams/core/rows.py) and written by its writer (sinks/writer.py); the
rollups fill themselves from those inserts, as they do in production. Check-in and
check-out event rows, which no metric reads, are left out.

Then every metric kind (city-wide, district, site, org, role, team, combined) is timed at
many cutoffs through `sinks.queries.metrics`, the function behind `/api/metrics`, and a few
are checked against `metrics_brute_at`, which re-reads every shift.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from dashboards.boards import wall
from dashboards.expand import Context, expand, grafana_interval
from dashboards.grafana import refresh_queries, variable_queries
from schemas.events import Registered, SiteUpserted
from sinks.coverage import settle
from sinks.queries import Scope, metrics, warm_up
from sinks.reader import helped_reader
from sinks.store import connect, lock_embedded, migrate
from sinks.writer import RowWriter
from streams.core.follows import RECRUIT_KEYS, bits, keys_of, step
from streams.core.rows import (
    Row,
    checkout_row,
    dlq_row,
    event_row,
    recruit_row,
    shift_row,
    site_row,
)
from streams.core.shifts import CloseReason, Move, Shift

DAYS = 30
SLOT = timedelta(hours=8)  # a person works at most one shift per 8-hour slot
MAX = timedelta(hours=12)
BATCH = 250_000
# Merged after building: the tables read in ranges per site, city or hour
# (sinks/metric_reads.py).
MERGED = (
    "shift_deltas",
    "city_shifts",
    "site_shifts",
    "site_people",
    "city_people",
    "city_firsts",
    "site_days",
    "site_hours",
    "site_totals",
    "city_hours",
    "city_days",
    "site_cities",
    "cover_hours",
    # what the wall reads at a cutoff besides (site_board_at, the series, the tiles and the
    # hours per organisation): on the 20M-shift, 6-day bench, unmerged after the build,
    # one refresh took 2.7 s and merged 1.0 s
    "site_activity",
    "site_role_hours",
    "district_series",
    "place_moments",
    "site_districts",
    "team_days",
    "team_firsts",
    "shifts",
)
CITIES = (
    "北京市 上海市 广州市 深圳市 天津市 重庆市 成都市 武汉市 杭州市 南京市 西安市 长沙市 "
    "郑州市 沈阳市 青岛市 济南市 哈尔滨市 长春市 大连市 厦门市 福州市 昆明市 南宁市 贵阳市 "
    "合肥市 南昌市 石家庄市 太原市 兰州市 乌鲁木齐市"
).split()
ROLES = ("guide", "marshal", "registrar", "sampler", "supplies", "disinfector", "medic")
ORGS = ("union", "youth_league", "womens_federation", "social_org", "party", "government")
SITE_KINDS = ("testing_site", "checkpoint", "quarantine_hotel", "hotline")


@dataclass(frozen=True)
class Shape:
    people: int = 1_400_000
    sites: int = 30_000
    districts_per_city: int = 20
    team_size: int = 10


@dataclass(frozen=True)
class Site:
    site_id: str
    city: str
    district: str


def build(
    data_dir: Path,
    scale: int,
    seed: int,
    zone: ZoneInfo,
    shape: Shape = Shape(),
    days: int = DAYS,
) -> dict[str, Any]:
    """Write the month into a fresh embedded store under `data_dir`; return what was built."""
    store = data_dir / "store"
    if store.exists() and any(store.iterdir()):
        raise SystemExit(f"bench: {store} is not empty; give a fresh --data-dir")
    lock_embedded(data_dir)
    client = connect(f"chdb://{store.resolve()}", "muster")
    migrate(client)
    writer = RowWriter(client)
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    started = time.monotonic()

    sites = _sites(rng, shape)
    writer.write({"site_versions": list(_site_rows(rng, sites, start, end))})
    _say(f"{len(sites):,} sites in {len(CITIES)} cities written")
    written = 0
    for batch in _batched(_registrations(rng, shape, start)):
        written += len(batch)
        firsts = [
            recruit_row(row["person_id"], key, row["ts"], 1)
            for row in batch
            for key in keys_of(row["org"], "", row["team_id"], RECRUIT_KEYS)
        ]
        writer.write({"events": batch, "recruit_firsts": firsts})
    _say(f"{written:,} registrations written")

    shifts = 0
    shifts_started = time.monotonic()
    for rows in _shift_batches(rng, shape, sites, scale, start, end, zone):
        writer.write(rows)
        shifts += sum(1 for r in rows["shifts"] if r["prev_reason"] == "")
        rate = shifts / (time.monotonic() - shifts_started)
        left = (scale - shifts) / rate if rate else 0
        _say(f"{shifts:,}/{scale:,} shifts written ({rate:,.0f}/s, about {left / 60:.0f} min left)")
    writer.write(
        {"dlq": [dlq_row("bench: not json", "muster.events", 0, n, None, "x") for n in range(100)]}
    )
    settle(client, say=_say)  # what the worker does for finished hours (sinks/coverage.py)
    # A month written in one go leaves the tables read in ranges in several to dozens of
    # parts, each holding every site, so a district's read visits each site once per part
    # and the hour's raw read each hour range; merging them is what the store's background
    # merges do to data that stops changing, done here at once (100M: district + org p50 /
    # p95 156 / 188 to 98 / 127 ms; national's raw hour 34 to 20 ms).
    _say(f"merging the {len(MERGED)} tables read in ranges (100M shifts: about 20 min)")
    for table in MERGED:
        merge_started = time.monotonic()
        client.command(f"OPTIMIZE TABLE {table} FINAL", settings={"receive_timeout": 3600})
        _say(f"merged {table} in {time.monotonic() - merge_started:.0f} s")
    built: dict[str, Any] = {
        "scale": scale,
        "shifts": shifts,
        "people": shape.people,
        "sites": len(sites),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "seed": seed,
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (data_dir / "bench.json").write_text(json.dumps({"built": built}, indent=2))
    _say(f"built in {built['build_seconds'] / 60:.1f} min")
    return built


def _sites(rng: random.Random, shape: Shape) -> list[Site]:
    per_city = shape.sites // len(CITIES)
    return [
        Site(f"site-{c:02d}-{n:04d}", city, f"{city[:-1]}{n % shape.districts_per_city + 1:02d}区")
        for c, city in enumerate(CITIES)
        for n in range(per_city)
    ]


def _site_rows(
    rng: random.Random, sites: list[Site], start: datetime, end: datetime
) -> Iterator[Row]:
    for offset, site in enumerate(sites):
        first = _site_event(rng, site, start - timedelta(days=60), f"{site.site_id}-v1", True)
        yield site_row(first, 0, 2 * offset)
        roll = rng.random()
        if roll < 0.12:  # requirements change, or the site closes, during the month
            when = start + (end - start) * rng.random()
            later = _site_event(rng, site, when, f"{site.site_id}-v2", roll > 0.01)
            yield site_row(later, 0, 2 * offset + 1)


def _site_event(
    rng: random.Random, site: Site, ts: datetime, event_id: str, active: bool
) -> SiteUpserted:
    street = f"{site.district}第{rng.randint(1, 10)}街道"
    return SiteUpserted(
        event_id=event_id,
        type="site_upserted",
        ts=ts.isoformat(),
        site_id=site.site_id,
        name=f"{site.district}{site.site_id[-4:]}号点",
        city=site.city,
        district=site.district,
        street=street,
        community=f"{street}{rng.randint(1, 5)}社区",
        kind=rng.choice(SITE_KINDS),
        requirements={r: rng.randint(1, 3) for r in rng.sample(ROLES, rng.randint(0, 3))},
        active=active,
        lat=round(rng.uniform(20, 45), 5),
        lon=round(rng.uniform(100, 125), 5),
    )


def _person(n: int, shape: Shape) -> tuple[str, str, str]:
    """(person_id, org, team_id) of person n: ten-person squads within one org."""
    team = n // shape.team_size
    return f"p{n:07d}", ORGS[team % len(ORGS)], f"t{team:06d}"


def _registrations(rng: random.Random, shape: Shape, start: datetime) -> Iterator[Row]:
    for n in range(shape.people):
        person_id, org, team_id = _person(n, shape)
        when = start + timedelta(days=rng.uniform(-30, 25))
        event = Registered(
            event_id=f"reg-{n}",
            type="registered",
            ts=when.isoformat(),
            person_id=person_id,
            org=org,
            team_id=team_id,
        )
        yield event_row(event, 0, n)


def _shift_batches(
    rng: random.Random,
    shape: Shape,
    sites: list[Site],
    scale: int,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
) -> Iterator[dict[str, list[Row]]]:
    """Every person's shifts, about `scale` in all, in batches. 3% of shifts are first
    stored still open (auto, credited to MAX) and closed in the next batch: a diff."""
    slots = int((end - start) / SLOT)
    per_person = scale / shape.people
    rows: dict[str, list[Row]] = {"shifts": [], "checkouts": []}
    closing: list[Row] = []
    for n in range(shape.people):
        person_id, org, team_id = _person(n, shape)
        home = sites[rng.randrange(len(sites))]
        role = rng.choice(ROLES)
        count = min(slots, int(per_person) + (rng.random() < per_person % 1))
        chosen = sorted(rng.sample(range(slots), count))
        next_start: datetime | None = None
        last: dict[str, int] = {}  # what the person's next shift follows, per scope key
        for i, slot in enumerate(chosen):
            slot_start = start + slot * SLOT
            begin = next_start or slot_start + timedelta(
                seconds=rng.randrange(int(SLOT.total_seconds() * 0.6))
            )
            next_start = None
            following = chosen[i + 1] if i + 1 < len(chosen) else slots + 10
            site = home if rng.random() < 0.9 else sites[rng.randrange(len(sites))]
            roll = rng.random()
            reason: CloseReason
            if following == slot + 1 and roll < 0.05:
                finish, reason = start + following * SLOT, "transfer"
                next_start = finish
            elif following >= slot + 3 and roll < 0.12:
                finish, reason = begin + MAX, "auto"
            else:
                left = slot_start + SLOT - begin
                finish, reason = begin + left * rng.uniform(0.2, 1.0), "check_out"
            if finish > end:
                finish, reason = begin + MAX, "auto"  # still on post: open, credited to MAX
            shift = Shift(
                f"{person_id}-{slot}", site.site_id, role, org, team_id, begin, finish, reason
            )
            after = step(shift, last)
            marks = bits(shift, after, zone)
            if reason == "check_out" and rng.random() < 0.03:
                opened = replace(shift, end=begin + MAX, reason="auto")
                was = bits(opened, after, zone)
                rows["shifts"].append(shift_row(person_id, opened, 1, None, was))
                closing.append(shift_row(person_id, shift, 2, opened, marks, was))
            else:
                rows["shifts"].append(shift_row(person_id, shift, 1, None, marks))
            if rng.random() < 0.005:
                orphan = Move(
                    f"{person_id}-{slot}-o",
                    "check_out",
                    finish + timedelta(minutes=rng.randint(1, 60)),
                )
                if orphan.ts <= end:
                    rows["checkouts"].append(checkout_row(person_id, orphan, True, 1))
        if len(rows["shifts"]) >= BATCH:
            yield rows
            rows = {"shifts": closing, "checkouts": []}
            closing = []
    rows["shifts"] += closing
    yield rows


def _batched(rows: Iterator[Row]) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


KINDS_TIMED = ("national", "city", "district", "site", "org", "role", "team", "combined")


def time_queries(
    data_dir: Path, cutoffs: int, verify: int, seed: int, zone: ZoneInfo
) -> dict[str, Any]:
    """Time `metrics` for every kind at `cutoffs` random cutoffs of the month; check
    `verify` of them against metrics_brute_at. Prints p50/p95 per kind."""
    info: dict[str, Any] = json.loads((data_dir / "bench.json").read_text())
    built = info["built"]
    lock_embedded(data_dir)
    url = f"chdb://{(data_dir / 'store').resolve()}"
    client = connect(url, "muster")
    migrate(client)
    settle(client, say=_say)  # a store built before settled coverage, or changed since
    reader = helped_reader(client, url, "muster")
    rng = random.Random(seed + 1)
    start, end = datetime.fromisoformat(built["start"]), datetime.fromisoformat(built["end"])
    shape = Shape()
    sites = _sites(random.Random(0), shape)
    warm_up(reader, zone)  # as a worker does before it answers (sinks/queries.py)
    timings: dict[str, list[float]] = {}
    viewed: dict[str, list[float]] = {}
    asked: list[tuple[datetime, Scope]] = []
    for kind in KINDS_TIMED:
        for _ in range(cutoffs):
            at = start + (end - start) * rng.random()
            scope = _scope(rng, kind, sites, shape)
            t0 = time.perf_counter()
            metrics(reader, at, zone, scope)
            timings.setdefault(kind, []).append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            metrics(reader, at, zone, scope, view="metrics_at")
            viewed.setdefault(kind, []).append(time.perf_counter() - t0)
            asked.append((at, scope))
    report = {
        kind: {
            **_percentiles_ms(t),
            "n": len(t),
        }
        for kind, t in timings.items()
    }
    view_report = {kind: _percentiles_ms(t) for kind, t in viewed.items()}
    for kind, r in report.items():
        v = view_report[kind]
        _say(
            f"{kind:<9} p50 {r['p50_ms']:7.1f} ms   p95 {r['p95_ms']:7.1f} ms   ({r['n']} cutoffs)"
            f"   metrics_at view: p50 {v['p50_ms']:7.1f} ms   p95 {v['p95_ms']:7.1f} ms"
        )
    checked = []
    for at, scope in rng.sample(asked, min(verify, len(asked))):
        t0 = time.perf_counter()
        brute = metrics(reader, at, zone, scope, view="metrics_brute_at")
        fast = metrics(reader, at, zone, scope)
        same = all(
            abs(fast[k] - v) <= 1e-6 if isinstance(v, float) else fast[k] == v
            for k, v in brute.items()
        )
        checked.append({"at": at.isoformat(), "scope": _plain(scope), "equal": same})
        verdict = "equal" if same else "DIFFERENT"
        took = time.perf_counter() - t0
        _say(f"checked against a full re-read ({took:.1f} s): {verdict} {_plain(scope)} at {at}")
        if not same:
            _say(f"  rollups {fast}\n  brute   {brute}")
    info["timings"] = report
    info["view_timings"] = view_report
    info["checked"] = checked
    info["wall"] = time_wall(client, [at for at, _ in asked[:cutoffs]], zone)
    (data_dir / "bench.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
    return info


def time_wall(client: Client, cutoffs: list[datetime], zone: ZoneInfo) -> dict[str, Any]:
    """Store time of one refresh of the command-centre wall at each cutoff: every query the
    dashboard sends, expanded as Grafana and its ClickHouse plugin do for the wall's time
    range (local midnight to the cutoff over 1,000 points, the interval rounded as
    Grafana rounds it: under a minute before 12:30, a minute after), run one after another.
    Each result is taken as the Native bytes the plugin decodes, not decoded here: the time
    is the store's. Prints the median per panel and the total."""
    board = wall(str(zone))
    variables, queries = variable_queries(board), refresh_queries(board)
    titles = [f"${name}" for name, _ in variables] + [title for title, _ in queries]
    per_panel: dict[str, list[float]] = {title: [] for title in titles}
    totals = []
    for at in cutoffs:
        midnight = datetime.combine(at.astimezone(zone).date(), datetime.min.time(), zone)
        interval = grafana_interval(midnight, at, 1000)
        ctx = Context(midnight, at, interval, {"tz": str(zone)})
        total = 0.0
        for name, sql in variables:  # first, as Grafana does; each takes its first value
            t0 = time.perf_counter()
            ctx.variables[name] = str(client.query(expand(sql, ctx)).result_rows[0][0])
            took = time.perf_counter() - t0
            per_panel[f"${name}"].append(took)
            total += took
        for title, sql in queries:
            t0 = time.perf_counter()
            client.raw_query(expand(sql, ctx), fmt="Native")
            took = time.perf_counter() - t0
            per_panel[title].append(took)
            total += took
        totals.append(total)
    panels = {t: round(_pct(v, 50) * 1000, 1) for t, v in per_panel.items()}
    report: dict[str, Any] = {
        "p50_s": round(_pct(totals, 50), 3),
        "p95_s": round(_pct(totals, 95), 3),
        "n": len(totals),
        "panels_p50_ms": panels,
    }
    for title, ms in panels.items():
        _say(f"wall  {ms:8.1f} ms  {title}")
    _say(
        f"wall refresh: p50 {report['p50_s']:.3f} s  p95 {report['p95_s']:.3f} s "
        f"({len(totals)} cutoffs)"
    )
    return report


def _scope(rng: random.Random, kind: str, sites: list[Site], shape: Shape) -> Scope:
    site = sites[rng.randrange(len(sites))]
    _, org, team = _person(rng.randrange(shape.people), shape)
    return {
        "national": Scope(),
        "city": Scope(city=site.city),
        "district": Scope(district=site.district),
        "site": Scope(site_id=site.site_id),
        "org": Scope(org=org),
        "role": Scope(role=rng.choice(ROLES)),
        "team": Scope(team_id=team),
        "combined": Scope(district=site.district, org=org),
    }[kind]


def _plain(scope: Scope) -> dict[str, str]:
    return {k: v for k, v in scope.__dict__.items() if v}


def _percentiles_ms(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(seconds, 50) * 1000, 1),
        "p95_ms": round(_pct(seconds, 95) * 1000, 1),
    }


def _pct(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]
