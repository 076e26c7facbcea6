"""A worker that lost its state reads a person back from the store (sinks/recall.py), so
whatever the store already reflects changes no number: on the real engine, against the
reference, whatever the worker forgot and whatever is sent again."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinks.queries import Scope
from sinks.reader import LocalReader
from sinks.recall import forgotten_people, person_history
from sinks.writer import RowWriter
from streams.core.person import PersonState, rebuild
from tests import reference
from tests.scenarios import MAX, Core, fold, merged
from tests.sinks.test_metrics import (
    CITY_DISTRICT,
    batches,
    from_the_view,
    mismatches,
    simulated_city,
)

NOW = datetime(2022, 3, 20, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")
CUTOFFS = [NOW - timedelta(hours=h) for h in (0, 5, 20, 40)]
SCOPES = [{}, {"org": "union"}, {"district": CITY_DISTRICT}, {"role": "marshal"}]


class Forgetful:
    """The pipeline's core as a worker runs it, whose tables can be lost: a lost core reads
    each person the store holds back from it at their first event, as the agent does."""

    def __init__(self, store) -> None:
        self.store = store
        self.core = Core()
        self.forgotten: set[str] = set()

    def lose(self) -> None:
        self.core = Core()
        self.forgotten = forgotten_people(self.store, [])

    def recall(self, person_id: str) -> PersonState | None:
        if person_id not in self.forgotten:
            return None
        self.forgotten.discard(person_id)
        return rebuild(*person_history(self.store, person_id), MAX, ZONE)


def run(store, records, passes, rng) -> None:
    """Each pass: (lose the state first?, first record read, last record read, offset base:
    0 reads the records at the positions they had, else as a new topic would place them)."""
    writer = RowWriter(store)
    worker = Forgetful(store)
    for lose, start, end, base in passes:
        if lose:
            worker.lose()
        out = fold(worker.core, records[:end], NOW, start=start, recall=worker.recall,
                   offset_base=base, zone=ZONE)  # fmt: skip
        for batch in batches(out, rng):
            writer.write(merged(batch))


def differing(got: dict, want: dict) -> set[str]:
    return {k for k in want if k in got and got[k] != pytest.approx(want[k], abs=1e-9)}


def check(store, records, new_positions: bool) -> None:
    """Every metric by the API's reads and by the `metrics_at` view analysts query equals
    the reference (the CLI prints what the API reads: one function)."""
    ref = reference.build([(kind, value) for kind, _, value in records], MAX, NOW)
    bad = mismatches(LocalReader(store), ref, CUTOFFS, SCOPES, ZONE)
    for cutoff in CUTOFFS:
        for scope in SCOPES:
            got = from_the_view(store, cutoff, ZONE, Scope(**scope))
            want = reference.metrics(ref, cutoff, ZONE, scope)
            if got != pytest.approx({k: want[k] for k in got}):
                bad.append((cutoff, scope, got, want))
    if new_positions:  # garbled records sent again are new records on the DLQ: counted again
        bad = [b for b in bad if differing(b[2], b[3]) != {"dlq"}]
    assert not bad, bad[:2]


@pytest.mark.parametrize("base", [0, 1_000_000], ids=["same positions", "a new topic"])
def test_a_history_sent_again_to_a_worker_that_lost_its_state_counts_once(store, base):
    """The issue's case: `make up` twice on one data directory. The store is kept, the
    embedded broker comes back empty (the person table with it), and the same history is
    sent again, then more. Before recall every number doubled."""
    rng = random.Random(7)
    records = simulated_city(7)
    n = len(records)
    run(store, records, [(False, 0, n * 2 // 3, 0), (True, 0, n, base)], rng)
    check(store, records, new_positions=base != 0)


@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_state_lost_at_any_point_between_resends_and_late_events_counts_once(store, data):
    """Any number of losses, each followed by a resend from any earlier record (the records
    include late, out-of-order, repeated and garbled deliveries), at the old positions or
    new ones; every metric at every cutoff and scope equals the reference."""
    tables = store.query(  # one database for every example: emptied first
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine LIKE '%MergeTree' AND name != 'schema_migrations'"
    ).result_rows
    for (table,) in tables:
        store.command(f"TRUNCATE TABLE `{table}`")
    seed = data.draw(st.integers(0, 3), label="city")
    records = simulated_city(seed)
    n = len(records)
    passes, read_to, new_positions = [], 0, False
    for k in range(data.draw(st.integers(1, 3), label="losses") + 1):
        end = data.draw(st.integers(read_to, n), label="read to") if k < 3 else n
        start = data.draw(st.integers(0, read_to), label="read again from") if k else 0
        base = data.draw(st.sampled_from([0, (k + 1) * 1_000_000]), label="positions") if k else 0
        new_positions |= base != 0
        passes.append((k > 0, start, end, base))
        read_to = end
    if read_to < n:
        passes.append((True, 0, n, 0))
    run(store, records, passes, random.Random(seed))
    check(store, records, new_positions)
