"""A scenario generator: realistic days of a city's volunteer deployment, into the input topics.

Sites with per-role minimums, ten-person squads (十人小队) from unions, the Youth League and
others, registrations, shifts peaking at shift change (06:00–08:00), missed check-outs,
transfers between sites, and site apps that deliver late, twice, or garbled.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from streams.settings import Settings

DISTRICTS = (
    "浦东新区",
    "黄浦区",
    "静安区",
    "徐汇区",
    "长宁区",
    "普陀区",
    "虹口区",
    "杨浦区",
    "闵行区",
    "宝山区",
    "嘉定区",
    "金山区",
    "松江区",
    "青浦区",
    "奉贤区",
    "崇明区",
)
ORGS = {
    "youth_league": 40,
    "union": 20,
    "party": 15,
    "womens_federation": 10,
    "social_org": 10,
    "government": 5,
}
KIND_NAMES = {
    "testing_site": "核酸采样点",
    "checkpoint": "卡口",
    "quarantine_hotel": "隔离酒店",
    "hotline": "热线",
}
KINDS = {
    "testing_site": (70, {"guide": (1, 2), "marshal": (1, 2), "registrar": (1, 3)}),
    "checkpoint": (15, {"marshal": (1, 2), "guide": (0, 1)}),
    "quarantine_hotel": (10, {"supplies": (1, 2), "counsellor": (0, 1), "disinfector": (0, 1)}),
    "hotline": (5, {"counsellor": (1, 2)}),
}


@dataclass
class Plan:
    people: int = 4500
    sites: int = 80
    days: int = 2
    end: datetime = field(default_factory=lambda: datetime.now(UTC))
    seed: int = 7
    city: str = "上海市"
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    work_share: float = 0.3
    missed_checkout: float = 0.05
    transfer: float = 0.03
    late: float = 0.03
    late_hours: float = 48
    resend: float = 0.01
    malformed: float = 0.001
    live_hours: float = 0  # also the shifts of the next hours after `end`, delivered live

    @property
    def until(self) -> datetime:
        """Events happen up to here: `end`, plus the live hours."""
        return self.end + timedelta(hours=self.live_hours)


@dataclass(order=True)
class Record:
    arrival: datetime
    topic: str = field(compare=False)
    key: bytes = field(compare=False)
    value: bytes = field(compare=False)


SCENARIOS = ("city", "shanghai-2022-03-15")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--people", type=int, default=4500, help="volunteers (default 4500)")
    parser.add_argument("--sites", type=int, default=80, help="sites (default 80)")
    parser.add_argument("--days", type=int, default=2, help="days up to now (default 2)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the city scenario")
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="city",
        help="city: --people/--sites/--days up to now (default); shanghai-2022-03-15: the "
        "seed 002 bulletin (45,018 recruited … 52.5万余小时 at 2022-03-15T19:00+08:00)",
    )
    parser.add_argument(
        "--rate", type=float, default=2000, help="records per second, 0 = unthrottled"
    )
    parser.add_argument(
        "--live-hours",
        type=float,
        default=24,
        help="after the days up to now, keep delivering the city's next hours as they happen "
        "(default 24; 0 = stop after the history)",
    )


class Deliveries:
    """Collects records with their delivery time: mostly on time, some late, some twice."""

    def __init__(self, plan: Plan, rng: random.Random) -> None:
        self.plan, self.rng, self.records = plan, rng, list[Record]()

    def emit(self, topic: str, key: str, event: Mapping[str, object], ts: datetime) -> None:
        value = json.dumps(event, ensure_ascii=False).encode()
        delay = timedelta(seconds=self.rng.uniform(0, 30))
        if self.rng.random() < self.plan.late:
            delay = timedelta(hours=self.rng.uniform(0.1, self.plan.late_hours))
        self.records.append(Record(ts + delay, topic, key.encode(), value))
        if self.rng.random() < self.plan.resend:
            again = ts + delay + timedelta(minutes=self.rng.uniform(1, 600))
            self.records.append(Record(again, topic, key.encode(), value))
        if self.rng.random() < self.plan.malformed:  # a garbled copy; the good one still arrives
            self.records.append(Record(ts + delay, topic, key.encode(), self._garble(event)))

    def _garble(self, event: Mapping[str, object]) -> bytes:
        broken = dict(event)
        choice = self.rng.randrange(4)
        if choice == 0:
            broken.pop("event_id")
        elif choice == 1:
            broken["ts"] = str(broken["ts"])[:19]  # offset dropped
        elif choice == 2:
            return b'{"type": "check_in", truncated'
        else:
            broken["type"] = "clock_in"
        return json.dumps(broken, ensure_ascii=False).encode()


def rfc3339(ts: datetime, zone: ZoneInfo) -> str:
    return ts.astimezone(zone).isoformat(timespec="seconds")


def registered(event_id: str, ts: str, person: str, org: str, team: str | None) -> dict[str, str]:
    event = {"event_id": event_id, "type": "registered", "ts": ts, "person_id": person, "org": org}
    if team:
        event["team_id"] = team
    return event


def check_in(
    event_id: str, ts: str, person: str, site: str, role: str, org: str, team: str | None
) -> dict[str, str]:
    event = {
        "event_id": event_id,
        "type": "check_in",
        "ts": ts,
        "person_id": person,
        "site_id": site,
        "role": role,
        "org": org,
    }
    if team:
        event["team_id"] = team
    return event


def check_out(event_id: str, ts: str, person: str, site: str) -> dict[str, str]:
    return {
        "event_id": event_id,
        "type": "check_out",
        "ts": ts,
        "person_id": person,
        "site_id": site,
    }


def make_sites(
    out: Deliveries,
    rng: random.Random,
    count: int,
    city: str,
    zone: ZoneInfo,
    opened: datetime,
    first_day: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    """`count` sites opened at `opened`; one in twenty later raises a requirement or closes."""
    sites: list[dict[str, Any]] = []
    for n in range(count):
        kind = rng.choices(list(KINDS), [w for w, _ in KINDS.values()])[0]
        district = DISTRICTS[n % len(DISTRICTS)]
        street = f"{district[:2]}第{rng.randint(1, 8)}街道"
        need = {r: rng.randint(*span) for r, span in KINDS[kind][1].items()}
        site: dict[str, Any] = {
            "event_id": f"site-{n:05d}-v1",
            "type": "site_upserted",
            "ts": rfc3339(opened, zone),
            "site_id": f"S{n:05d}",
            "name": f"{street}{KIND_NAMES[kind]}{n}号",
            "city": city,
            "district": district,
            "street": street,
            "community": f"{street}第{n % 5 + 1}居委",
            "kind": kind,
            "requirements": need,
            "active": True,
            "lat": round(31.0 + rng.random(), 5),
            "lon": round(121.0 + rng.random(), 5),
        }
        sites.append(site)
        out.emit("sites", site["site_id"], site, opened)
        if rng.random() < 0.05:  # a requirement raised, or a site closed, mid-scenario
            when = first_day + timedelta(
                hours=rng.uniform(6, (end - first_day).total_seconds() / 3600)
            )
            if when < end:
                update = dict(site, event_id=f"site-{n:05d}-v2", ts=rfc3339(when, zone))
                if rng.random() < 0.5:
                    update["active"] = False
                else:
                    update["requirements"] = {r: m + 1 for r, m in need.items()}
                out.emit("sites", site["site_id"], update, when)

    return sites


def generate(plan: Plan) -> list[Record]:
    """The whole scenario, in delivery order."""
    rng = random.Random(plan.seed)
    out = Deliveries(plan, rng)
    zone = plan.zone
    local_end = plan.end.astimezone(zone)
    first_day = (local_end - timedelta(days=plan.days - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    opened = first_day - timedelta(days=1)

    sites = make_sites(out, rng, plan.sites, plan.city, zone, opened, first_day, plan.end)
    days = plan.days + math.ceil(plan.live_hours / 24)

    for n in range(plan.people):
        person = f"P{n:07d}"
        squad = n // 10
        org = random.Random(squad).choices(list(ORGS), list(ORGS.values()))[0]
        team = f"T{squad:05d}" if squad % 5 else None  # one squad in five works unteamed
        home = sites[rng.randrange(len(sites))]
        roles = list(home["requirements"]) or ["guide"]
        role = rng.choice(roles)
        joined = opened - timedelta(hours=rng.uniform(0, 48))
        reg = registered(f"{person}-reg", rfc3339(joined, zone), person, org, team)
        out.emit("events", person, reg, joined)
        for day in range(days):
            if rng.random() >= plan.work_share:
                continue
            _one_shift(
                out,
                rng,
                plan,
                person,
                org,
                team,
                home,
                role,
                sites,
                first_day + timedelta(days=day),
                f"{person}-d{day}",
            )
    return sorted(out.records)


def check_in_hour(rng: random.Random, noon_until: float, rest: tuple[float, float]) -> float:
    """Hour of a check-in: 60% at shift change (06–08), up to `noon_until` around noon
    (12–14), the rest spread over `rest`."""
    peak = rng.random()
    if peak < 0.6:
        return rng.uniform(6, 8)
    if peak < noon_until:
        return rng.uniform(12, 14)
    return rng.uniform(*rest)


def _one_shift(
    out: Deliveries,
    rng: random.Random,
    plan: Plan,
    person: str,
    org: str,
    team: str | None,
    home: dict[str, object],
    role: str,
    sites: list[dict[str, object]],
    day: datetime,
    tag: str,
) -> None:
    hour = check_in_hour(rng, 0.85, (8, 20))
    start = day + timedelta(hours=hour)
    end = start + timedelta(hours=rng.uniform(2, 6))
    if start >= plan.until:
        return
    site_id = str(home["site_id"])
    arrived = check_in(f"{tag}-in", rfc3339(start, plan.zone), person, site_id, role, org, team)
    out.emit("events", person, arrived, start)
    if rng.random() < plan.transfer:  # sent to another site mid-shift
        moved = start + (end - start) / 2
        if moved < plan.until:
            site_id = str(sites[rng.randrange(len(sites))]["site_id"])
            out.emit(
                "events",
                person,
                dict(
                    arrived, event_id=f"{tag}-xfer", site_id=site_id, ts=rfc3339(moved, plan.zone)
                ),
                moved,
            )
    if rng.random() < plan.missed_checkout or end >= plan.until:
        return
    out.emit(
        "events", person, check_out(f"{tag}-out", rfc3339(end, plan.zone), person, site_id), end
    )


def _producer(settings: Settings) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=20,
        batch_size=256 * 1024,
        acks=1,
        enable_idempotence=False,  # acks=1; says so rather than warning on every start
        client_id="muster-simulator",
        **settings.kafka_options(),
    )


def produce(
    settings: Settings, records: list[Record], rate: float, label: str = "simulate"
) -> None:
    """Send `records` in order, printing progress once a second."""
    producer = _producer(settings)
    started = last = time.monotonic()
    for n, record in enumerate(records, 1):
        producer.send(settings.topic(record.topic), key=record.key, value=record.value)
        now = time.monotonic()
        if rate > 0 and n / rate > now - started:
            time.sleep(n / rate - (now - started))
        if now - last >= 1 or n == len(records):
            last = now
            print(
                f"{label}: {n:,}/{len(records):,} records sent "
                f"({n / max(now - started, 1e-9):,.0f}/s)",
                file=sys.stderr,
                flush=True,
            )
    producer.flush()
    producer.close()


def produce_live(
    settings: Settings,
    records: list[Record],
    label: str = "simulate",
    stop: threading.Event | None = None,
) -> None:
    """Send each record when its delivery time comes (wall clock), saying so once a minute
    and before every quiet spell; return early once `stop` is set. How far it got is kept
    in the data directory (`Memo`), so that the next run goes on from there."""
    stop = stop or threading.Event()
    producer = _producer(settings)
    last = time.monotonic()
    memo = Memo.read(settings)
    sent_until: datetime | None = None
    try:
        for n, record in enumerate(records):
            wait = (record.arrival - datetime.now(UTC)).total_seconds()
            if wait > 0:
                producer.flush()
                sent_until = datetime.now(UTC)  # everything due by now is sent
                if memo is not None:
                    memo.save(settings, sent_until)
                if wait >= 60 or time.monotonic() - last >= 60:
                    last = time.monotonic()
                    nxt = record.arrival.astimezone(settings.zone)
                    print(
                        f"{label}: live: {n:,}/{len(records):,} records sent; "
                        f"next at {nxt:%Y-%m-%d %H:%M:%S}",
                        file=sys.stderr,
                        flush=True,
                    )
                if stop.wait(wait):
                    return
            producer.send(settings.topic(record.topic), key=record.key, value=record.value)
            sent_until = record.arrival
        print(f"{label}: live: all {len(records):,} records sent", file=sys.stderr, flush=True)
    finally:
        producer.close(timeout=5)
        if memo is not None and sent_until is not None:
            memo.save(settings, sent_until)


@dataclass
class Memo:
    """Which city the simulator sends into this data directory and how far it got
    (`simulation.json`): a second `muster up` with the same options goes on with the same
    city from there, instead of sending its history again."""

    options: dict[str, Any]
    end: datetime  # the plan's end: when the city's first run started
    sent_until: datetime

    FILE = "simulation.json"

    @classmethod
    def read(cls, settings: Settings) -> Memo | None:
        try:
            data = json.loads((settings.data_dir / cls.FILE).read_text())
            return cls(
                data["options"],
                datetime.fromisoformat(data["end"]),
                datetime.fromisoformat(data["sent_until"]),
            )
        except (OSError, ValueError, KeyError):
            return None

    def save(self, settings: Settings, sent_until: datetime) -> None:
        self.sent_until = max(self.sent_until, sent_until)
        path = settings.data_dir / self.FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "options": self.options,
            "end": self.end.isoformat(),
            "sent_until": self.sent_until.isoformat(),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, ensure_ascii=False, indent=1))
        tmp.replace(path)


def run_simulation(settings: Settings, args: argparse.Namespace) -> list[Record]:
    """Send the scenario's history (delivered up to now) at `--rate`; return the records still
    to be delivered live, in order (none for the Shanghai scenario: it is all history). When
    this data directory already got this city (`Memo`), only what it has not got is sent."""
    options: dict[str, Any] = {"scenario": args.scenario, "tz": settings.zone.key}
    if args.scenario != "shanghai-2022-03-15":
        options |= {"people": args.people, "sites": args.sites, "days": args.days}
        options |= {"seed": args.seed, "live_hours": args.live_hours}
    memo = Memo.read(settings)
    now = datetime.now(UTC)
    if memo is None or memo.options != options:
        memo = Memo(options, now, datetime.min.replace(tzinfo=UTC))
        resumed = False
    else:
        resumed = True
    if args.scenario == "shanghai-2022-03-15":
        from streams.sim import shanghai

        records = shanghai.generate()
        what = (
            f"the Shanghai bulletin of {shanghai.CUTOFF.isoformat()} (seed 002), "
            f"{shanghai.FIRST_DAY:%Y-%m-%d} to {shanghai.CUTOFF:%Y-%m-%d}"
        )
        if settings.zone.key != shanghai.ZONE.key:
            print(
                f"simulate: note: MUSTER_TZ={settings.zone.key}; the published 当日上岗 figure "
                f"counts from midnight in {shanghai.ZONE.key}",
                file=sys.stderr,
            )
    else:
        plan = Plan(
            people=args.people,
            sites=args.sites,
            days=args.days,
            end=memo.end,
            seed=args.seed,
            zone=settings.zone,
            live_hours=args.live_hours,
        )
        records = generate(plan)
        what = f"{plan.people:,} volunteers, {plan.sites:,} sites, {plan.days} day(s) up to now"
        if plan.live_hours:
            what += f" and the next {plan.live_hours:g} h live"
    history = [r for r in records if memo.sent_until < r.arrival <= now]
    if resumed:
        start = memo.end.astimezone(settings.zone)
        print(
            f"simulate: going on with the city first started {start:%Y-%m-%d %H:%M} "
            f"(kept in {settings.data_dir / Memo.FILE}): {len(history):,} records due since "
            f"{memo.sent_until.astimezone(settings.zone):%Y-%m-%d %H:%M:%S}, then live",
            file=sys.stderr,
            flush=True,
        )
    else:
        print(f"simulate: {what}: {len(records):,} records", file=sys.stderr, flush=True)
    produce(settings, history, args.rate)
    memo.save(settings, now)
    return [r for r in records if r.arrival > now]
