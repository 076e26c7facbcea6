"""Dashboards as code: the checked-in files are the generated ones, and every panel,
variable and alert-rule query, expanded as Grafana and the ClickHouse plugin expand it,
runs on the real engine over a simulated city, with the columns its panel needs; the
wall's tiles equal `muster metrics` at the time picker's `to`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.client import Client

from dashboards.boards import DASHBOARDS, TILES, alert_rules
from dashboards.expand import Context, expand, transform
from dashboards.grafana import refresh_queries, shown_field, variable_queries
from dashboards.provision import files
from sinks.queries import Scope, metrics
from sinks.reader import LocalReader
from tests.conftest import CITY_NOW as NOW

ZONE = ZoneInfo("Asia/Shanghai")
TIME_TYPES = ("DateTime", "Date")


def queries() -> list[tuple[str, str, str, str]]:
    """(dashboard, kind, title, sql) for every panel query and query variable; a panel
    that shows another's results (the "-- Dashboard --" source) with that panel's SQL."""
    out = []
    for name, build in DASHBOARDS.items():
        board = build()
        by_id = {panel["id"]: panel for panel in board["panels"]}
        for panel in board["panels"]:
            for target in panel["targets"]:
                if "panelId" in target:
                    # the source's rows as its query gave them (what the tests compute)
                    assert target["withTransforms"] is False, panel["title"]
                    source = by_id[target["panelId"]]
                    assert "panelId" not in source["targets"][0], "one level of sharing"
                    target = source["targets"][0]
                out.append((name, panel["type"], panel["title"], target["rawSql"]))
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                out.append((name, "variable", var["name"], var["query"]))
    for rule in alert_rules()["groups"][0]["rules"]:
        out.append(("alerting", "rule", rule["title"], rule["data"][0]["model"]["rawSql"]))
    return out


# (dashboard, title) -> the one column a stat or gauge shows of a wider result
FIELDS = {
    (name, panel["title"]): field
    for name, build in DASHBOARDS.items()
    for panel in build()["panels"]
    if (field := shown_field(panel)) is not None
}


def contexts(client: Client) -> list[Context]:
    site, district = client.query(
        "SELECT site_id, district FROM site_board_at(at = now64()) ORDER BY site_id LIMIT 1"
    ).result_rows[0]
    start = NOW - timedelta(hours=6)
    every = {"tz": "Asia/Shanghai", "city": "", "district": "", "street": "", "org": ""}
    every |= {"series": "on_post_series_at"}
    narrowed = every | {"city": "上海市", "district": district, "org": "union"}
    narrowed |= {"series": "on_post_series_by_city_at"}
    return [
        Context(start, NOW, timedelta(minutes=15), every | {"site": site}),
        Context(start, NOW - timedelta(hours=9), timedelta(seconds=20), narrowed | {"site": site}),
    ]


def test_checked_in_files_are_the_generated_ones(repo_root: Path) -> None:
    """`muster dashboards build` was run after the last change to dashboards/."""
    root = repo_root / "deploy" / "grafana"
    for rel, text in files().items():
        path = root / rel
        assert path.exists(), f"{path} missing: run `muster dashboards build`"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} stale: run `muster dashboards build`"
        )


def test_every_query_runs_with_the_columns_its_panel_needs(city: Client) -> None:
    checked = 0
    for ctx in contexts(city):
        for board, kind, title, sql in queries():
            expanded = expand(sql, ctx)
            where = f"{board} / {title}: {expanded}"
            columns = [(row[0], row[1]) for row in city.query(f"DESCRIBE ({expanded})").result_rows]
            rows = city.query(expanded).result_rows
            names = [n for n, _ in columns]
            if kind == "timeseries":
                assert columns[0][0] == "time" and columns[0][1].startswith(TIME_TYPES), where
                assert any(_numeric(t) for _, t in columns[1:]), where
                times = [r[0] for r in rows]
                assert times == sorted(times), f"not sorted by time: {where}"
            elif kind in ("stat", "gauge", "rule"):
                shown = FIELDS.get((board, title))
                types = dict(columns)
                field = shown if shown is not None else names[0]
                assert shown or len(columns) == 1, where
                assert field in types and _numeric(types[field]), where
                # one figure: a row, or (the wall's site figures) the same on every site's
                at = names.index(field)
                assert len({r[at] for r in rows}) == 1 and (len(rows) == 1 or shown), where
            elif kind == "geomap":
                assert {"lat", "lon", "status"} <= set(names), where
            elif kind == "barchart":
                assert _numeric(columns[-1][1]) and not _numeric(columns[0][1]), where
            elif kind == "variable":
                assert names in (["__value", "__text"], names[:1]) and len(names) <= 2, where
            checked += 1
    assert checked > 60


def test_the_day_shows_what_the_city_did(city: Client) -> None:
    """Not empty by accident: the simulated day fills the wall's charts and tables."""
    ctx = contexts(city)[0]
    filled = {
        title: len(city.query(expand(sql, ctx)).result_rows)
        for board, kind, title, sql in queries()
        if board == "wall" and kind in ("timeseries", "geomap", "barchart", "table")
    }
    empty = [t for t, n in filled.items() if n == 0 and "alerts" not in t.lower()]
    assert not empty, filled


@pytest.mark.parametrize("hours_back", [0, 5.25, 13.5, 30])
def test_wall_tiles_equal_muster_metrics_at_the_pickers_to(city: Client, hours_back: float) -> None:
    to = NOW - timedelta(hours=hours_back, milliseconds=137)
    want = metrics(LocalReader(city), to, ZONE, Scope())
    ctx = Context(to - timedelta(hours=12), to, timedelta(minutes=5), {"tz": "Asia/Shanghai"})
    seen = set()
    runs = 0
    for board, kind, title, sql in queries():
        if board != "wall" or kind not in ("stat", "gauge"):
            continue
        result = city.query(expand(sql, ctx))
        runs += 1
        name = FIELDS[(board, title)]
        value = result.result_rows[0][result.column_names.index(name)]
        assert value == pytest.approx(want[name], abs=1e-9), (name, sql)
        seen.add(name)
    assert {metric.name for metric in TILES} | {"coverage"} == seen
    wall = DASHBOARDS["wall"]()
    own = [
        p for p in wall["panels"] if p["type"] in ("stat", "gauge") and "rawSql" in p["targets"][0]
    ]
    assert len(own) == 1, "the figures come from one query a refresh, but the site figures"
    sources = {
        p["targets"][0].get("panelId") for p in wall["panels"] if p["type"] in ("stat", "gauge")
    }
    (board,) = [p for p in wall["panels"] if p["type"] == "geomap"]
    assert sources == {None, 1, board["id"]}, "the site figures count the map's sites"
    assert want["person_times"] > 0


def test_expansion_matches_the_plugin() -> None:
    """The macro forms of grafana/clickhouse-datasource pkg/macros/macros.go."""
    start = datetime(2022, 10, 21, 16, 25, 33, 123000, tzinfo=UTC)
    end = datetime(2022, 10, 25, 16, 25, 33, 456000, tzinfo=UTC)
    ctx = Context(start, end, timedelta(seconds=30), {"site": "S1", "district": ""})
    assert expand("$__timeFilter(ts)", ctx) == (
        "ts >= toDateTime(1666369533) AND ts <= toDateTime(1666715133)"
    )
    assert expand("$__timeFilter_ms(ts)", ctx) == (
        "ts >= fromUnixTimestamp64Milli(1666369533123) "
        "AND ts <= fromUnixTimestamp64Milli(1666715133456)"
    )
    assert expand("$__toTime_ms, $__toTime, $__fromTime", ctx) == (
        "fromUnixTimestamp64Milli(1666715133456), toDateTime(1666715133), toDateTime(1666369533)"
    )
    assert expand("$__timeInterval(ts) $__interval_s", ctx) == (
        "toStartOfInterval(toDateTime(ts), INTERVAL 30 second) 30"
    )
    assert (
        expand("$__dateFilter(d)", ctx) == "d >= toDate('2022-10-21') AND d <= toDate('2022-10-25')"
    )
    assert expand(
        "site_id = '${site}' AND $__conditionalAll(district = '$district', $district)", ctx
    ) == ("site_id = 'S1' AND 1=1")
    ctx.variables["district"] = "浦东新区"
    assert expand("$__conditionalAll(district = '${district}', $district)", ctx) == (
        "district = '浦东新区'"
    )
    with pytest.raises(ValueError, match="unexpanded"):
        expand("SELECT $__unknownMacro", ctx)


def _numeric(type_name: str) -> bool:
    plain = type_name.removeprefix("Nullable(").removeprefix("LowCardinality(")
    return plain.startswith(("UInt", "Int", "Float", "Decimal"))


def test_alert_rules_and_provisioning_name_the_fixed_data_source() -> None:
    texts = files()
    assert 'uid: "muster-clickhouse"' in texts["provisioning/datasources/muster.yaml"]
    assert (
        texts["provisioning/alerting/muster.yaml"].count('datasourceUid: "muster-clickhouse"') == 3
    )


def test_dashboards_import_anywhere_and_quote_their_variables() -> None:
    """No hard-coded data source: panels and query variables read through the `datasource`
    variable, which an import maps (`__inputs`); variables reach SQL quoted by Grafana."""
    for name in DASHBOARDS:
        board: dict[str, Any] = DASHBOARDS[name]()
        assert [i["name"] for i in board["__inputs"]] == ["DS_CLICKHOUSE"]
        variables = board["templating"]["list"]
        assert variables[0]["type"] == "datasource"
        assert variables[0]["query"] == "grafana-clickhouse-datasource"
        assert variables[0]["current"]["value"] == "${DS_CLICKHOUSE}"
        queries = [v for v in variables if v["type"] == "query"]
        targets = [t for p in board["panels"] for t in p["targets"]]
        for item in [*board["panels"], *queries, *targets]:
            uid = item["datasource"]["uid"]  # a panel that shows another's results: Dashboard
            assert uid in ("${datasource}", "-- Dashboard --"), (name, item.get("title"))
        sql = [t["rawSql"] for t in targets if "rawSql" in t]
        sql += [v["query"] for v in queries]
        for text in sql:
            assert not re.search(r"'\$\{?\w+", text), text  # '${var}' breaks on a quote


def test_a_quote_in_a_variable_is_doubled_by_sqlstring() -> None:
    ctx = Context(NOW, NOW, variables={"city": "O'Hare"})
    assert expand("SELECT ${city:sqlstring} AS c", ctx) == "SELECT 'O''Hare' AS c"


def test_the_site_chart_ends_at_the_sites_people_on_post(city: Client) -> None:
    """The drill-down's last moment (the picker's `to`) shows the site's status by role."""
    at = NOW.strftime("%Y-%m-%d %H:%M:%S")
    busy = city.query(
        f"SELECT site_id, on_post FROM site_board_at(at = '{at}') WHERE people > 1 "
        "ORDER BY site_id LIMIT 3"
    ).result_rows
    assert busy
    site = DASHBOARDS["site"]()
    (sql,) = [p["targets"][0]["rawSql"] for p in site["panels"] if "site_on_post_series" in str(p)]
    for site_id, on_post in busy:
        ctx = Context(NOW - timedelta(hours=8), NOW, timedelta(minutes=5), {"site": site_id})
        rows = city.query(expand(sql, ctx)).result_rows
        last = max(r[0] for r in rows)
        assert {role: n for t, role, n in rows if t == last} == dict(on_post), site_id


# The wall's site lists, each as its own query would give it
LISTS = {
    "缺员点位 Understaffed sites (worst first)": (
        "SELECT name, district, street, short, people, required, last_activity "
        "FROM site_board_at(at = {at:String}) WHERE status = 'understaffed' "
        "ORDER BY short DESC, people ASC, site_id LIMIT 100"
    ),
    "最近活动 Freshness: last activity per active site (stalest first)": (
        "SELECT name, district, last_activity, dateDiff('minute', last_activity, "
        "toDateTime64({at:String}, 3, 'UTC')) AS minutes_quiet "
        "FROM site_board_at(at = {at:String}) WHERE active "
        "ORDER BY last_activity ASC NULLS FIRST, site_id LIMIT 100"
    ),
    "点位状态 Sites by status": (
        "SELECT site_id, name, district, street, lat, lon, status, active, people, required, "
        "short, last_activity, dateDiff('minute', last_activity, "
        "toDateTime64({at:String}, 3, 'UTC')) AS minutes_quiet "
        "FROM site_board_at(at = {at:String}) WHERE lat IS NOT NULL AND lon IS NOT NULL "
        "ORDER BY site_id"
    ),
}


@pytest.mark.parametrize("hours_back", [0, 7.5])
def test_the_wall_lists_are_one_site_read_through_grafanas_transformations(
    city: Client, hours_back: float
) -> None:
    """The map, the understaffed list and the freshness list show one site_board_at read
    (the map's), each kept, ordered and cut by Grafana's transformations: what they show
    equals the query each would send alone."""
    wall = DASHBOARDS["wall"]()
    sent = [sql for _, sql in refresh_queries(wall)]
    assert sum("site_board_at" in sql for sql in sent) == 1, sent
    by_id = {panel["id"]: panel for panel in wall["panels"]}
    to = NOW - timedelta(hours=hours_back)
    ctx = Context(to - timedelta(hours=12), to, timedelta(minutes=5), {"tz": "Asia/Shanghai"})
    at = to.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    seen = set()
    for panel in wall["panels"]:
        if panel["title"] not in LISTS:
            continue
        target = panel["targets"][0]
        source = by_id[target["panelId"]] if "panelId" in target else panel
        result = city.query(expand(source["targets"][0]["rawSql"], ctx))
        rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
        shown = transform(rows, panel.get("transformations", []))
        want = city.query(LISTS[panel["title"]], parameters={"at": at})
        wanted = [dict(zip(want.column_names, row, strict=True)) for row in want.result_rows]
        assert shown == wanted, panel["title"]
        assert wanted, f"nothing to compare in {panel['title']}"
        seen.add(panel["title"])
    assert seen == set(LISTS)


def test_the_wall_draws_a_line_per_district_in_one_city_and_per_city_in_several(
    city: Client, store: Client
) -> None:
    """The wall's hidden $series names the view its "on post over the day" chart reads."""
    (sql,) = [sql for name, sql in variable_queries(DASHBOARDS["wall"]()) if name == "series"]
    ctx = Context(NOW - timedelta(hours=6), NOW, timedelta(minutes=1), {"tz": ZONE.key})
    assert city.query(expand(sql, ctx)).result_rows == [("on_post_series_at",)]
    columns = "site_id, event_id, ts, city, district"
    for site, town in (("A", "上海市"), ("B", "苏州市")):
        store.command(
            f"INSERT INTO site_versions ({columns}) VALUES "
            f"('{site}', '{site}', '2022-03-01 00:00:00', '{town}', '黄浦区')"
        )
    assert store.query(expand(sql, ctx)).result_rows == [("on_post_series_by_city_at",)]
