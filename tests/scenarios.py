"""Scenarios for tests: a hand-made edge case covering every SPEC §2–4 rule, and a driver that
folds records through the pipeline's pure core (no Kafka) into rows for the store."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from schemas.errors import InvalidEvent
from schemas.events import SiteUpserted, parse_record
from sinks.writer import prev_from_store
from streams.core.person import DEFAULT_ZONE, LATE_LIMIT, PersonState, apply
from streams.core.rows import Row, dlq_row
from streams.core.sites import apply_site

MAX = timedelta(hours=12)
CST = timezone(timedelta(hours=8))


@dataclass
class Scenario:
    """Records in delivery order: (topic kind, key, value)."""

    records: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)

    def add(self, kind: str, event: dict[str, Any], key: str | None = None) -> None:
        owner = event.get("site_id" if kind == "sites" else "person_id")
        k = key if key is not None else owner
        self.records.append((kind, None if k is None else str(k).encode(), _dump(event)))

    def raw(self, kind: str, key: str | None, value: bytes) -> None:
        self.records.append((kind, None if key is None else key.encode(), value))

    def topic_order(self) -> list[tuple[str, bytes]]:
        return [(kind, value) for kind, _, value in self.records]


def _dump(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


def t(hhmm: str, day: int = 15) -> str:
    """A local (+08:00) time on 2022-03-<day>."""
    return f"2022-03-{day:02d}T{hhmm}:00+08:00"


def at(hhmm: str, day: int = 15) -> datetime:
    return datetime.fromisoformat(t(hhmm, day)).astimezone(UTC)


def site(sid: str, ts: str, eid: str, **kw: Any) -> dict[str, Any]:
    base = {
        "event_id": eid,
        "type": "site_upserted",
        "ts": ts,
        "site_id": sid,
        "name": f"{sid} 核酸采集点",
        "city": "上海市",
        "district": "浦东新区",
        "street": "花木街道",
        "community": "联洋居委",
        "kind": "testing_site",
        "requirements": {"guide": 1, "registrar": 1},
    }
    return base | kw


def cin(
    pid: str,
    ts: str,
    eid: str,
    sid: str = "S1",
    role: str = "guide",
    org: str = "youth_league",
    team: str | None = "T1",
) -> dict[str, Any]:
    e = {
        "event_id": eid,
        "type": "check_in",
        "ts": ts,
        "person_id": pid,
        "site_id": sid,
        "role": role,
        "org": org,
    }
    if team:
        e["team_id"] = team
    return e


def cout(pid: str, ts: str, eid: str) -> dict[str, Any]:
    return {"event_id": eid, "type": "check_out", "ts": ts, "person_id": pid}


def within_contract(events: list[dict[str, Any]]) -> Scenario:
    """`events` delivered in this order, keeping the contract: each at most 72 h older than
    its person's newest so far (the core sends older ones to the DLQ)."""
    newest: dict[str, datetime] = {}
    scenario = Scenario()
    for ev in events:
        ts = datetime.fromisoformat(ev["ts"].replace("Z", "+00:00"))
        if ts < newest.get(ev["person_id"], ts) - LATE_LIMIT:
            continue
        newest[ev["person_id"]] = max(newest.get(ev["person_id"], ts), ts)
        scenario.add("events", ev)
    return scenario


def reg(pid: str, ts: str, eid: str, org: str = "youth_league", team: str | None = "T1"):
    e = {"event_id": eid, "type": "registered", "ts": ts, "person_id": pid, "org": org}
    if team:
        e["team_id"] = team
    return e


def edge_scenario() -> Scenario:
    """Every rule of SPEC §2–4 at least once; delivered late, out of order and twice."""
    s = Scenario()
    # Sites: S1 versioned (requirement raised at 12:00), S2 in another district with no
    # positive requirement, S3 deactivated at 10:00, S4 two versions at the same ts (the
    # later in topic order wins).
    s.add("sites", site("S1", t("00:00", 14), "s1v1"))
    s.add(
        "sites",
        site(
            "S2",
            t("00:00", 14),
            "s2v1",
            district="黄浦区",
            street="外滩街道",
            community="中山居委",
            kind="checkpoint",
            requirements={"marshal": 0},
        ),
    )
    s.add(
        "sites",
        site("S3", t("00:00", 14), "s3v1", kind="quarantine_hotel", requirements={"supplies": 1}),
    )
    s.add("sites", site("S4", t("09:00"), "s4a", requirements={"guide": 5}))
    s.add("sites", site("S4", t("09:00"), "s4b", requirements={"guide": 1}))
    s.add("sites", site("S1", t("12:00"), "s1v2", requirements={"guide": 2, "registrar": 1}))
    s.add(
        "sites",
        site(
            "S3",
            t("10:00"),
            "s3v2",
            kind="quarantine_hotel",
            requirements={"supplies": 1},
            active=False,
        ),
    )
    s.add("sites", site("S1", t("12:00"), "s1v2"))  # resent: ignored
    # Registrations (one late, one duplicate, one in another org).
    for n, (p, org, team) in enumerate(
        [
            ("甲", "youth_league", "T1"),
            ("P2", "union", "T2"),
            ("P3", "youth_league", None),
            ("P4", "party", "T1"),
        ]
    ):
        s.add("events", reg(p, t("07:00", 13), f"r{n}", org, team))
    s.add("events", reg("P5", t("20:00"), "r5", "union", None))
    s.add("events", reg("甲", t("07:00", 13), "r0"))  # duplicate
    # 甲: normal shift, then a transfer to S2, a check-out; tie check_out/check_in at 14:00.
    s.add("events", cin("甲", t("08:00"), "a1"))
    s.add("events", cin("甲", t("10:00"), "a2", sid="S2", role="marshal"))
    s.add("events", cout("甲", t("14:00"), "a3"))
    s.add("events", cin("甲", t("14:00"), "a4", role="registrar"))
    s.add("events", cout("甲", t("18:30"), "a5"))
    # P2 forgets to check out (auto-close at 07:00+12h = 19:00), checks in next day 08:00.
    s.add("events", cin("P2", t("07:00"), "b1", org="union", team="T2"))
    s.add("events", cin("P2", t("08:00", 16), "b2", org="union", team="T2"))
    # P3: check-in exactly MAX before the next event: not auto-closed (rule 1 is strict).
    s.add("events", cin("P3", t("06:00"), "c1", role="registrar", team=None))
    s.add("events", cout("P3", t("18:00"), "c2"))
    # P3 orphan check-out, then a late check-in (delivered later) that adopts it? No: the
    # check-in is after it, so it stays an orphan.
    s.add("events", cout("P3", t("19:00"), "c3"))
    # P4 at a site that does not exist (unknown) and at S3 before it closes.
    s.add("events", cin("P4", t("09:00"), "d1", sid="S9", org="party"))
    s.add("events", cin("P4", t("09:30"), "d2", sid="S3", role="supplies", org="party"))
    s.add("events", cout("P4", t("11:00"), "d3"))
    # P6 at S4, registered never; two check-ins at the same ts: event_id breaks the tie.
    s.add("events", cin("P6", t("09:00"), "e2", sid="S4", org="social_org", team="T6"))
    s.add("events", cin("P6", t("09:00"), "e1", sid="S4", org="social_org", team="T6"))
    s.add("events", cout("P6", t("23:30"), "e3"))
    # Late delivery: 甲's shift on the 14th arrives now, and a late check-in splits P3's
    # orphan check-out from being orphan (c0 at 18:30 makes c3 close it).
    s.add("events", cin("甲", t("20:00", 14), "a0"))
    s.add("events", cout("甲", t("23:00", 14), "a0x"))
    s.add("events", cin("P3", t("18:30"), "c0", role="registrar", team=None))
    # Duplicates: the same check-in resent, and the same event_id with other content.
    s.add("events", cin("甲", t("08:00"), "a1"))
    s.add("events", cout("P2", t("09:00"), "b1"))
    # Malformed: every kind goes to the DLQ.
    s.raw("events", "P7", b"not json")
    s.raw("events", "P7", b"\xff\xfe\x00")
    s.raw("events", "P7", b"[1, 2]")
    s.add(
        "events",
        {
            "event_id": "x1",
            "type": "check_in",
            "ts": "2022-03-15T08:00:00",
            "person_id": "P7",
            "site_id": "S1",
            "role": "guide",
            "org": "union",
        },
    )
    s.add(
        "events",
        {
            "event_id": "x2",
            "type": "check_in",
            "ts": "2099-01-01T00:00:00Z",
            "person_id": "P7",
            "site_id": "S1",
            "role": "guide",
            "org": "union",
        },
    )
    s.add(
        "events",
        {
            "event_id": "x3",
            "type": "check_in",
            "ts": t("08:00"),
            "person_id": "P7",
            "site_id": "S1",
            "role": "Guide",
            "org": "union",
        },
    )
    s.add("events", {"event_id": "x4", "type": "clock_in", "ts": t("08:00"), "person_id": "P7"})
    s.add("events", site("S5", t("08:00"), "x5"), key="S5")  # wrong topic
    s.add("sites", cin("P7", t("08:00"), "x6"), key="P7")  # wrong topic
    s.add("events", {"event_id": "x7", "type": "check_out", "ts": t("08:00"), "person_id": "P\x07"})
    s.add(
        "sites",
        {
            "event_id": "x8",
            "type": "site_upserted",
            "ts": t("08:00"),
            "site_id": "S6",
            "name": "n",
            "city": "c",
            "district": "d",
            "requirements": {"guide": -1},
        },
    )
    return s


CUTOFFS = [
    at("00:00"),
    at("08:00"),
    at("09:00"),
    at("10:30"),
    at("12:00"),
    at("14:00"),
    at("18:00"),
    at("19:00"),
    at("19:30"),
    at("23:59"),
    at("08:00", 16),
    at("12:00", 17),
]
SCOPES: list[dict[str, str]] = [
    {},
    {"city": "上海市"},
    {"district": "浦东新区"},
    {"district": "黄浦区"},
    {"street": "外滩街道"},
    {"community": "联洋居委"},
    {"site_id": "S1"},
    {"site_id": "S9"},
    {"org": "union"},
    {"org": "youth_league"},
    {"role": "registrar"},
    {"team_id": "T1"},
    {"district": "浦东新区", "role": "guide"},
    {"org": "party", "team_id": "T1"},
]


@dataclass
class CoreRun:
    """What the pipeline's core produces for a scenario, without Kafka."""

    rows: dict[str, list[Row]]
    statuses: dict[str, int]


@dataclass
class Core:
    """The agents' state between records (as their changelogged tables hold it)."""

    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    sites: dict[str, dict[str, str]] = field(default_factory=dict)

    def copy(self) -> Core:
        return Core(json.loads(json.dumps(self.people)), json.loads(json.dumps(self.sites)))


def fold(
    core: Core,
    records: list[tuple[str, bytes | None, bytes]],
    now: datetime,
    start: int = 0,
    max_shift: timedelta = MAX,
    zone: ZoneInfo = DEFAULT_ZONE,
    recall: Callable[[str], PersonState | None] | None = None,
    offset_base: int = 0,
) -> list[tuple[str, dict[str, list[Row]]]]:
    """Fold `records[start:]` into `core` as the agents do (one partition; a record's offset
    is `offset_base` + its index), returning each record's status and rows. `recall` reads
    back a person the core does not hold, as a worker that lost its state does
    (sinks/recall.py); their rows then take the versions they replace from the store."""
    out: list[tuple[str, dict[str, list[Row]]]] = []
    for index in range(start, len(records)):
        kind, _key, value = records[index]
        offset = offset_base + index
        try:
            event = parse_record(value, kind, now)
        except InvalidEvent as exc:
            out.append(("dlq", {"dlq": [dlq_row(str(exc), kind, 0, offset, None, None)]}))
            continue
        if isinstance(event, SiteUpserted):
            seen = core.sites.setdefault(event.site_id, {})
            outcome = apply_site(seen, event, 0, offset)
        else:
            held = core.people.get(event.person_id)
            recalled = None if held is not None or recall is None else recall(event.person_id)
            state = recalled or PersonState.from_json(held)
            outcome = apply(state, event, 0, offset, max_shift, zone)
            if outcome.status == "accepted" or recalled:
                core.people[event.person_id] = json.loads(json.dumps(state.to_json()))
            if recalled:
                outcome = replace(outcome, rows=prev_from_store(outcome.rows))
        out.append((outcome.status, outcome.rows))
    return out


def merged(per_record: list[tuple[str, dict[str, list[Row]]]]) -> dict[str, list[Row]]:
    rows: dict[str, list[Row]] = defaultdict(list)
    for _status, record_rows in per_record:
        for table, table_rows in record_rows.items():
            rows[table].extend(table_rows)
    return dict(rows)


def run_core(scenario: Scenario, now: datetime, max_shift: timedelta = MAX) -> CoreRun:
    """Fold every record of `scenario` through a fresh core."""
    per_record = fold(Core(), scenario.records, now, max_shift=max_shift)
    statuses: dict[str, int] = defaultdict(int)
    for status, _rows in per_record:
        statuses[status] += 1
    return CoreRun(merged(per_record), dict(statuses))


def one_site_people(rng: random.Random, when: Callable[[random.Random], datetime]) -> Scenario:
    """40 people at one site, 2 to 9 events each at `when(rng)`: check-ins (union or party,
    guide or marshal) and check-outs."""
    s = Scenario()
    s.add("sites", site("S1", "2022-03-01T00:00:00Z", "s1"))
    for p in range(40):
        for i in range(rng.randint(2, 9)):
            stamp = when(rng).isoformat().replace("+00:00", "Z")
            if rng.random() < 0.6:
                org, role = rng.choice(("union", "party")), rng.choice(("guide", "marshal"))
                s.add("events", cin(f"p{p}", stamp, f"e{p}-{i}", "S1", role, org))
            else:
                s.add("events", cout(f"p{p}", stamp, f"e{p}-{i}"))
    return s
