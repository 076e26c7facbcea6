"""The live site state (streams/core/live.py) against the reference's SPEC §6, at every moment.

Randomized cities: records are delivered late, out of order and twice while a clock moves
on; after every delivery and every tick the live status of every site must equal SPEC §6
computed from the records delivered so far, and the open alerts must be exactly the active
uncovered sites.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas.errors import InvalidEvent
from schemas.events import SiteUpserted, parse_record
from streams.core.live import SiteLive, diffs_by_site, site_version
from streams.core.person import PersonState, apply
from streams.core.rows import to_micros
from tests import reference
from tests.scenarios import MAX, cin, cout, site

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(ZONE).isoformat()


class LiveCity:
    """Folds records through the person core and the site state, as the agents do."""

    def __init__(self) -> None:
        self.people: dict[str, PersonState] = {}
        self.sites: dict[str, SiteLive] = {}
        self.delivered: list[tuple[str, bytes]] = []
        self.alerts: list[dict[str, Any]] = []
        self.due: dict[str, int | None] = {}
        self.offset = 0

    def site(self, sid: str) -> SiteLive:
        return self.sites.setdefault(sid, SiteLive(sid))

    def deliver(self, kind: str, value: bytes, now: datetime) -> None:
        self.run_timers(now)
        self.delivered.append((kind, value))
        self.offset += 1
        try:
            event = parse_record(value, kind, now)
        except InvalidEvent:
            return
        clock = to_micros(now)
        if isinstance(event, SiteUpserted):
            version, attrs = site_version(event, 0, self.offset)
            self.site(event.site_id).apply_version(version, attrs, clock)
            self.step(event.site_id, now)
            return
        state = self.people.setdefault(event.person_id, PersonState())
        outcome = apply(state, event, 0, self.offset, MAX)
        for sid, diffs in diffs_by_site(event.person_id, outcome.changes).items():
            self.site(sid).apply_diffs(diffs, clock)
            self.step(sid, now)

    def step(self, sid: str, now: datetime) -> None:
        self.alerts += self.site(sid).step(to_micros(now), ZONE).alerts
        self.due[sid] = self.site(sid).next_due(to_micros(now))

    def run_timers(self, now: datetime) -> None:
        """What the worker's timer does: step every site whose next moment has come."""
        clock = to_micros(now)
        for sid, due in list(self.due.items()):
            if due is not None and due <= clock:
                self.step(sid, now)

    def mismatches(self, now: datetime) -> list[Any]:
        ref = reference.build(self.delivered, MAX, now)
        want = reference.site_statuses(ref, now, ZONE)
        got = {
            sid: status
            for sid, s in self.sites.items()
            if (status := s.status(to_micros(now), ZONE)) is not None
        }
        bad: list[Any] = [
            (sid, got.get(sid), want.get(sid)) for sid in want if got.get(sid) != want[sid]
        ]
        bad += [(sid, got[sid], None) for sid in got.keys() - want.keys()]
        open_alerts = {sid for sid, s in self.sites.items() if s.alert is not None}
        uncovered = {sid for sid, st in want.items() if st["active"] and not st["covered"]}
        if open_alerts != uncovered:
            bad.append(("alerts", sorted(open_alerts), sorted(uncovered)))
        return bad


def random_city(rng: random.Random) -> list[tuple[datetime, str, dict[str, Any]]]:
    """(delivery time, topic, event): 4 sites, 14 people, 30 hours of shifts."""
    out: list[tuple[datetime, str, dict[str, Any]]] = []
    reqs = [{"guide": 1, "marshal": 1}, {"marshal": 0}, {"guide": 2}, {}]
    for n, req in enumerate(reqs):
        sid = f"S{n}"
        born = START + timedelta(minutes=rng.randint(0, 120))
        out.append((born, "sites", site(sid, iso(born), f"{sid}v1", requirements=req)))
        for v in range(rng.randint(0, 2)):
            when = START + timedelta(hours=rng.uniform(1, 28))
            changed = site(
                sid,
                iso(when),
                f"{sid}v{v + 2}",
                requirements=rng.choice(reqs),
                active=rng.random() > 0.3,
            )
            # Some versions arrive before they are due (dated up to 10 minutes ahead).
            sent = when - timedelta(minutes=rng.uniform(0, 9)) if rng.random() < 0.3 else when
            out.append((sent, "sites", changed))
    roles = ["guide", "marshal"]
    for p in range(14):
        pid = f"P{p}"
        t = START + timedelta(hours=rng.uniform(0, 6))
        while t < START + timedelta(hours=30):
            sid = f"S{rng.randrange(len(reqs))}"
            eid = f"{pid}-{t.timestamp():.0f}"
            out.append((t, "events", cin(pid, iso(t), eid, sid=sid, role=rng.choice(roles))))
            length = timedelta(hours=rng.choice([rng.uniform(0.5, 6), 13]))  # 13 h: auto
            if rng.random() < 0.8 and length < MAX:
                out.append((t + length, "events", cout(pid, iso(t + length), eid + "x")))
            t += length + timedelta(hours=rng.uniform(-1, 5))  # sometimes a transfer
    delivered = []
    for when, kind, event in out:
        late = rng.random() < 0.15
        delay = timedelta(hours=rng.uniform(0, 4)) if late else timedelta(seconds=rng.uniform(0, 3))
        delivered.append((when + delay, kind, event))
        if rng.random() < 0.05:  # resent
            delivered.append((when + delay + timedelta(minutes=5), kind, event))
    return sorted(delivered, key=lambda d: d[0])


@pytest.mark.parametrize("seed", range(12))
def test_live_status_equals_spec_at_every_moment(seed: int) -> None:
    rng = random.Random(seed)
    city = LiveCity()
    checked = 0
    clock = START
    for when, kind, event in random_city(rng):
        while clock + timedelta(minutes=20) < when:  # time passes with no record
            clock += timedelta(minutes=rng.uniform(1, 20))
            city.run_timers(clock)
            assert city.mismatches(clock) == [], clock
            checked += 1
        clock = max(clock, when)
        city.deliver(kind, json.dumps(event, ensure_ascii=False).encode(), clock)
        if rng.random() < 0.3:
            assert city.mismatches(clock) == [], clock
            checked += 1
    assert checked > 50
    assert any(a["resolved_at"] for a in city.alerts) and any(
        not a["resolved_at"] for a in city.alerts
    )


def test_last_marshal_checking_out_opens_an_alert_at_the_check_out_time() -> None:
    city = LiveCity()
    t0 = START + timedelta(hours=8)
    city.deliver(
        "sites", json.dumps(site("S1", iso(START), "s1", requirements={"marshal": 1})).encode(), t0
    )
    assert city.alerts[-1]["opened_at"] == iso(START) and city.alerts[-1]["resolved_at"] is None
    city.deliver("events", json.dumps(cin("M", iso(t0), "m1", role="marshal")).encode(), t0)
    assert city.alerts[-1]["resolved_at"] == iso(t0)
    out = t0 + timedelta(hours=2, seconds=1.5)
    city.deliver(
        "events", json.dumps(cout("M", iso(out), "m2")).encode(), out + timedelta(seconds=1)
    )
    opened = city.alerts[-1]
    assert opened["opened_at"] == iso(out) and opened["resolved_at"] is None
    assert opened["short"] == {"marshal": 1} and opened["people"] == 0
    assert opened["alert_id"] != city.alerts[0]["alert_id"]


def test_a_shift_reaching_max_leaves_post_on_time_alone() -> None:
    city = LiveCity()
    t0 = START + timedelta(hours=1)
    city.deliver(
        "sites", json.dumps(site("S1", iso(START), "s1", requirements={"marshal": 1})).encode(), t0
    )
    city.deliver("events", json.dumps(cin("M", iso(t0), "m1", role="marshal")).encode(), t0)
    s = city.site("S1")
    assert s.next_due(to_micros(t0)) == to_micros(t0 + MAX)
    assert s.step(to_micros(t0 + MAX - timedelta(microseconds=1)), ZONE).alerts == []
    step = s.step(to_micros(t0 + MAX + timedelta(seconds=2)), ZONE)
    assert step.status is not None and step.status["people"] == 0
    assert [a["opened_at"] for a in step.alerts] == [iso(t0 + MAX)]
    assert step.on_post_by == {("marshal", "youth_league"): 0}


def test_state_survives_its_json_round_trip() -> None:
    rng = random.Random(7)
    city = LiveCity()
    for when, kind, event in random_city(rng)[:120]:
        city.deliver(kind, json.dumps(event, ensure_ascii=False).encode(), when)
    for sid, s in city.sites.items():
        again = SiteLive.from_json(sid, json.loads(json.dumps(s.to_json())))
        assert again == s


def two_days_of_day_shifts() -> list[tuple[datetime, str, dict[str, Any]]]:
    """(event time, topic, event): a site needing a marshal, registered on day 1 at 00:00,
    staffed 08:00-17:00 on day 1 and 07:30-21:30 on day 2 (a hand-over at 11:50-12:00)."""
    d1, d2 = START, START + timedelta(days=1)
    h = lambda day, hours: day + timedelta(hours=hours)  # noqa: E731
    return [
        (d1, "sites", site("S1", iso(d1), "s1", requirements={"marshal": 1})),
        (h(d1, 8), "events", cin("M1", iso(h(d1, 8)), "m1", role="marshal")),
        (h(d1, 17), "events", cout("M1", iso(h(d1, 17)), "m1x")),
        (h(d2, 7.5), "events", cin("M2", iso(h(d2, 7.5)), "m2", role="marshal")),
        (h(d2, 11 + 50 / 60), "events", cin("M3", iso(h(d2, 11 + 50 / 60)), "m3", role="marshal")),
        (h(d2, 12), "events", cout("M2", iso(h(d2, 12)), "m2x")),
        (h(d2, 21.5), "events", cout("M3", iso(h(d2, 21.5)), "m3x")),
    ]


def final(alerts: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    """Each alert as it stands after the last change published for it."""
    return {a["alert_id"]: (a["opened_at"], a["resolved_at"]) for a in alerts}


def test_a_catch_up_opens_and_resolves_every_alert_a_live_run_does() -> None:
    """A worker catching up gets a site's two days in one message: every loss and return
    of cover is an alert of its own, with the ids and times of a run that read the
    records as they happened, and of one that read them one by one after the fact (before,
    one alert stayed open from the registration on)."""
    history = two_days_of_day_shifts()
    late = START + timedelta(days=2, hours=10)
    d1, d2 = START, START + timedelta(days=1)
    want = {
        "understaffed:S1:1": (iso(d1), iso(d1 + timedelta(hours=8))),
        "understaffed:S1:2": (iso(d1 + timedelta(hours=17)), iso(d2 + timedelta(hours=7.5))),
        "understaffed:S1:3": (iso(d2 + timedelta(hours=21.5)), None),
    }

    live = LiveCity()  # each record when it happened
    for when, kind, event in history:
        live.deliver(kind, json.dumps(event).encode(), when)
    live.run_timers(late)
    assert final(live.alerts) == want

    one_by_one = LiveCity()  # each record on its own, all of them long after
    for _, kind, event in history:
        one_by_one.deliver(kind, json.dumps(event).encode(), late)
    assert final(one_by_one.alerts) == want

    # catching up: the site's version, then every shift diff in one message and one step
    s, clock = SiteLive("S1"), to_micros(late)
    version = parse_record(json.dumps(history[0][2]).encode(), "sites", late)
    assert isinstance(version, SiteUpserted)
    s.apply_version(*site_version(version, 0, 0), clock)
    alerts = s.step(clock, ZONE).alerts
    people: dict[str, PersonState] = {}
    diffs = []
    for offset, (_, kind, event) in enumerate(history[1:], start=1):
        parsed = parse_record(json.dumps(event).encode(), kind, late)
        outcome = apply(
            people.setdefault(event["person_id"], PersonState()), parsed, 0, offset, MAX
        )
        diffs += diffs_by_site(event["person_id"], outcome.changes).get("S1", [])
    s.apply_diffs(diffs, clock)
    alerts += s.step(clock, ZONE).alerts
    assert final(alerts) == want
    assert s.alert is not None and s.alert["alert_id"] == "understaffed:S1:3"
    assert [a["short"] for a in alerts if a["resolved_at"] is None] == [{"marshal": 1}] * 2


def test_a_late_event_moves_an_open_alert_to_where_cover_was_lost_again() -> None:
    """An alert opened at a shift's automatic end, which a check-in shows was covered, is
    not resolved where it opened when cover was lost again later: it moves there."""
    history = two_days_of_day_shifts()
    late = START + timedelta(days=2, hours=10)
    city = LiveCity()
    for _, kind, event in history[:4]:  # M2 on post from 07:30; 12 h later, auto
        city.deliver(kind, json.dumps(event).encode(), late)
    m2_auto = START + timedelta(days=1, hours=19.5)
    assert city.site("S1").alert["opened_us"] == to_micros(m2_auto)
    city.deliver(*history[4][1:2], json.dumps(history[4][2]).encode(), late)  # M3 from 11:50
    assert city.site("S1").alert["alert_id"] == "understaffed:S1:3"
    assert city.site("S1").alert["opened_us"] == to_micros(m2_auto + timedelta(hours=4, minutes=20))
