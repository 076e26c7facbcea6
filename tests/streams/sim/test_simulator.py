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


def test_a_second_run_goes_on_with_the_same_city(bootstrap, tmp_path, capsys):
    """`make up` twice on one data directory: the second run sends no history again, only
    what came due since (before, it sent the whole history a second time)."""
    import uuid

    from streams.broker import create_topics
    from streams.cli import build_parser
    from streams.settings import Settings
    from streams.sim.simulator import Memo, run_simulation

    settings = Settings(
        kafka_bootstrap=bootstrap, data_dir=tmp_path, topic_prefix=f"s{uuid.uuid4().hex[:6]}."
    )
    create_topics(settings)
    args = build_parser().parse_args(["simulate", "--people", "60", "--sites", "4"])
    live = run_simulation(settings, args)
    first = capsys.readouterr().err
    assert "records sent" in first and live
    memo = Memo.read(settings)
    assert memo is not None and memo.options["people"] == 60

    again = run_simulation(settings, args)
    second = capsys.readouterr().err
    assert "going on with the city first started" in second
    assert "0 records due since" in second
    assert [r.value for r in again] == [r.value for r in live]  # the same city, live next

    other = build_parser().parse_args(["simulate", "--people", "61", "--sites", "4"])
    run_simulation(settings, other)  # another city: its own history
    assert "going on" not in capsys.readouterr().err
