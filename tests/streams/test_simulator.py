"""The city simulator's live hours: what `muster up` keeps delivering after the history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from streams.simulator import Plan, generate

END = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


def timed(records):
    """The records with a well-formed ts (the simulator garbles one in a thousand)."""
    for r in records:
        try:
            ts = datetime.fromisoformat(json.loads(r.value)["ts"])
        except (ValueError, KeyError):
            continue
        if ts.tzinfo is not None:
            yield r


def happened(record) -> datetime:
    return datetime.fromisoformat(json.loads(record.value)["ts"])


def test_live_hours_add_the_next_shifts_each_delivered_after_it_happens():
    plan = Plan(600, 20, 2, end=END, live_hours=24)
    records = list(timed(generate(plan)))
    assert all(happened(r) <= r.arrival for r in records)
    assert max(happened(r) for r in records) < plan.until
    later = [r for r in records if happened(r) > END]
    assert later, "no shift in the live hours"
    # Check-ins and check-outs both, through the next morning's shift change.
    kinds = {json.loads(r.value)["type"] for r in later}
    assert {"check_in", "check_out"} <= kinds
    assert any(happened(r) > END + timedelta(hours=18) for r in later)


def test_without_live_hours_nothing_happens_after_the_end():
    records = list(timed(generate(Plan(600, 20, 2, end=END))))
    assert max(happened(r) for r in records) <= END
