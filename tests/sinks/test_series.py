"""People on post over the day by district (on_post_series_at, what the wall, the picture
bulletin and Grafana draw) against a re-read of every stored shift at each moment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from clickhouse_connect.driver.client import Client

from sinks.queries import Scope
from sinks.reader import LocalReader
from sinks.store import ch_time
from streams.sim.simulator import Plan, Record, generate
from streams.web.api import site_statuses
from tests import reference
from tests.conftest import CITY_NOW, CITY_ZONE
from tests.scenarios import MAX


def city_records() -> list[Record]:
    """The records the `city` fixture's store was written from."""
    return generate(Plan(people=1500, sites=30, days=2, end=CITY_NOW, seed=11, zone=CITY_ZONE))


# The people on post at each moment, counted from every current shift (what the view
# computed before it read the day's shift versions once).
BRUTE = """
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toDateTime64(toStartOfDay(toDateTime(cutoff, {tz:String})), 6, 'UTC') AS midnight,
    greatest(toUInt32({step_s:UInt32}), 60) AS step,
    arrayDistinct(arrayConcat(
        arrayMap(k -> midnight + toIntervalSecond(k * step),
                 range(toUInt32(intDiv(dateDiff('second', midnight, cutoff), step) + 1))),
        [cutoff])) AS moments
SELECT t AS time, s.district AS district, toUInt32(count()) AS people
FROM
(
    SELECT site_id, arrayJoin(arrayFilter(m -> started_at <= m AND m < ended_at, moments)) AS t
    FROM shifts FINAL
    WHERE started_at <= cutoff AND ended_at > midnight
) AS p
INNER JOIN sites_at(at = {at:DateTime64(6, 'UTC')}) AS s ON s.site_id = p.site_id
GROUP BY time, district
ORDER BY time, district
"""
ARGS = "at = {at:String}, tz = {tz:String}, step_s = {step_s:UInt32}"
VIEW = "SELECT * FROM on_post_series_at(" + ARGS + ")"


@pytest.mark.parametrize("hours_back", [0, 3.5, 9, 13.5, 26, 40])
@pytest.mark.parametrize("step_s", [600, 3600])
def test_the_series_counts_every_shift_on_post_at_each_moment(
    city: Client, hours_back: float, step_s: int
) -> None:
    at = CITY_NOW - timedelta(hours=hours_back, milliseconds=137)
    parameters = {"at": ch_time(at), "tz": CITY_ZONE.key, "step_s": step_s}
    want = city.query(BRUTE, parameters=parameters).result_rows
    got = city.query(VIEW, parameters=parameters).result_rows
    drawn = {(t, d) for t, d, _ in got}
    assert [r for r in got if r[2] > 0] == want
    # every district drawn has a row at every moment, zeros included
    times = sorted({t for t, _, _ in got})
    districts = {d for _, d, _ in got}
    assert drawn == {(t, d) for t in times for d in districts}
    assert sum(r[2] for r in want) > 0 or hours_back >= 26


@pytest.mark.parametrize("hours_back", [0, 3.5, 13.5, 26, 40])
def test_site_statuses_at_any_cutoff_follow_spec(city: Client, hours_back: float) -> None:
    """/api/sites at a cutoff (site_inputs_at, with the live rule) against SPEC §6 on every
    stored shift: on post by role, short, covered, last activity, for every site."""
    at = CITY_NOW - timedelta(hours=hours_back, milliseconds=137)
    records = [(r.topic, r.value) for r in city_records()]
    ref = reference.build(records, MAX, CITY_NOW)
    want = sorted(reference.site_statuses(ref, at, CITY_ZONE).values(), key=lambda s: s["site_id"])
    got = site_statuses(LocalReader(city), at, CITY_ZONE, Scope())["sites"]
    assert got == want
    assert sum(s["people"] for s in want) > 0 or hours_back >= 26
