"""The city simulator's live hours: what `muster up` keeps delivering after the history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from streams.sim.simulator import Plan, generate

END = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


def timed(records) -> list[tuple[datetime, object]]:
    """(ts, record) of the records with a well-formed ts (one in a thousand is garbled)."""
    out = []
    for r in records:
        try:
            ts = datetime.fromisoformat(json.loads(r.value)["ts"])
        except (ValueError, KeyError):
            continue
        if ts.tzinfo is not None:
            out.append((ts, r))
    return out


def test_live_hours_add_the_next_shifts_each_delivered_after_it_happens():
    plan = Plan(600, 20, 2, end=END, live_hours=24)
    records = timed(generate(plan))
    assert all(ts <= r.arrival for ts, r in records)
    assert max(ts for ts, _ in records) < plan.until
    later = [(ts, r) for ts, r in records if ts > END]
    assert later, "no shift in the live hours"
    # Check-ins and check-outs both, through the next morning's shift change.
    kinds = {json.loads(r.value)["type"] for _, r in later}
    assert {"check_in", "check_out"} <= kinds
    assert any(ts > END + timedelta(hours=18) for ts, _ in later)


def test_without_live_hours_nothing_happens_after_the_end():
    records = timed(generate(Plan(600, 20, 2, end=END)))
    assert max(ts for ts, _ in records) <= END
