"""People on post over the day by district (on_post_series_at, what the wall, the picture
bulletin and Grafana draw) against a re-read of every stored shift at each moment."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client

from sinks.queries import Scope
from sinks.reader import LocalReader
from sinks.store import ch_time, schema_objects
from sinks.writer import RowWriter
from streams.sim.simulator import Plan, Record, generate
from streams.web.api import site_statuses
from tests import reference
from tests.conftest import CITY_NOW, CITY_ZONE
from tests.scenarios import (
    CUTOFFS,
    MAX,
    Core,
    Scenario,
    at,
    cin,
    cout,
    edge_scenario,
    fold,
    merged,
    one_site_people,
    run_core,
    site,
    t,
)


def city_records() -> list[Record]:
    """The records the `city` fixture's store was written from."""
    return generate(Plan(people=1500, sites=30, days=2, end=CITY_NOW, seed=11, zone=CITY_ZONE))


# The people on post at each moment, counted from every current shift (what the view
# computed before it read the day's shift versions once).
BRUTE = """
WITH
    toDateTime64({at:DateTime64(6, 'UTC')}, 6, 'UTC') AS cutoff,
    toDateTime64(toStartOfDay(toDateTime(cutoff, {tz:String})), 6, 'UTC') AS midnight,
    greatest(intDiv(toUInt32({step_s:UInt32}) + 59, 60), 1) * 60 AS step,
    arrayDistinct(arrayConcat(
        arrayMap(k -> midnight + toIntervalSecond(k * step),
                 range(toUInt32(intDiv(dateDiff('second', midnight, cutoff), step) + 1))),
        [cutoff])) AS moments
SELECT t AS time, s.city AS city, s.district AS district, toUInt32(count()) AS people
FROM
(
    SELECT site_id, arrayJoin(arrayFilter(m -> started_at <= m AND m < ended_at, moments)) AS t
    FROM shifts FINAL
    WHERE started_at <= cutoff AND ended_at > midnight
) AS p
INNER JOIN sites_at(at = {at:DateTime64(6, 'UTC')}) AS s ON s.site_id = p.site_id
GROUP BY time, city, district
ORDER BY time, city, district
"""
ARGS = "at = {at:String}, tz = {tz:String}, step_s = {step_s:UInt32}"
VIEW = "SELECT * FROM on_post_series_at(" + ARGS + ")"
# by city: the same shifts, summed over each city's districts
BRUTE_BY_CITY = (
    "SELECT time, city, '' AS district, toUInt32(sum(people)) AS people FROM ("
    + BRUTE
    + ") GROUP BY time, city ORDER BY time, city"
)
VIEW_BY_CITY = "SELECT * FROM on_post_series_by_city_at(" + ARGS + ")"


def path(client: Client, parameters: dict[str, object]) -> int:
    """How the view reads at these parameters: the sites corrected because a version of
    theirs was filed under another place than theirs at `at`. Its WITH clause, asked for
    that constant."""
    (view,) = [o.text for o in schema_objects() if o.name == "on_post_series_at"]
    start = view.index("WITH")
    constants = view[start : view.index("\nSELECT ", start)]
    return int(client.query(constants + " SELECT length(moved)", parameters).result_rows[0][0])


@pytest.mark.parametrize("hours_back", [0, 3.5, 9, 13.5, 26, 40])
@pytest.mark.parametrize("step_s", [600, 3600])
def test_the_series_counts_every_shift_on_post_at_each_moment(
    city: Client, hours_back: float, step_s: int
) -> None:
    at = CITY_NOW - timedelta(hours=hours_back, milliseconds=137)
    parameters = {"at": ch_time(at), "tz": CITY_ZONE.key, "step_s": step_s}
    want = city.query(BRUTE, parameters=parameters).result_rows
    got = city.query(VIEW, parameters=parameters).result_rows
    drawn = {(t, c, d) for t, c, d, _ in got}
    assert [r for r in got if r[3] > 0] == want
    # every district drawn has a row at every moment, zeros included
    times = sorted({t for t, _, _, _ in got})
    districts = {(c, d) for _, c, d, _ in got}
    assert drawn == {(t, c, d) for t in times for c, d in districts}
    # and someone is on post there at one of the moments
    assert districts == {(c, d) for _, c, d, p in got if p > 0}
    assert sum(r[3] for r in want) > 0 or hours_back >= 26
    by_city = city.query(VIEW_BY_CITY, parameters=parameters).result_rows
    assert [r for r in by_city if r[3] > 0] == city.query(BRUTE_BY_CITY, parameters).result_rows
    assert {(t, c) for t, c, _, _ in by_city} == {(t, c) for t in times for c, _ in districts}


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


def test_a_site_that_moves_is_drawn_in_its_city_and_district_at_the_cutoff(store: Client) -> None:
    """district_series files a shift version under its site's district when written: a site
    moved afterwards is corrected from its own versions as filed (site_shifts), those
    filed before the move and, once more are written, those filed after it. Each way draws
    what every stored shift says, at cutoffs before and after the move, at steps that are
    and are not whole minutes. The site moves to a district of the same name in another
    city: a district is its city's."""
    now = CITY_NOW - timedelta(hours=20)  # 17:30 in Shanghai
    plan = Plan(people=1200, sites=10, days=2, end=now, seed=5, zone=CITY_ZONE)
    records = generate(plan)
    out = fold(Core(), [(r.topic, r.key, r.value) for r in records], now, zone=CITY_ZONE)
    cut = sum(1 for r in records if r.arrival <= now - timedelta(hours=4))
    early, late = merged(out[:cut]), merged(out[cut:])
    midnight_us = int((now - timedelta(hours=17, minutes=30)).timestamp()) * 1_000_000
    # a site with shifts written in both parts, on the cutoffs' day
    both = {r["site_id"] for r in early["shifts"] if r["started_at"] >= midnight_us} & {
        r["site_id"] for r in late["shifts"]
    }
    site = sorted(both)[0]
    writer = RowWriter(store)
    writer.write(early)
    moved_at = now - timedelta(hours=12)
    store.command(
        "INSERT INTO site_versions (site_id, event_id, ts, partition, offset, name, city, "
        "district, street, community, kind, requirements, active, lat, lon) "
        "SELECT site_id, 'moved', {ts:DateTime64(6, 'UTC')}, 0, 999999999, name, '苏州市', "
        "district, street, community, kind, requirements, active, lat, lon "
        "FROM sites_at(at = {ts:DateTime64(6, 'UTC')}) WHERE site_id = {s:String}",
        parameters={"ts": ch_time(moved_at), "s": site},
    )

    def agrees(hours_back: float, step_s: int, tz: str = CITY_ZONE.key) -> int:
        at = now - timedelta(hours=hours_back, milliseconds=421)
        parameters = {"at": ch_time(at), "tz": tz, "step_s": step_s}
        want = store.query(BRUTE, parameters=parameters).result_rows
        got = store.query(VIEW, parameters=parameters).result_rows
        assert [r for r in got if r[3] > 0] == want, (hours_back, step_s)
        assert want
        by_city = store.query(VIEW_BY_CITY, parameters=parameters).result_rows
        assert [r for r in by_city if r[3] > 0] == store.query(
            BRUTE_BY_CITY, parameters
        ).result_rows
        return path(store, parameters)

    # before the move, the site is in the district its versions were filed under
    assert agrees(14, 600) == 0
    # after it, its versions (all filed before) are taken to its new district
    assert agrees(4, 600) == 1
    assert agrees(4.5, 90) == 1
    # a day that starts on the half hour (UTC+5:30): what comes before it is read too
    assert agrees(4, 600, "Asia/Kolkata") == 1
    # the rest written after the move: the site's versions of the day are filed under two
    # places, those filed before the move taken to its new district, the others kept
    writer.write(late)
    assert agrees(0, 600) == 1
    assert agrees(1.5, 3600) == 1
    assert agrees(1, 600, "Asia/Kolkata") == 1
    # before the move, the versions filed after it are taken back to the old district
    assert agrees(14.2, 900) == 1
    agrees(20, 900)


def test_site_statuses_on_the_edge_scenario_follow_spec(store: Client) -> None:
    """/api/sites at every cutoff of the edge scenario (short shifts inside an hour, late and
    duplicated deliveries, transfers) against SPEC §6 on every stored shift."""
    now = datetime(2022, 3, 20, tzinfo=UTC)
    scenario = edge_scenario()
    RowWriter(store).write(run_core(scenario, now).rows)
    ref = reference.build(scenario.topic_order(), MAX, now)
    seen = 0
    for when in [c + timedelta(minutes=m) for c in CUTOFFS for m in (0, 13, 41)]:
        want = sorted(
            reference.site_statuses(ref, when, CITY_ZONE).values(), key=lambda s: s["site_id"]
        )
        got = site_statuses(LocalReader(store), when, CITY_ZONE, Scope())["sites"]
        assert got == want, when
        seen += sum(s["people"] for s in want)
    assert seen > 0


def test_site_statuses_inside_the_hour_count_short_shifts_once(store: Client) -> None:
    """Forty people checking in and out at one site at random minutes of three hours: many
    shifts start and end inside one hour. People on post (and all of SPEC §6) at cutoffs
    every 7 minutes equal the reference."""
    start = datetime(2022, 3, 15, 1, 0, tzinfo=UTC)
    rng = random.Random(3)
    scenario = one_site_people(rng, lambda r: start + timedelta(minutes=r.randint(0, 180)))
    now = start + timedelta(days=1)
    RowWriter(store).write(run_core(scenario, now).rows)
    ref = reference.build(scenario.topic_order(), MAX, now)
    on_post = 0
    for k in range(0, 200, 7):
        at = start + timedelta(minutes=k, seconds=11)
        want = sorted(
            reference.site_statuses(ref, at, CITY_ZONE).values(), key=lambda s: s["site_id"]
        )
        got = site_statuses(LocalReader(store), at, CITY_ZONE, Scope())["sites"]
        assert got == want, at
        on_post += sum(s["people"] for s in want)
    assert on_post > 0


def test_a_late_transfer_takes_back_a_sites_last_activity(store: Client) -> None:
    """A check-out at S1 at 12:00 is its last activity until a late check-in at S2 at 11:00
    arrives, written apart: then P1 left S1 by transfer at 11:00, and the 12:00 check-out
    is S2's. S1's last activity goes back to 11:00 in the cutoff's part hour, at the whole
    hours after, and days later (the latest day, hour and moment of site_activity). The
    same at S3 across a UTC midnight (08:00 in Shanghai): its only activity of the UTC day
    is taken back, so its latest day is the one before."""
    s = Scenario()
    s.add("sites", site("S1", t("00:00", 14), "s1"))
    s.add("sites", site("S2", t("00:00", 14), "s2"))
    s.add("events", cin("P1", t("10:00"), "e1", sid="S1"))
    s.add("events", cin("P2", t("10:20"), "e2", sid="S2"))
    s.add("events", cout("P2", t("10:40"), "e3"))
    s.add("events", cout("P1", t("12:00"), "e4"))
    s.add("sites", site("S3", t("00:00", 14), "s3"))
    s.add("sites", site("S4", t("00:00", 14), "s4"))
    s.add("events", cin("P3", t("07:00", 16), "e6", sid="S3"))
    s.add("events", cout("P3", t("09:00", 16), "e7"))
    s.add("events", cin("P1", t("11:00"), "e5", sid="S2"))  # late
    s.add("events", cin("P3", t("07:30", 16), "e8", sid="S4"))  # late
    now = at("00:00", 18)
    writer = RowWriter(store)
    ref = reference.build(s.topic_order(), MAX, now)

    def last(when: datetime) -> dict[str, str | None]:
        got = site_statuses(LocalReader(store), when, CITY_ZONE, Scope())["sites"]
        want = reference.site_statuses(ref, when, CITY_ZONE)
        assert got == sorted(want.values(), key=lambda x: x["site_id"]), when
        return {x["site_id"]: x["last_activity"] for x in got}

    out = fold(Core(), s.records, now)
    writer.write(merged(out[:-2]))
    ref_before = reference.build(s.topic_order()[:-2], MAX, now)
    before = reference.site_statuses(ref_before, at("10:00", 17), CITY_ZONE)
    assert [before[x]["last_activity"] for x in ("S1", "S3")] == [t("12:00"), t("09:00", 16)]
    writer.write(merged(out[-2:]))
    assert last(at("11:30")) == {"S1": t("11:00"), "S2": t("11:00"), "S3": None, "S4": None}
    for when in [at("12:30"), at("13:10"), at("23:59")]:
        assert last(when) == {"S1": t("11:00"), "S2": t("12:00"), "S3": None, "S4": None}
    for when in [at("09:30", 16), at("15:00", 17)]:
        assert last(when) == {
            "S1": t("11:00"),
            "S2": t("12:00"),
            "S3": t("07:30", 16),
            "S4": t("09:00", 16),
        }, when


def test_a_site_known_only_later_is_drawn_once_known(store: Client) -> None:
    """Check-ins at S9 before any version of S9 is stored are filed under no place: the
    series leaves them out while S9 is unknown at the cutoff, and draws them in S9's
    district at cutoffs after its first version (dated later than the check-ins) arrives."""
    s = Scenario()
    s.add("sites", site("S1", t("00:00", 14), "s1"))
    s.add("events", cin("P1", t("09:00"), "e1", sid="S1"))
    s.add("events", cin("P2", t("09:10"), "e2", sid="S9"))
    s.add("events", cin("P3", t("09:20"), "e3", sid="S9"))
    s.add("events", cout("P3", t("10:40"), "e4"))
    writer = RowWriter(store)
    writer.write(run_core(s, at("12:00")).rows)
    late = Scenario()
    late.add("sites", site("S9", t("10:00"), "s9", district="徐汇区"))
    writer.write(run_core(late, at("12:00")).rows)

    def drawn(hhmm: str) -> list[tuple[object, ...]]:
        parameters = {"at": ch_time(at(hhmm)), "tz": CITY_ZONE.key, "step_s": 600}
        want = store.query(BRUTE, parameters=parameters).result_rows
        got = store.query(VIEW, parameters=parameters).result_rows
        assert [r for r in got if r[3] > 0] == want, hhmm
        by_city = store.query(VIEW_BY_CITY, parameters=parameters).result_rows
        assert [r for r in by_city if r[3] > 0] == store.query(
            BRUTE_BY_CITY, parameters
        ).result_rows
        assert path(store, parameters) == 1
        return want

    # S9 unknown at 09:45: only P1 is drawn
    assert {r[2] for r in drawn("09:45")} == {"浦东新区"}
    # known at 10:50: P2 in 徐汇区 at 10:50 (P3 left at 10:40)
    rows = drawn("10:50")
    assert [r[2:] for r in rows if r[0] == max(r[0] for r in rows)] == [
        ("徐汇区", 1),
        ("浦东新区", 1),
    ]
