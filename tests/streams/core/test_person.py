"""Dedupe, late events and pruning (streams/core/person.py) against the reference implementation."""

import random
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.person import LATE_LIMIT
from tests import reference
from tests.scenarios import MAX, Scenario, cin, cout, run_core, within_contract

NOW = datetime(2030, 1, 1, tzinfo=UTC)
T0 = datetime(2022, 3, 10, tzinfo=UTC)


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def final(rows, table, key):
    """What ReplacingMergeTree keeps: the highest version of each key."""
    best = {}
    for row in rows.get(table, []):
        k = tuple(row[c] for c in key)
        if k not in best or row["version"] >= best[k]["version"]:
            best[k] = row
    return best


def core_shifts(run):
    return sorted(
        (r["person_id"], r["shift_id"], r["started_at"], r["ended_at"], r["reason"], r["site_id"])
        for r in final(run.rows, "shifts", ("person_id", "shift_id")).values()
    )


def ref_shifts(ref):
    us = reference._us
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return sorted(
        (s.person_id, s.shift_id, us(s.start - epoch), us(s.end - epoch), s.reason, s.site_id)
        for s in ref.shifts
    )


@st.composite
def histories(draw):
    """A few people's movements over ~9 days, delivered up to 72 h late and partly twice."""
    events = []
    for p in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 25))
        for i in range(n):
            ts = T0 + timedelta(minutes=draw(st.integers(0, 9 * 24 * 60)) // 30 * 30)
            if draw(st.booleans()):
                ev = cin(f"p{p}", iso(ts), f"e{p}-{i}", sid=draw(st.sampled_from(["S1", "S2"])))
            else:
                ev = cout(f"p{p}", iso(ts), f"e{p}-{i}")
            events.append(ev)
    delays = [draw(st.integers(0, int(LATE_LIMIT.total_seconds() // 60))) for _ in events]
    resend = [draw(st.integers(0, 10)) == 0 for _ in events]
    return events, delays, resend


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.randoms(use_true_random=False))
def test_any_arrival_order_and_duplication_gives_the_reference_shifts(history, rnd):
    events, delays, resend = history
    arrivals = []
    for ev, delay, again in zip(events, delays, resend, strict=True):
        ts = datetime.fromisoformat(ev["ts"].replace("Z", "+00:00"))
        arrivals.append((ts + timedelta(minutes=delay), rnd.random(), ev))
        if again:
            arrivals.append((ts + timedelta(minutes=rnd.randint(0, 4000)), rnd.random(), ev))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    scenario = within_contract([ev for _, _, ev in arrivals])
    run = run_core(scenario, NOW)
    ref = reference.build(scenario.topic_order(), MAX, NOW)
    assert core_shifts(run) == ref_shifts(ref)
    orphans = {
        k[1]
        for k, r in final(run.rows, "checkouts", ("person_id", "event_id")).items()
        if r["orphan"]
    }
    assert orphans == {e["event_id"] for e in ref.orphans}
    assert run.statuses.get("too_late", 0) == 0


def test_a_record_read_again_after_a_restart_is_re_emitted_not_dropped():
    s = Scenario()
    s.add("events", cin("p", "2022-03-15T08:00:00Z", "a"))
    s.add("events", cout("p", "2022-03-15T09:00:00Z", "b"))
    first = run_core(s, NOW)
    # Replay the same two records at the same offsets into the state they produced.
    import json

    from schemas.events import parse_record
    from streams.core.person import PersonState, apply
    from streams.core.rows import PREV_FROM_STORE

    state = PersonState()
    for offset, (_, _, value) in enumerate(s.records):
        apply(state, parse_record(value, "events", NOW), 0, offset, MAX)
    again = apply(
        PersonState.from_json(json.loads(json.dumps(state.to_json()))),
        parse_record(s.records[1][2], "events", NOW),
        0,
        1,
        MAX,
    )
    assert again.status == "replayed"
    # The same shift version, asking the writer for the version it replaces (the store's).
    bookkeeping = {
        "prev_ended_at",
        "prev_reason",
        "prev_firsts",
        "prev_day_firsts",
        PREV_FROM_STORE,
    }
    [row] = again.rows["shifts"]
    assert row[PREV_FROM_STORE] is True
    assert {k: v for k, v in row.items() if k not in bookkeeping} == {
        k: v for k, v in first.rows["shifts"][-1].items() if k not in bookkeeping
    }
    resent = apply(state, parse_record(s.records[1][2], "events", NOW), 0, 5, MAX)
    assert resent.status == "duplicate" and resent.rows == {}


def test_events_before_the_prune_point_go_to_the_dlq_later_ones_stay_exact():
    s = Scenario()
    s.add("events", cin("p", "2022-03-10T08:00:00Z", "a"))
    s.add("events", cin("p", "2022-03-15T08:00:00Z", "b"))  # prunes "a", carrying it open
    s.add("events", cout("p", "2022-03-10T07:00:00Z", "too-late"))
    s.add("events", cout("p", "2022-03-10T09:00:00Z", "late-but-exact"))
    run = run_core(s, NOW)
    assert run.statuses == {"accepted": 3, "too_late": 1}
    ref = reference.build([r for r in s.topic_order() if b"too-late" not in r[1]], MAX, NOW)
    assert core_shifts(run) == ref_shifts(ref)


def test_pruned_state_stays_small_and_exact():
    rnd = random.Random(3)
    s = Scenario()
    ts = T0
    for i in range(400):
        ts += timedelta(hours=rnd.uniform(1, 10))
        ev = cin("p", iso(ts), f"i{i}") if rnd.random() < 0.6 else cout("p", iso(ts), f"o{i}")
        s.add("events", ev)
    run = run_core(s, NOW)
    ref = reference.build(s.topic_order(), MAX, NOW)
    assert core_shifts(run) == ref_shifts(ref)
    from schemas.events import parse_record
    from streams.core.person import PersonState, apply

    state = PersonState()
    for offset, (_, _, value) in enumerate(s.records):
        apply(state, parse_record(value, "events", NOW), 0, offset, MAX)
    assert len(state.moves) < 40  # ~72 h of movements, not 400
