"""Distinct people as sums (streams/core/follows.py): under every person scope, the signed
rows the person core emits count `cumulative_people`, `on_post_today` and `recruited`
exactly as the reference counts distinct persons, through late events and pruning."""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from streams.core.follows import scope_key
from streams.core.person import LATE_LIMIT
from streams.core.rows import to_micros
from tests import reference
from tests.scenarios import MAX, Scenario, cin, cout, reg, run_core, within_contract

NOW = datetime(2030, 1, 1, tzinfo=UTC)
T0 = datetime(2022, 3, 10, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")
ORGS, ROLES, TEAMS = ("union", "party"), ("guide", "medic"), ("T1", "T2", None)


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def history(rng: random.Random) -> Scenario:
    """People who change org, role and team, over 12 days (so old shifts are forgotten),
    registered (some twice, under other orgs), delivered up to 72 h late."""
    events = []
    for p in range(rng.randint(1, 4)):
        for i in range(rng.randint(0, 3)):
            ts = T0 + timedelta(minutes=rng.randrange(12 * 24 * 60))
            events.append(reg(f"p{p}", iso(ts), f"r{p}-{i}", rng.choice(ORGS), rng.choice(TEAMS)))
        for i in range(rng.randint(1, 40)):
            ts = T0 + timedelta(minutes=rng.randrange(12 * 24 * 60) // 20 * 20)
            if rng.random() < 0.6:
                ev = cin(
                    f"p{p}",
                    iso(ts),
                    f"e{p}-{i}",
                    rng.choice(("S1", "S2")),
                    rng.choice(ROLES),
                    rng.choice(ORGS),
                    rng.choice(TEAMS),
                )
            else:
                ev = cout(f"p{p}", iso(ts), f"e{p}-{i}")
            events.append(ev)
    arrivals = sorted(
        (
            datetime.fromisoformat(e["ts"].replace("Z", "+00:00"))
            + timedelta(minutes=rng.randrange(int(LATE_LIMIT.total_seconds() // 60))),
            rng.random(),
            e,
        )
        for e in events
    )
    return within_contract([e for _, _, e in arrivals])


def signed_rows(rows):
    """What the store's views make of the emitted rows, in order: each shift row retracts
    the version it replaces and asserts its own (sinks/migrations/006_sums.sql)."""
    out = []
    for row in rows.get("shifts", []):
        if row["prev_reason"] != "":
            was = (row["prev_firsts"], row["prev_day_firsts"])
            out.append((-1, row["started_at"], row["prev_ended_at"], was, row))
        out.append((1, row["started_at"], row["ended_at"], (row["firsts"], row["day_firsts"]), row))
    return out


def recruit_deltas(rows):
    out = []
    for row in rows.get("recruit_firsts", []):
        if row["prev_ts"] is not None:
            out.append((row["key"], row["prev_ts"], -1))
        out.append((row["key"], row["first_ts"], 1))
    return out


def k_of(scope):
    return bool(scope.get("org")) + 2 * bool(scope.get("role")) + 4 * bool(scope.get("team_id"))


def matches(row, scope):
    return all(row[c] == v for c, v in scope.items())


@pytest.mark.parametrize("seed", range(150))
def test_signed_rows_count_distinct_people_under_every_person_scope(seed):
    rng = random.Random(seed)
    scenario = history(rng)
    run = run_core(scenario, NOW)
    ref = reference.build(scenario.topic_order(), MAX, NOW)
    signed = signed_rows(run.rows)
    recruits = recruit_deltas(run.rows)
    for _ in range(20):
        at = T0 + timedelta(minutes=rng.randrange(14 * 24 * 60))
        local = at.astimezone(ZONE)
        d = to_micros(local.replace(hour=0, minute=0, second=0, microsecond=0))
        t = to_micros(at)
        scope = {
            c: v
            for c, v in (
                ("org", rng.choice(ORGS)),
                ("role", rng.choice(ROLES)),
                ("team_id", rng.choice(("T1", "T2"))),
            )
            if rng.random() < 0.5
        }
        want = reference.metrics(ref, at, ZONE, scope)
        k = k_of(scope)
        kept = [(s, st, en, b) for s, st, en, b, row in signed if st <= t and matches(row, scope)]
        bit = 1 << k
        assert sum(s for s, _, _, b in kept if b[0] & bit) == want["cumulative_people"], scope
        # on post at D, plus the first shifts of the local day started since D
        at_d = sum(s for s, st, en, _ in kept if st < d < en)
        firsts_today = sum(s for s, st, _, b in kept if st >= d and b[1] & bit)
        assert at_d + firsts_today == want["on_post_today"], scope
        if "role" not in scope:
            key = scope_key(scope.get("org", ""), "", scope.get("team_id", ""))
            got = sum(sign for kk, ts, sign in recruits if kk == key and ts <= t)
            assert got == want["recruited"], scope
