"""The Shanghai Youth League bulletin of 2022-03-15 19:00 (seed 002), as a scenario.

Fifteen days of one city's deployment, built so that SPEC §4 at the bulletin's cutoff gives
the published figures exactly: 招募志愿者 45,018 名, 当日上岗 9,965 人, 累计上岗 43,538 人、
84,738 人次, 上岗总时长 52.5 万余小时. Delivered the way site apps deliver: 3% up to 48 h late,
1% twice, 0.1% garbled copies beside the good record; with registrations, check-ins and
check-outs after the cutoff, so that the cutoff matters.

Each person's stints ("duties") are kept apart in time (next stint starts after the last one
ended, auto-closes included), so the shifts SPEC §3 derives are known here by construction;
`tests/streams/test_shanghai.py` checks them against the independent reference anyway.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from streams.sim.simulator import (
    ORGS,
    Deliveries,
    Plan,
    Record,
    check_in,
    check_in_hour,
    check_out,
    make_sites,
    registered,
)

ZONE = ZoneInfo("Asia/Shanghai")
CUTOFF = datetime(2022, 3, 15, 19, tzinfo=ZONE)
FIRST_DAY = datetime(2022, 3, 1, tzinfo=ZONE)
LAST_DAY = 15  # day n is 2022-03-n; the cutoff falls on the last
MAX_SHIFT = timedelta(hours=12)
PUBLISHED = {
    "recruited": 45_018,
    "on_post_today": 9_965,
    "cumulative_people": 43_538,
    "person_times": 84_738,
}
SERVICE_SECONDS = 525_417 * 3600 + 1_234  # 上岗总时长 52.5 万余小时
SITES = 800
LATE_RECRUITS = 412  # registered after the cutoff
TRANSFER, MISSED, NIGHT, DOUBLE_TAP = 0.03, 0.05, 0.08, 0.004


@dataclass
class Person:
    n: int
    org: str
    team: str | None
    site: str
    role: str

    @property
    def person_id(self) -> str:
        return f"P{self.n:07d}"


@dataclass
class Duty:
    """One stint: a check-in, perhaps a transfer to `moved_to` at `start + moved`, and a
    check-out at `start + length` unless `missed` (then SPEC §3 rule 4 closes it after MAX)."""

    person: Person
    tag: str
    start: datetime
    length: timedelta
    missed: bool = False
    moved: timedelta | None = None
    moved_to: str | None = None
    adjustable: bool = False  # may lengthen or shorten to land the published hours

    @property
    def end(self) -> datetime:
        return self.start + MAX_SHIFT if self.missed else self.start + self.length

    def seconds_at(self, at: datetime) -> int:
        """SPEC §4 hours of this stint's shifts at `at`, in seconds (its pieces add up)."""
        if self.start > at:
            return 0
        return int((min(self.end, at) - self.start).total_seconds())


def day(n: int, hours: float = 0) -> datetime:
    return FIRST_DAY + timedelta(days=n - 1, seconds=round(hours * 3600))


def generate(seed: int = 2022) -> list[Record]:
    """Every record of the scenario, in delivery order."""
    rng = random.Random(seed)
    plan = Plan(late=0.03, late_hours=48, resend=0.01, malformed=0.001, zone=ZONE)
    out = Deliveries(plan, rng)
    end = day(LAST_DAY + 1)
    sites = make_sites(out, rng, SITES, "上海市", ZONE, day(0), FIRST_DAY, end)
    recruited = PUBLISHED["recruited"]
    people = [_person(rng, n, sites) for n in range(recruited + LATE_RECRUITS)]

    order = rng.sample(range(recruited), recruited)
    deployed = order[: PUBLISHED["cumulative_people"]]
    on_today = set(deployed[: PUBLISHED["on_post_today"]])
    idle = order[PUBLISHED["cumulative_people"] :]
    idle_set = set(idle)  # looked up once per person
    shifts = dict.fromkeys(deployed, 1)
    for _ in range(PUBLISHED["person_times"] - len(deployed)):
        n = rng.choice(deployed)
        while shifts[n] >= 9:
            n = rng.choice(deployed)
        shifts[n] += 1

    duties: list[Duty] = []
    for n in deployed:
        duties += _duties(rng, people[n], shifts[n], n in on_today, sites)
    _land_hours(duties)
    by_person: dict[int, list[Duty]] = {}
    for duty in duties:
        by_person.setdefault(duty.person.n, []).append(duty)

    for n, person in enumerate(people):
        mine = by_person.get(n, [])
        if n >= recruited:
            joined = CUTOFF + timedelta(seconds=rng.randint(1, 4 * 3600))
        elif mine:
            first = min(d.start for d in mine)
            joined = first - timedelta(hours=rng.uniform(1, 24 * 4))
        elif n == idle[0]:
            joined = CUTOFF  # `ts <= T` counts
        else:
            joined = CUTOFF - timedelta(hours=rng.uniform(1 / 3600, 24 * 17))
        _register(out, rng, person, joined)
        if (n >= recruited or n in idle_set) and rng.random() < 0.35:
            start = max(joined, CUTOFF) + timedelta(seconds=rng.randint(60, 3 * 3600))
            mine = [*mine, Duty(person, "d15e", start, timedelta(hours=rng.uniform(2, 4)))]
        elif n in on_today and mine[-1].start.day == LAST_DAY:
            last = mine[-1]
            if (
                not last.missed
                and last.end < CUTOFF - timedelta(minutes=30)
                and rng.random() < 0.15
            ):
                start = CUTOFF + timedelta(seconds=rng.randint(1, 2 * 3600))
                mine = [*mine, Duty(person, "d15e", start, timedelta(hours=rng.uniform(1, 3)))]
        for duty in mine:
            _emit(out, rng, duty)
    return sorted(out.records)


def _person(rng: random.Random, n: int, sites: list[dict[str, object]]) -> Person:
    squad = n // 10  # ten-person squads (十人小队); one in five works unteamed
    org = random.Random(squad).choices(list(ORGS), list(ORGS.values()))[0]
    site = sites[rng.randrange(len(sites))]
    requirements = site["requirements"]
    assert isinstance(requirements, dict)
    role = rng.choice(list(requirements) or ["guide"])
    return Person(n, org, f"T{squad:05d}" if squad % 5 else None, str(site["site_id"]), role)


def _duties(
    rng: random.Random, person: Person, shifts: int, on_today: bool, sites: list[dict[str, object]]
) -> list[Duty]:
    """`shifts` shifts starting by the cutoff; for `on_today` one of them reaches past midnight
    of the last day (a day stint on it, or a night stint from the day before)."""
    sizes = []
    left = shifts - on_today
    while left:
        size = 2 if left >= 2 and rng.random() < TRANSFER else 1
        sizes.append(size)
        left -= size
    overnight = on_today and rng.random() < 0.1
    last_free = LAST_DAY - 1 - overnight if on_today else LAST_DAY - 1
    days = sorted(rng.sample(range(1, last_free + 1), len(sizes)))
    duties = []
    for i, (d, size) in enumerate(zip(days, sizes, strict=True)):
        next_day = days[i + 1] if i + 1 < len(days) else None
        night_ok = next_day != d + 1 and d != LAST_DAY - 1
        duty = _stint(rng, person, d, night=night_ok and rng.random() < NIGHT)
        if size == 2:
            duty.missed = False
            duty.moved = timedelta(
                seconds=round(duty.length.total_seconds() * rng.uniform(0.25, 0.75))
            )
            duty.moved_to = str(sites[rng.randrange(len(sites))]["site_id"])
            duty.adjustable = False
        if d == LAST_DAY - 1 and duty.start.hour >= 11:
            duty.missed = False  # an auto-close would reach past midnight into "today"
        duties.append(duty)
    if on_today:
        if overnight:
            duties.append(_stint(rng, person, LAST_DAY - 1, night=True))
        else:
            duties.append(_today(rng, person))
    return duties


def _stint(rng: random.Random, person: Person, d: int, night: bool) -> Duty:
    if night:  # hotels and hotlines: 19:00–22:00 in, 6–10 h
        start = day(d, rng.uniform(19, 22))
        return Duty(person, f"d{d:02d}", start, _hours(rng, 6, 10), rng.random() < MISSED)
    hour = check_in_hour(rng, 0.85, (5.5, 17))
    start = day(d, hour)
    length = _hours(rng, 2, min(10.5, 23 - hour))  # out by 23:00
    missed = rng.random() < MISSED
    return Duty(person, f"d{d:02d}", start, length, missed, adjustable=not missed)


def _today(rng: random.Random, person: Person) -> Duty:
    """A stint on the bulletin's day that starts by 19:00 (a few exactly at 19:00:00)."""
    if rng.random() < 0.003:
        start = CUTOFF
    else:
        start = min(day(LAST_DAY, check_in_hour(rng, 0.8, (5.5, 19))), CUTOFF)
    return Duty(person, f"d{LAST_DAY}", start, _hours(rng, 2, 9), rng.random() < MISSED)


def _hours(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(seconds=round(rng.uniform(low, high) * 3600))


def _land_hours(duties: list[Duty]) -> None:
    """Lengthen or shorten finished day stints by whole seconds, within bounds, until the
    hours at the cutoff are exactly SERVICE_SECONDS."""
    gap = SERVICE_SECONDS - sum(d.seconds_at(CUTOFF) for d in duties)
    movable = [d for d in duties if d.adjustable and d.end <= CUTOFF - timedelta(hours=1)]
    while gap:
        step = max(1, abs(gap) // len(movable))
        moved = 0
        for duty in movable:
            if not gap:
                break
            delta = min(step, abs(gap)) * (1 if gap > 0 else -1)
            length = duty.length + timedelta(seconds=delta)
            last_out = duty.start.replace(hour=23, minute=0, second=0)
            if (
                timedelta(hours=1) <= length <= timedelta(hours=11)
                and duty.start + length <= last_out
            ):
                duty.length = length
                gap -= delta
                moved += 1
        if not moved:
            raise ValueError(f"cannot land the published hours: {gap} s left over")


def _register(out: Deliveries, rng: random.Random, person: Person, joined: datetime) -> None:
    ts = _stamp(rng, joined.replace(microsecond=joined.microsecond // 1000 * 1000))
    event = registered(f"{person.person_id}-reg", ts, person.person_id, person.org, person.team)
    out.emit("events", person.person_id, event, joined)


def _emit(out: Deliveries, rng: random.Random, duty: Duty) -> None:
    person = duty.person
    tag = f"{person.person_id}-{duty.tag}"
    arrived = check_in(
        f"{tag}-in",
        _stamp(rng, duty.start),
        person.person_id,
        person.site,
        person.role,
        person.org,
        person.team,
    )
    out.emit("events", person.person_id, arrived, duty.start)
    site = person.site
    if duty.moved is not None and duty.moved_to:
        site, moved_at = duty.moved_to, duty.start + duty.moved
        moved = dict(arrived, event_id=f"{tag}-xfer", site_id=site)
        out.emit("events", person.person_id, dict(moved, ts=_stamp(rng, moved_at)), moved_at)
    if duty.missed:
        return
    left = check_out(f"{tag}-out", _stamp(rng, duty.end), person.person_id, site)
    out.emit("events", person.person_id, left, duty.end)
    if rng.random() < DOUBLE_TAP:  # a second tap on the kiosk: an orphan check-out
        again = duty.end + timedelta(seconds=rng.randint(5, 120))
        tap = dict(left, event_id=f"{tag}-out2")
        out.emit("events", person.person_id, dict(tap, ts=_stamp(rng, again)), again)


def _stamp(rng: random.Random, ts: datetime) -> str:
    """RFC 3339 as site apps write it: mostly local +08:00, some in UTC with `Z`."""
    spec = "milliseconds" if ts.microsecond else "seconds"
    if rng.random() < 0.1:
        return ts.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")
    return ts.astimezone(ZONE).isoformat(timespec=spec)
