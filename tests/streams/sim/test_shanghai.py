"""The seed 002 scenario (streams/sim/shanghai.py) gives the published figures."""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from streams.bulletin import bulletin_zh
from streams.sim import shanghai
from streams.sim.simulator import Record
from tests import reference

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return shanghai.generate()


@pytest.fixture(scope="module")
def ref(records: list[Record]) -> reference.Reference:
    return reference.build([(r.topic, r.value) for r in records], shanghai.MAX_SHIFT, NOW)


def test_published_figures_at_the_cutoff(ref: reference.Reference) -> None:
    m = reference.metrics(ref, shanghai.CUTOFF, shanghai.ZONE)
    assert {k: m[k] for k in shanghai.PUBLISHED} == shanghai.PUBLISHED
    assert round(m["hours"] * 3600, 6) == shanghai.SERVICE_SECONDS
    text = bulletin_zh(m, shanghai.CUTOFF)
    assert "全市共招募志愿者45018名，当日上岗9965人，累计上岗43538人、84738人次" in text
    assert "上岗总时长52.5万余小时" in text


def test_the_cutoff_matters(ref: reference.Reference) -> None:
    before = reference.metrics(ref, shanghai.CUTOFF - timedelta(seconds=1), shanghai.ZONE)
    after = reference.metrics(ref, shanghai.CUTOFF + timedelta(hours=4), shanghai.ZONE)
    published = shanghai.PUBLISHED
    assert before["recruited"] == published["recruited"] - 1  # one registered at 19:00:00
    assert before["person_times"] < published["person_times"]  # check-ins at 19:00:00
    assert after["recruited"] > published["recruited"]
    assert after["cumulative_people"] > published["cumulative_people"]
    assert after["person_times"] > published["person_times"]


def test_delivered_like_site_apps_deliver(records: list[Record], ref: reference.Reference) -> None:
    assert 210_000 <= len(records) <= 225_000
    values = Counter(r.value for r in records)
    resent = sum(n - 1 for n in values.values())
    assert 0.008 <= resent / len(records) <= 0.012
    lateness = []
    for r in records:
        try:
            ts = json.loads(r.value)["ts"]
            event_time = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except (ValueError, KeyError):
            continue  # garbled copies
        if event_time.tzinfo is None:
            continue  # a garbled copy without its offset
        lateness.append(r.arrival - event_time)
    late = [d for d in lateness if d > timedelta(minutes=5)]
    assert 0.02 <= len(late) / len(lateness) <= 0.05  # a few percent …
    assert max(late) <= timedelta(hours=48, minutes=600)  # … up to 48 h (resends up to 10 h on)
    assert 100 <= ref.dlq <= 400
    assert ref.orphans
    reasons = Counter(s.reason for s in ref.shifts)
    assert reasons["transfer"] and reasons["auto"] and reasons["check_out"]
