"""SPEC §4 metrics from the store's `metrics_at` view, on the real ClickHouse engine, against
the reference implementation, at every cutoff and scope of the edge scenario."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sinks.queries import Scope, day_start, metrics
from sinks.reader import LocalReader
from sinks.writer import RowWriter
from tests import reference
from tests.scenarios import CUTOFFS, MAX, SCOPES, edge_scenario, run_core

NOW = datetime(2022, 3, 20, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")


def same(got: dict, want: dict) -> bool:
    return all(
        got[k] == pytest.approx(want[k], abs=1e-9)
        if isinstance(want[k], float)
        else got[k] == want[k]
        for k in want
    )


def test_edge_scenario_metrics_match_the_reference_at_every_cutoff_and_scope(store):
    scenario = edge_scenario()
    run = run_core(scenario, NOW)
    writer = RowWriter(store)
    writer.write(run.rows)
    writer.write(run.rows)  # written twice (a replay): the store must not double count
    ref = reference.build(scenario.topic_order(), MAX, NOW)
    reader = LocalReader(store)
    mismatches = []
    for cutoff in CUTOFFS:
        for scope in SCOPES:
            got = metrics(reader, cutoff, ZONE, Scope(**scope))
            want = reference.metrics(ref, cutoff, ZONE, scope)
            if not same(got, want):
                mismatches.append((cutoff.isoformat(), scope, got, want))
    assert not mismatches, mismatches[:3]


def test_edge_scenario_exercises_every_rule(store):
    ref = reference.build(edge_scenario().topic_order(), MAX, NOW)
    reasons = {s.reason for s in ref.shifts}
    assert reasons == {"check_out", "transfer", "auto"}
    assert ref.orphans and ref.dlq >= 10
    seen = [reference.metrics(ref, c, ZONE, {}) for c in CUTOFFS]
    assert any(0 < m["sites_covered"] < m["sites_active"] for m in seen)
    assert any(m["hours_auto"] > 0 for m in seen) and any(m["on_post_now"] > 1 for m in seen)


def test_day_start_is_local_midnight():
    cutoff = datetime(2022, 3, 15, 11, 0, tzinfo=UTC)  # 19:00 in Shanghai
    assert day_start(cutoff, ZONE) == datetime(2022, 3, 14, 16, 0, tzinfo=UTC)
    early = datetime(2022, 3, 14, 15, 59, tzinfo=UTC)  # 23:59 on the 14th
    assert day_start(early, ZONE) == datetime(2022, 3, 13, 16, 0, tzinfo=UTC)


def test_empty_store_reads_zeros(store):
    got = metrics(LocalReader(store), NOW, ZONE, Scope())
    assert got["recruited"] == 0 and got["coverage"] == 0.0 and got["dlq"] == 0
    assert metrics(LocalReader(store), NOW, ZONE, Scope(city="x"))["recruited"] is None
