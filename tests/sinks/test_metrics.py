"""SPEC §4 metrics from the store's `metrics_at` view, on the real ClickHouse engine, against
the reference implementation, at every cutoff and scope of the edge scenario."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas.errors import UnknownScope
from schemas.metrics import SITE_METRICS
from sinks import metric_reads
from sinks.coverage import dirty_hours, fresh_sql, settle
from sinks.queries import WARM_UP_WEEKS, Scope, ch_time, day_start, metrics, warm_up
from sinks.reader import LocalReader
from sinks.store import connect, migrate, migrations
from sinks.writer import RowWriter
from streams.sim.simulator import Plan, generate
from tests import reference
from tests.scenarios import (
    CUTOFFS,
    MAX,
    SCOPES,
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
from tests.sinks.test_series import BRUTE as SERIES_BRUTE
from tests.sinks.test_series import VIEW as SERIES_VIEW

NOW = datetime(2022, 3, 20, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")


def same(got: dict, want: dict) -> bool:
    return all(
        got[k] == pytest.approx(want[k], abs=1e-9)
        if isinstance(want[k], float)
        else got[k] == want[k]
        for k in want
    )


def mismatches(reader, ref, cutoffs, scopes, zone) -> list:
    """(cutoff, scope, got, want) wherever the store's metrics differ from the reference."""
    return [
        (cutoff, scope, got, want)
        for cutoff in cutoffs
        for scope in scopes
        for got in [metrics(reader, cutoff, zone, Scope(**scope))]
        for want in [reference.metrics(ref, cutoff, zone, scope)]
        if not same(got, want)
    ]


@pytest.mark.parametrize("filed", ["by site", "by city", "by time"])
def test_edge_scenario_metrics_match_the_reference_at_every_cutoff_and_scope(
    store, store_url, monkeypatch, filed
):
    """Site scopes read their sites' recent shifts by site when they are few, else by city
    when every site's shifts were filed under one, else from the time-ordered shift_deltas:
    every way."""
    if filed != "by site":
        monkeypatch.setattr(metric_reads, "FEW_SITES", 0)
    if filed == "by time":
        monkeypatch.setattr(metric_reads, "BY_CITY", metric_reads.BY_TIME)
        monkeypatch.setattr(metric_reads, "WHOLE_CITY", metric_reads.BY_TIME)
    scenario = edge_scenario()
    run = run_core(scenario, NOW)
    writer = RowWriter(store)
    writer.write(run.rows)
    writer.write(run.rows)  # written twice (a replay): the store must not double count
    ref = reference.build(scenario.topic_order(), MAX, NOW)
    sql: list[str] = []

    class Reader(LocalReader):  # as a worker reads: a call's queries at once, on helpers
        def _on_helper(self, text, parameters):
            sql.append(text)
            return super()._on_helper(text, parameters)

    reader = Reader(store, [connect(store_url, store.database, create=False) for _ in range(2)])
    mismatches = []
    for cutoff in CUTOFFS:
        for scope in SCOPES:
            want = reference.metrics(ref, cutoff, ZONE, scope)
            # the rollups, and the full re-read they are checked by
            for via in (None, "metrics_brute_at"):
                got = metrics(reader, cutoff, ZONE, Scope(**scope), view=via)
                if not same(got, want):
                    mismatches.append((cutoff.isoformat(), scope, via, got, want))
            if filed == "by site":  # the view analysts and Grafana read takes no such path
                view = from_the_view(store, cutoff, ZONE, Scope(**scope))
                if not same(view, want):
                    mismatches.append((cutoff.isoformat(), scope, "metrics_at", view, want))
    if filed == "by site":
        # coverage read from the settled hours (the view's and the API's other branch)
        assert settle(store) > 0 and dirty_hours(store) == []
        settled = 0
        for cutoff in CUTOFFS:
            fresh = store.query(fresh_sql(), parameters={"hour": cutoff.strftime("%F %H:00:00")})
            settled += fresh.result_rows[0][0]
            for scope in SCOPES:
                want = reference.metrics(ref, cutoff, ZONE, scope)
                for via in ("api", "metrics_at"):
                    if via == "api":
                        got = metrics(reader, cutoff, ZONE, Scope(**scope))
                    else:
                        got = from_the_view(store, cutoff, ZONE, Scope(**scope))
                    if not same(got, want):
                        mismatches.append((cutoff.isoformat(), scope, f"settled {via}", got, want))
        assert settled >= len(CUTOFFS) // 2, settled  # most cutoffs read their settled hour
    assert not mismatches, mismatches[:3]
    assert sql  # queries ran on the helpers
    # a city's people and teams from its first starts (014), where the path allows
    assert any("city_firsts" in text for text in sql) == (filed == "by city")


def test_sites_filed_under_two_cities_send_their_scopes_to_the_time_ordered_read(
    store, monkeypatch
):
    """Migration 013 files each shift under its site's city when it is written. Site A
    moves city between writes, and site B's first shift is written before its first
    version (filed under no city): scopes holding either read shift_deltas, a scope of
    site C alone reads by city, and every metric equals the reference."""
    monkeypatch.setattr(metric_reads, "FEW_SITES", 0)  # as if every scope had many sites
    s = Scenario()
    s.add("sites", site("A", t("00:00", 14), "a1"))
    s.add("sites", site("C", t("00:00", 14), "c1", district="徐汇区"))
    s.add("events", cin("P1", t("08:00"), "e1", sid="A"))
    s.add("events", cin("P2", t("08:30"), "e2", sid="C"))
    s.add("events", cin("P3", t("09:00"), "e3", sid="B"))
    moved = len(s.records)
    s.add("sites", site("A", t("12:00"), "a2", city="苏州市", district="姑苏区"))
    s.add("sites", site("B", t("07:00"), "b1"))
    later = len(s.records)
    s.add("events", cout("P1", t("11:00"), "e4"))
    s.add("events", cin("P4", t("13:00"), "e5", sid="A"))
    s.add("events", cout("P3", t("14:00"), "e6"))
    s.add("events", cin("P5", t("15:00"), "e7", sid="C", role="registrar"))
    core, writer = Core(), RowWriter(store)
    for start, end in ((0, moved), (moved, later), (later, len(s.records))):
        writer.write(merged(fold(core, s.records[:end], NOW, start=start)))
    ref = reference.build(s.topic_order(), MAX, NOW)
    sql: list[str] = []

    class Reader(LocalReader):
        def query(self, text, parameters=None):
            sql.append(text)
            return super().query(text, parameters)

    reader = Reader(store)
    cutoffs = [at("08:45"), at("10:00"), at("11:30"), at("12:30"), at("14:30"), at("16:00")]
    scopes = [
        {},
        {"city": "上海市"},
        {"city": "苏州市"},
        {"district": "徐汇区"},
        {"district": "浦东新区"},
        {"site_id": "B"},
        {"city": "上海市", "role": "guide"},
    ]
    bad = mismatches(reader, ref, cutoffs, scopes, ZONE)
    assert not bad, bad[:2]

    def read_by_city(scope: dict[str, str]) -> bool:
        sql.clear()
        metrics(reader, at("16:00"), ZONE, Scope(**scope))
        return any("city_shifts" in text for text in sql)

    assert read_by_city({"district": "徐汇区"})
    assert not read_by_city({"city": "上海市"}) and not read_by_city({"site_id": "B"})
    assert not read_by_city({"city": "苏州市"})  # A alone, but filed under both cities


def test_a_store_written_before_the_national_rollups_reads_exactly_after_them(
    store_url, monkeypatch
):
    """Migration 009 adds the site and cell hashes, on_post_hours, team_firsts and
    orphan_days to a store that already holds the edge scenario (written under 008) and
    fills them from what it holds; 010 the fingerprints settled coverage is checked by,
    011 the per-site day and hour sums, 012 the shifts by site, 013 by city, 014 the
    first starts per city and 017 the people on post by district. Every metric at every
    cutoff and scope then equals the reference, and shifts written after it are counted
    too, before and after the hours are settled; so does the series by district. Site
    scopes read by city where they can (as if every scope had many sites), so 013's and
    014's tables are read."""
    monkeypatch.setattr(metric_reads, "FEW_SITES", 0)
    name = f"t_{uuid.uuid4().hex[:12]}"
    client = connect(store_url, name)
    try:
        migrate(client, upto=8)
        scenario = edge_scenario()
        records = scenario.records
        half = len(records) // 2
        core, writer = Core(), RowWriter(client)
        writer.write(merged(fold(core, records[:half], NOW)))
        upgrades = migrate(client)
        assert upgrades[:7] == [
            "009_national_reads",
            "010_settled_coverage",
            "011_site_sums",
            "012_site_shifts",
            "013_city_shifts",
            "014_city_firsts",
            "015_series_once",
        ]
        assert upgrades == [f"{m.version:03d}_{m.name}" for m in migrations() if m.version > 8]
        writer.write(merged(fold(core, records, NOW, start=half)))
        ref = reference.build(scenario.topic_order(), MAX, NOW)
        reader = LocalReader(client)
        bad = mismatches(reader, ref, CUTOFFS, SCOPES, ZONE)
        assert not bad, bad[:2]
        # 010 fingerprinted what the store held; settling reads the same fingerprints
        assert settle(client) > 0 and dirty_hours(client) == []
        bad = mismatches(reader, ref, CUTOFFS, SCOPES, ZONE)
        assert not bad, bad[:2]
        assert client.query("SELECT count() FROM on_post_hours").result_rows[0][0] > 0
        assert client.query("SELECT count() FROM team_firsts").result_rows[0][0] > 0
        drawn = 0
        for cutoff in CUTOFFS:
            parameters = {"at": ch_time(cutoff), "tz": ZONE.key, "step_s": 600}
            want = client.query(SERIES_BRUTE, parameters=parameters).result_rows
            got = client.query(SERIES_VIEW, parameters=parameters).result_rows
            assert [r for r in got if r[3] > 0] == want, cutoff
            drawn += len(want)
        assert drawn > 0
    finally:
        client.command(f"DROP DATABASE IF EXISTS {name}")


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
    assert warm_up(LocalReader(store), ZONE) == 0  # a new worker on an empty store


def test_a_new_worker_warms_up_with_every_kind_of_scope(city):
    # national, city, district, site, org, role, district + org, team: at five cutoffs
    assert warm_up(LocalReader(city), ZoneInfo("Asia/Shanghai")) == 8 * WARM_UP_WEEKS


@pytest.mark.parametrize("seed", range(4))
def test_a_replay_after_a_crash_counts_every_shift_once(store, seed):
    """A worker dies after its tables' changelogs got records the store never got; after the
    restart it reads again from the last committed offset. Those records come back as
    replays whose rows say which version they replace only at write time (the store's), so
    the rollups count each shift once: at every cutoff and scope equal to the reference."""
    rng = random.Random(seed)
    records = simulated_city(seed)
    n = len(records)
    committed, stored, processed = sorted(rng.sample(range(n // 4, n), 3))
    core = Core()
    before_crash = fold(core, records[:processed], NOW)
    writer = RowWriter(store)
    for batch in batches(before_crash[:stored], rng):
        writer.write(merged(batch))
    after_restart = fold(core.copy(), records, NOW, start=committed)
    assert any(status == "replayed" for status, _ in after_restart)
    for batch in batches(after_restart, rng):
        writer.write(merged(batch))

    ref = reference.build([(kind, value) for kind, _, value in records], MAX, NOW)
    reader = LocalReader(store)
    cutoffs = [NOW - timedelta(hours=h) for h in (0, 3, 11, 27, 40)]
    scopes = [{}, {"org": "union"}, {"district": CITY_DISTRICT}, {"role": "marshal"}]
    bad = mismatches(reader, ref, cutoffs, scopes, ZONE)
    assert not bad, bad[:2]


CITY_DISTRICT = "浦东新区"


def simulated_city(seed: int) -> list[tuple[str, bytes | None, bytes]]:
    """A small city from the simulator (late, resent and garbled deliveries included)."""
    plan = Plan(people=300, sites=12, days=2, end=NOW, seed=seed, live_hours=0, zone=ZONE)
    return [(r.topic, r.key, r.value) for r in generate(plan)]


def batches(items: list, rng: random.Random) -> list[list]:
    """`items` cut into batches of random size, as flushes cut them."""
    out, i = [], 0
    while i < len(items):
        size = rng.randint(1, 400)
        out.append(items[i : i + size])
        i += size
    return out


PERSON_SCOPES = [{}, {"org": "union"}, {"role": "marshal"}, {"org": "union", "role": "marshal"}]


def test_a_zone_whose_midnight_is_not_on_the_hour_reads_today_exactly(store):
    """Asia/Kolkata (UTC+5:30): local midnight falls mid-hour, so `on_post_today` joins
    whole hours of first shifts to raw half hours. People with several shifts a day, many
    around midnight: at cutoffs around midnight and through the day, every metric under
    every person scope equals the reference."""
    zone = ZoneInfo("Asia/Kolkata")
    midnight = datetime(2022, 3, 18, 18, 30, tzinfo=UTC)  # Kolkata, 19 March 00:00
    rng = random.Random(5)

    def when(rng: random.Random) -> datetime:
        ts = midnight + timedelta(minutes=rng.randrange(-6 * 60, 20 * 60))
        if rng.random() < 0.4:  # around midnight
            ts = midnight + timedelta(minutes=rng.randrange(-50, 50))
        return ts

    s = one_site_people(rng, when)
    RowWriter(store).write(merged(fold(Core(), s.records, NOW, zone=zone)))
    ref = reference.build(s.topic_order(), MAX, NOW)
    reader = LocalReader(store)
    cutoffs = [midnight + timedelta(minutes=m) for m in (0, 1, 29, 31, 95, 125, 600, 1439)]
    bad = mismatches(reader, ref, cutoffs, PERSON_SCOPES, zone)
    assert not bad, bad[:2]
    # and the Grafana wall's metrics_tz, which reads either form of D in one query
    for cutoff in cutoffs:
        want = {k: v for k, v in reference.metrics(ref, cutoff, zone, {}).items() if k != "at"}
        wall = store.query(
            "SELECT * FROM metrics_tz(at = {at:String}, tz = {tz:String})",
            parameters={"at": ch_time(cutoff), "tz": str(zone)},
        ).first_item
        assert same(wall, want), cutoff


def test_shifts_on_whole_hours_and_at_midnight_read_exactly(store):
    """Shanghai's midnight is a whole UTC hour, so national, org and role scopes read the
    people on post at D and at the cutoff's hour from on_post_hours. Shifts that start or end
    exactly on an hour, at D or at a cutoff, and cutoffs exactly on them and a microsecond
    either side: every metric under every person scope equals the reference."""
    midnight = datetime(2022, 3, 18, 16, 0, tzinfo=UTC)  # Shanghai, 19 March 00:00
    rng = random.Random(7)

    def when(rng: random.Random) -> datetime:
        ts = midnight + timedelta(hours=rng.randrange(-14, 20))
        if rng.random() < 0.3:  # a cutoff below falls on some of these
            ts += timedelta(minutes=rng.choice((23, 41)))
        return ts

    s = one_site_people(rng, when)
    RowWriter(store).write(merged(fold(Core(), s.records, NOW, zone=ZONE)))
    ref = reference.build(s.topic_order(), MAX, NOW)
    reader = LocalReader(store)
    tick = timedelta(microseconds=1)
    cutoffs = [
        midnight + offset + nudge
        for offset in (timedelta(0), timedelta(hours=1), timedelta(hours=7, minutes=23))
        for nudge in (-tick, timedelta(0), tick)
    ] + [midnight + timedelta(hours=h, minutes=m) for h in (-2, 5, 12, 19) for m in (0, 23)]
    bad = mismatches(reader, ref, cutoffs, PERSON_SCOPES, ZONE)
    assert not bad, bad[:2]


def test_metrics_answer_what_the_view_does(city):
    """`metrics` runs a few queries written for the scope asked (sinks/metric_reads.py);
    at cutoffs across the simulated city and every kind of scope it answers what the
    `metrics_at` view analysts query does."""
    reader = LocalReader(city)
    zone = ZoneInfo("Asia/Shanghai")
    team, site_id = city.query(
        "SELECT anyIf(team_id, team_id != ''), any(site_id) FROM shifts_current"
    ).result_rows[0]
    scopes = [
        Scope(),
        Scope(org="union"),
        Scope(role="marshal"),
        Scope(org="union", role="marshal"),
        Scope(team_id=team),
        Scope(team_id=team, role="marshal"),
        Scope(district="浦东新区"),
        Scope(district="浦东新区", org="union"),
        Scope(site_id=site_id),
        Scope(city="上海市", team_id=team),
    ]
    cutoffs = [
        datetime(2022, 3, 19, 2, 0, tzinfo=UTC),
        datetime(2022, 3, 19, 16, 0, tzinfo=UTC),
        datetime(2022, 3, 20, 5, 29, 59, 999999, tzinfo=UTC),
    ]
    for cutoff in cutoffs:
        for scope in scopes:
            want = from_the_view(city, cutoff, zone, scope)
            got = metrics(reader, cutoff, zone, scope)
            assert {k: got[k] for k in want} == pytest.approx(want), (cutoff, scope)
    assert metrics(reader, cutoffs[-1], zone, Scope())["person_times"] > 0


def test_coverage_is_counted_from_the_shifts_when_the_settling_checked_is_gone(city, monkeypatch):
    """The freshness check (first round) names a settling; its rows are read in the second.
    Were they settled anew and merged away in between (another worker on one ClickHouse),
    the second round finds none, and the call counts coverage from the shifts on post."""
    sql: list[str] = []

    class Reader(LocalReader):
        def query(self, text, parameters=None):
            sql.append(text)
            return super().query(text, parameters)

    reader, zone = Reader(city), ZoneInfo("Asia/Shanghai")
    cutoff = datetime(2022, 3, 19, 2, 30, tzinfo=UTC)  # in the settled first day
    scopes = [Scope(), Scope(district="浦东新区"), Scope(org="union")]
    for gone in (False, True):
        if gone:  # fresh, by a settling no row carries
            monkeypatch.setattr(
                metric_reads, "fresh_sql", lambda: "SELECT 1 AS fresh, toInt64(1) AS gen_us"
            )
        for scope in scopes:
            sql.clear()
            want = from_the_view(city, cutoff, zone, scope)
            got = metrics(reader, cutoff, zone, scope)
            assert {k: got[k] for k in want} == pytest.approx(want), (gone, scope)
            assert want["sites_active"] > 0
            # from the shifts on post only when the settling was gone
            assert any("AS sites_covered" in text for text in sql) == gone, scope


def from_the_view(client, cutoff: datetime, zone: ZoneInfo, scope: Scope) -> dict:
    """What the `metrics_at` view analysts query answers (without `at`); for a national
    scope, `metrics_tz` (the Grafana wall's, generated from the API's reads) must answer
    the same."""
    view = metrics(LocalReader(client), cutoff, zone, scope, view="metrics_at")
    answer = {k: v for k, v in view.items() if k != "at"}
    if scope == Scope():
        wall = client.query(
            "SELECT * FROM metrics_tz(at = {at:String}, tz = {tz:String})",
            parameters={"at": ch_time(cutoff), "tz": str(zone)},
        ).first_item
        assert {k: wall[k] for k in answer} == pytest.approx(answer), ("metrics_tz", cutoff)
        # and counts_tz (the wall's tiles) all of it but the metrics about sites
        counts = client.query(
            "SELECT * FROM counts_tz(at = {at:String}, tz = {tz:String})",
            parameters={"at": ch_time(cutoff), "tz": str(zone)},
        ).first_item
        assert set(counts) == set(wall) - set(SITE_METRICS), counts
        assert counts.pop("at") == wall["at"]
        assert counts == pytest.approx({k: wall[k] for k in counts}), ("counts_tz", cutoff)
    if scope.org and scope == Scope(org=scope.org):
        # org_hours_at has every organisation's hours and person-times at once
        orgs = client.query(
            "SELECT org, hours, person_times FROM org_hours_at(at = {at:String})",
            parameters={"at": ch_time(cutoff)},
        ).result_rows
        hours, person_times = next(((h, n) for o, h, n in orgs if o == scope.org), (0, 0))
        assert (hours, person_times) == pytest.approx((answer["hours"], answer["person_times"])), (
            "org_hours_at",
            cutoff,
            scope.org,
        )
    return answer


def test_an_unknown_scope_value_is_named_not_answered_with_zeros(store):
    """A mistyped district must not read as a district where nobody served: the error names
    the value and values the store knows. A known value with nothing yet at the cutoff, and
    a site known only from its check-ins (no version: SPEC §4 counts it under no site
    scope), still answer zeros."""
    scenario = edge_scenario()
    RowWriter(store).write(run_core(scenario, NOW).rows)
    reader = LocalReader(store)
    for scope, named in (
        (Scope(district="Atlantis"), "unknown district 'Atlantis'"),
        (Scope(city="上海市", org="no_such_org"), "unknown org 'no_such_org'"),
        (Scope(team_id="T404"), "unknown team 'T404'"),
        (Scope(site_id="S404"), "unknown site 'S404'"),
    ):
        with pytest.raises(UnknownScope, match=named) as caught:
            metrics(reader, NOW, ZONE, scope)
        assert "the store knows '" in str(caught.value)
    assert metrics(reader, NOW, ZONE, Scope(site_id="S9"))["person_times"] == 0
    early = datetime(2022, 3, 1, tzinfo=UTC)  # before anything happened
    assert metrics(reader, early, ZONE, Scope(org="union"))["person_times"] == 0
