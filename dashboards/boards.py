"""The four dashboards and the alert rules, as code.

Every query reads the views analysts read, tested equal to what the CLI, the API and the
built-in wall show (counts_tz, site_board_at, on_post_series_at, org_hours_at,
team_board_at, person_hours_at, alerts_current): the wall in Grafana and the bulletin
cannot disagree. The time picker's
`to` is the cutoff (`$__toTime_ms`); `$tz` is the pipeline's time zone, which fixes "today".

A panel whose single row is named after SPEC §4 metrics shows the city-wide figure at `to`;
scoped or grouped figures carry other names (`site_hours`, `service_hours`, ...).
"""

from __future__ import annotations

from typing import Any

from dashboards.grafana import (
    DATASOURCE_UID,
    barchart,
    colour_by_value,
    columns,
    constant,
    dashboard,
    first_ranked,
    gauge,
    geomap,
    not_null,
    query_variable,
    shared,
    shown_rows,
    stat,
    table,
    timeseries,
)
from schemas.metrics import BY_NAME, CATALOGUE, SITE_METRICS

AT = "$__toTime_ms"
TZ = "${tz:sqlstring}"
DEFAULT_TZ = "Asia/Shanghai"

# A tile per figure, in the catalogue's order; coverage has its own gauge.
TILES = tuple(m for m in CATALOGUE if m.name != "coverage")


def tz_variable(zone: str) -> dict[str, Any]:
    return constant("tz", zone, "time zone (MUSTER_TZ)")


# The wall's one read of every site at the cutoff: what the map draws, the ranks by which
# the understaffed list (worst first) and the freshness list (stalest first) keep their
# first 100 rows (0 for a site not on that list), and the SPEC §4 metrics about sites
# counted over them (on every row: the tiles and the gauge show the last). Column name ->
# expression.
PLAIN = "site_id name district street lat lon status active people required short last_activity"
SITE_LIST_SELECT = {
    **{name: name for name in PLAIN.split()},
    "minutes_quiet": f"dateDiff('minute', last_activity, {AT})",
    "worst": "if(status = 'understaffed', row_number() OVER (PARTITION BY status = "
    "'understaffed' ORDER BY short DESC, people ASC, site_id), 0)",
    "stalest": "if(active, row_number() OVER (PARTITION BY active "
    "ORDER BY last_activity ASC NULLS FIRST, site_id), 0)",
    "sites_active": "countIf(active) OVER ()",
    "sites_covered": "countIf(status = 'covered') OVER ()",
    "coverage": "if(sites_active = 0, 0, sites_covered / sites_active)",
}
SITE_LIST_COLUMNS = list(SITE_LIST_SELECT)
SITE_LIST = (
    "SELECT "
    + ", ".join(e if e == n else f"{e} AS {n}" for n, e in SITE_LIST_SELECT.items())
    + f" FROM site_board_at(at = {AT}) ORDER BY site_id"
)


def wall(zone: str = DEFAULT_TZ) -> dict[str, Any]:
    panels = []
    # every tile shows a column of one counts_tz call (panel 1's), but the tiles about
    # sites and the gauge, which show a column of the map's site_board_at read: two
    # queries per refresh instead of one per figure, and the gauge counts the sites the
    # map colours
    every = f"SELECT * FROM counts_tz(at = {AT}, tz = {TZ})"
    board_id = len(TILES) + 2  # the map's, after the tiles and the gauge
    for n, metric in enumerate(TILES):
        decimals = 1 if metric.kind == "hours" else 0
        title = f"{metric.zh}{'（小时）' if metric.kind == 'hours' else ''} {metric.en}"
        tile = stat(title, every, ((n % 6) * 4, (n // 6) * 4, 4, 4), "short", decimals)
        tile["options"]["reduceOptions"]["fields"] = f"/^{metric.name}$/"
        source = board_id if metric.name in SITE_METRICS else 1
        panels.append(tile if n == 0 else shared(tile, source, metric.name))
    coverage = BY_NAME["coverage"]
    gauged = gauge(f"{coverage.zh} {coverage.en}", every, (0, 8, 6, 8))
    panels.append(shared(gauged, board_id, coverage.name))
    # the map and the site lists show one site_board_at read (the map's): each keeps its
    # rows by a rank computed there; one query per refresh instead of four
    assert board_id == len(panels) + 1
    sites_map = geomap("点位状态 Sites by status", SITE_LIST, (0, 25, 14, 12))
    # the map shows each site's own columns, not the ranks and counts it hands the others
    own = [name for name in SITE_LIST_COLUMNS if name not in ("worst", "stalest", *SITE_METRICS)]
    sites_map["transformations"] = [not_null("lat", "lon"), columns(own, SITE_LIST_COLUMNS)]
    panels.append(sites_map)
    understaffed = ["name", "district", "street", "short", "people", "required", "last_activity"]
    panels.append(
        shown_rows(
            table(
                "缺员点位 Understaffed sites (worst first)",
                "",
                (6, 8, 10, 8),
                [colour_by_value("short", [(None, "yellow"), (2, "orange"), (4, "red")])],
            ),
            board_id,
            first_ranked("worst", 100, understaffed, SITE_LIST_COLUMNS),
        )
    )
    panels.append(
        table(
            "未解除告警 Open alerts",
            "SELECT a.opened_at AS opened_at, a.site_id AS site_id, s.name AS name, "
            "s.district AS district, toString(a.short) AS short, a.people AS people "
            f"FROM alerts_current AS a LEFT JOIN sites_at(at = {AT}) AS s "
            "ON s.site_id = a.site_id WHERE a.resolved_at IS NULL ORDER BY opened_at DESC",
            (16, 8, 8, 8),
        )
    )
    panels.append(
        timeseries(
            "各区在岗人数 On post over the day, by district (by city when several)",
            # $series: by district in one city, by city when the store holds more (a
            # national wall: hundreds of districts are no chart, and a city's lines are)
            "SELECT time, if(district = '', city, district) AS area, people "
            f"FROM ${{series}}(at = {AT}, tz = {TZ}, step_s = $__interval_s) "
            "ORDER BY time, area",
            (0, 16, 14, 9),
        )
    )
    panels.append(
        barchart(
            "各单位上岗时长 Service hours by organisation",
            "SELECT org, round(hours, 1) AS service_hours "
            f"FROM org_hours_at(at = {AT}) ORDER BY service_hours DESC",
            (14, 16, 10, 9),
            unit="h",
        )
    )
    quiet = ["name", "district", "last_activity", "minutes_quiet"]
    panels.append(
        shown_rows(
            table(
                "最近活动 Freshness: last activity per active site (stalest first)",
                "",
                (14, 25, 10, 12),
                [
                    colour_by_value(
                        "minutes_quiet", [(None, "green"), (120, "orange"), (360, "red")]
                    )
                ],
            ),
            board_id,
            first_ranked("stalest", 100, quiet, SITE_LIST_COLUMNS),
        )
    )
    series = query_variable(
        "series",
        "在岗曲线 On post series",
        "SELECT if(uniqExact(city) > 1, 'on_post_series_by_city_at', 'on_post_series_at') "
        f"FROM sites_at(at = {AT})",
        include_all=False,
        hidden=True,
    )
    return dashboard(
        "muster-wall", "muster · 指挥中心 Command centre wall", panels, [tz_variable(zone), series]
    )


SITE_FILTER = (
    "(${city:sqlstring} = '' OR city = ${city:sqlstring}) "
    "AND (${district:sqlstring} = '' OR district = ${district:sqlstring}) "
    "AND (${street:sqlstring} = '' OR street = ${street:sqlstring})"
)


def site(zone: str = DEFAULT_TZ) -> dict[str, Any]:
    board = f"site_board_at(at = {AT})"
    variables = [
        tz_variable(zone),
        query_variable("city", "城市 City", f"SELECT DISTINCT city FROM {board} ORDER BY city"),
        query_variable(
            "district",
            "区 District",
            f"SELECT DISTINCT district FROM {board} "
            "WHERE $__conditionalAll(city = ${city:sqlstring}, $city) "
            "ORDER BY district",
        ),
        query_variable(
            "street",
            "街道 Street",
            f"SELECT DISTINCT street FROM {board} "
            "WHERE (${city:sqlstring} = '' OR city = ${city:sqlstring}) "
            "AND (${district:sqlstring} = '' OR district = ${district:sqlstring}) "
            "AND street IS NOT NULL "
            "ORDER BY street",
        ),
        query_variable(
            "site",
            "点位 Site",
            f"SELECT site_id AS __value, name AS __text FROM {board} WHERE {SITE_FILTER} "
            "ORDER BY name",
            include_all=False,
        ),
    ]
    the_site = "site_id = ${site:sqlstring}"
    panels = [
        table(
            "岗位配置 On post by role against requirement (at the picker's end)",
            "SELECT role, on_post[role] AS on_post_in_role, "
            "requirements[role] AS required_in_role, "
            "greatest(toInt64(requirements[role]) - toInt64(on_post[role]), 0) AS short_in_role "
            f"FROM {board} ARRAY JOIN arraySort(arrayDistinct(arrayConcat(mapKeys(requirements), "
            f"mapKeys(on_post)))) AS role WHERE {the_site} ORDER BY role",
            (0, 0, 10, 8),
            [colour_by_value("short_in_role", [(None, "green"), (1, "red")])],
        ),
        table(
            "点位状态 Site status",
            "SELECT name, district, street, kind, status, people, required, short, "
            f"last_activity FROM {board} WHERE {the_site}",
            (10, 0, 14, 8),
        ),
        timeseries(
            "在岗人数（按岗位） On post over time, by role",
            "SELECT time, role, people FROM site_on_post_series(site_id = ${site:sqlstring}, "
            "from = $__fromTime_ms, to = $__toTime_ms, step_s = $__interval_s) ORDER BY time",
            (0, 8, 24, 8),
        ),
        table(
            "班次 Shifts",
            "SELECT person_id, role, org, team_id, started_at, ended_at, reason, "
            "round(hours, 2) AS shift_hours FROM shifts_current "
            f"WHERE {the_site} AND $__timeFilter(started_at) ORDER BY started_at DESC LIMIT 500",
            (0, 16, 16, 10),
        ),
        table(
            "告警 Alerts",
            "SELECT opened_at, resolved_at, toString(short) AS short, people FROM alerts_current "
            f"WHERE {the_site} ORDER BY opened_at DESC LIMIT 100",
            (16, 16, 8, 10),
        ),
    ]
    return dashboard("muster-site", "muster · 点位详情 Site drill-down", panels, variables)


def orgs(zone: str = DEFAULT_TZ) -> dict[str, Any]:
    teams = f"team_board_at(at = {AT})"
    variables = [
        tz_variable(zone),
        query_variable(
            "org", "单位 Organisation", f"SELECT DISTINCT org FROM {teams} ORDER BY org"
        ),
    ]
    by_org = "(${org:sqlstring} = '' OR org = ${org:sqlstring})"
    panels = [
        table(
            "各单位 By organisation: hours, people, person-times",
            "SELECT org, round(sum(hours), 2) AS service_hours, sum(person_times) AS times, "
            "sum(people) AS people_in_teams FROM " + teams + " GROUP BY org "
            "ORDER BY service_hours DESC",
            (0, 0, 12, 9),
        ),
        barchart(
            "各单位上岗时长 Service hours by organisation",
            f"SELECT org, round(sum(hours), 1) AS service_hours FROM {teams} GROUP BY org "
            "ORDER BY service_hours DESC",
            (12, 0, 12, 9),
            unit="h",
        ),
        barchart(
            "服务队前二十 Top 20 teams by hours",
            "SELECT concat(team_id, ' (', org, ')') AS team, round(hours, 1) AS service_hours "
            f"FROM {teams} WHERE team_id != '' AND {by_org} ORDER BY service_hours DESC LIMIT 20",
            (0, 9, 12, 10),
            unit="h",
        ),
        table(
            "服务队 Teams",
            "SELECT org, team_id, round(hours, 2) AS service_hours, person_times AS times, "
            f"people AS team_people FROM {teams} WHERE team_id != '' AND {by_org} "
            "ORDER BY service_hours DESC LIMIT 1000",
            (12, 9, 12, 10),
        ),
        table(
            "志愿服务时长（认证用） Service hours per person, for certificates",
            "SELECT person_id, org, team_id, person_times AS times, "
            "round(hours, 2) AS service_hours, round(hours_auto, 2) AS unconfirmed_hours, "
            "first_shift, last_shift FROM " + f"person_hours_at(at = {AT}) WHERE {by_org} "
            "ORDER BY service_hours DESC, person_id",
            (0, 19, 24, 12),
        ),
    ]
    return dashboard(
        "muster-orgs", "muster · 单位与服务队 Organisations and teams", panels, variables
    )


def health(zone: str = DEFAULT_TZ) -> dict[str, Any]:
    panels = [
        timeseries(
            "入库事件 Events stored per interval (by event time)",
            "SELECT $__timeInterval(ts) AS time, count() AS events FROM events "
            "WHERE $__timeFilter(ts) GROUP BY time ORDER BY time",
            (0, 0, 12, 8),
        ),
        timeseries(
            "拒收 DLQ records per interval",
            "SELECT $__timeInterval(received_at) AS time, count() AS rejected FROM dlq "
            "WHERE $__timeFilter(received_at) GROUP BY time ORDER BY time",
            (12, 0, 12, 8),
        ),
        table(
            "拒收原因 DLQ reasons",
            "SELECT error, topic, count() AS records, max(received_at) AS last_seen FROM dlq "
            "WHERE $__timeFilter(received_at) GROUP BY error, topic "
            "ORDER BY records DESC LIMIT 100",
            (0, 8, 16, 9),
        ),
        stat(
            "最新事件距今（秒） Newest stored event, seconds behind",
            "SELECT dateDiff('second', max(ts), now64()) AS seconds_behind FROM events",
            (16, 8, 8, 9),
            unit="s",
        ),
        timeseries(
            "告警开启 Alerts opened per interval",
            "SELECT $__timeInterval(opened_at) AS time, count() AS opened FROM alerts_current "
            "WHERE $__timeFilter(opened_at) GROUP BY time ORDER BY time",
            (0, 17, 24, 8),
        ),
    ]
    return dashboard(
        "muster-health",
        "muster · 管道健康 Pipeline health",
        panels,
        [tz_variable(zone)],
        time_from="now-6h",
        refresh="30s",
    )


DASHBOARDS = {"wall": wall, "site": site, "orgs": orgs, "health": health}


# Alert rules: (uid, title, sql whose one value is compared, threshold, for, summary)
RULES = (
    (
        "muster-understaffed-5m",
        "Site understaffed for 5 minutes",
        "SELECT count() AS understaffed_sites FROM alerts_current "
        "WHERE resolved_at IS NULL AND opened_at <= now64() - INTERVAL 5 MINUTE",
        0,
        "1m",
        "{{ $values.A }} site(s) short of staff for 5 minutes or more (muster /api/alerts)",
    ),
    (
        "muster-site-quiet",
        "Active site with no activity for 6 hours",
        "SELECT count() AS quiet_sites FROM site_board_at(at = now64()) "
        "WHERE active AND (last_activity IS NULL OR last_activity < now64() - INTERVAL 6 HOUR)",
        0,
        "10m",
        "{{ $values.A }} active site(s) with no check-in or check-out for 6 hours",
    ),
    (
        "muster-dlq-spike",
        "DLQ spike",
        "SELECT count() AS rejected FROM dlq WHERE received_at > now64() - INTERVAL 5 MINUTE",
        50,
        "0s",
        "{{ $values.A }} records rejected to the DLQ in 5 minutes",
    ),
)


def alert_rules() -> dict[str, Any]:
    """Grafana's alerting file provisioning (apiVersion 1): one group in the muster folder."""
    rules = []
    for uid, title, sql, threshold, pending, summary in RULES:
        rules.append(
            {
                "uid": uid,
                "title": title,
                "condition": "C",
                "data": [
                    {
                        "refId": "A",
                        "relativeTimeRange": {"from": 600, "to": 0},
                        "datasourceUid": DATASOURCE_UID,
                        "model": {
                            "refId": "A",
                            "editorType": "sql",
                            "rawSql": sql,
                            "queryType": "table",
                            "format": 1,
                        },
                    },
                    {
                        "refId": "B",
                        "datasourceUid": "__expr__",
                        "model": {
                            "refId": "B",
                            "type": "reduce",
                            "expression": "A",
                            "reducer": "last",
                        },
                    },
                    {
                        "refId": "C",
                        "datasourceUid": "__expr__",
                        "model": {
                            "refId": "C",
                            "type": "threshold",
                            "expression": "B",
                            "conditions": [{"evaluator": {"type": "gt", "params": [threshold]}}],
                        },
                    },
                ],
                "noDataState": "OK",
                "execErrState": "Error",
                "for": pending,
                "annotations": {"summary": summary},
                "labels": {"team": "command-centre"},
            }
        )
    return {
        "apiVersion": 1,
        "groups": [
            {"orgId": 1, "name": "muster", "folder": "muster", "interval": "1m", "rules": rules}
        ],
    }
