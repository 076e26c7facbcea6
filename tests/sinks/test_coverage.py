"""Settled coverage (sinks/coverage.py) on the real engine, against the reference's SPEC §4/§6.

Randomized cities whose sites change requirements and go inactive mid-hour, with records
delivered late, out of order and twice: written in pieces, settled, then changed by late
records (hours go stale and are read from the shifts again), then settled again. At every
cutoff, every metric equals the reference either way.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sinks import coverage
from sinks.reader import LocalReader
from sinks.writer import RowWriter
from tests import reference
from tests.scenarios import MAX, Core, fold, merged
from tests.sinks.test_metrics import mismatches
from tests.streams.core.test_live import START, random_city

ZONE = ZoneInfo("Asia/Shanghai")
NOW = START + timedelta(hours=48)
SCOPES = [{}, {"site_id": "S2"}, {"role": "marshal"}]


def _records(delivered) -> list[tuple[str, bytes, bytes]]:
    out = []
    for _when, kind, event in delivered:
        owner = event["site_id"] if kind == "sites" else event["person_id"]
        out.append((kind, owner.encode(), json.dumps(event, ensure_ascii=False).encode()))
    return out


def _fresh(client, cutoff: datetime) -> bool:
    hour = cutoff.replace(minute=0, second=0, microsecond=0)
    row = client.query(
        coverage.fresh_sql(),
        parameters={"hour": hour.strftime("%Y-%m-%d %H:%M:%S")},
    ).first_item
    return bool(row["fresh"])


@pytest.mark.parametrize("seed", range(2))
def test_settled_coverage_equals_spec_through_late_records(store, seed):
    rng = random.Random(seed)
    records = _records(random_city(rng))
    per_record = fold(Core(), records, NOW)
    writer = RowWriter(store)
    early = int(len(records) * 0.7)
    for i in range(0, early, 25):
        writer.write(merged(per_record[i : min(i + 25, early)]))
    assert coverage.settle(store) > 0
    assert coverage.dirty_hours(store) == []

    for i in range(early, len(records), 25):
        writer.write(merged(per_record[i : i + 25]))
    stale = coverage.dirty_hours(store)
    assert stale, "the late records changed no settled hour"

    ref = reference.build([(k, v) for k, _, v in records], MAX, NOW)
    cutoffs = [START + timedelta(minutes=m) for m in range(0, 34 * 60, 43)]
    tick = timedelta(microseconds=1)
    moments = sorted({s.start for s in ref.shifts} | {s.end for s in ref.shifts if s.end < NOW})
    cutoffs += [m + d for m in rng.sample(moments, 10) for d in (-tick, timedelta(0), tick)]
    reader = LocalReader(store)
    hour_of = {c: c.replace(minute=0, second=0, microsecond=0) for c in cutoffs}
    assert any(not _fresh(store, c) for c in cutoffs if hour_of[c] in stale)
    bad = mismatches(reader, ref, cutoffs, SCOPES[:1], ZONE)
    assert not bad, bad[:2]

    assert coverage.settle(store) == len(stale)
    assert coverage.dirty_hours(store) == []
    assert all(_fresh(store, c) for c in cutoffs)
    bad = mismatches(reader, ref, cutoffs, SCOPES, ZONE)
    assert not bad, bad[:2]
    covered = [reference.metrics(ref, c, ZONE, {})["sites_covered"] for c in cutoffs]
    assert 0 < max(covered) and min(covered) == 0
