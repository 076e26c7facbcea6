"""Small builders for Grafana dashboard JSON (schema 39) over the ClickHouse plugin (v4).

Plain dicts, one function per panel kind: what a panel needs is its title, its SQL, where
it sits and how its numbers read. The plugin's query model: `editorType` "sql", `rawSql`,
`queryType` "table" or "timeseries", `format` 1 (table) or 0 (time series).
"""

from __future__ import annotations

from typing import Any

from schemas.metrics import COVERAGE_TARGET

DATASOURCE_UID = "muster-clickhouse"  # the data source muster provisions and pushes
DATASOURCE_TYPE = "grafana-clickhouse-datasource"
# Panels and query variables name the data source through the dashboard's `datasource`
# variable, so a dashboard imported into any Grafana runs on whichever ClickHouse data
# source is chosen there: on import (`__inputs`) or from the variable's menu.
DATASOURCE_INPUT = "DS_CLICKHOUSE"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": "${datasource}"}

# Grafana's "-- Dashboard --" data source: a panel shows another panel's query results,
# so a query whose columns feed several panels runs once per refresh.
SHARED = {"type": "datasource", "uid": "-- Dashboard --"}

Panel = dict[str, Any]


def _shared_target(source_id: int) -> dict[str, Any]:
    """The "-- Dashboard --" query for panel `source_id`'s results as its query gave them,
    not as its own transformations left them (Grafana's default, said here)."""
    return {"refId": "A", "datasource": SHARED, "panelId": source_id, "withTransforms": False}


def shared(panel: Panel, source_id: int, field: str) -> Panel:
    """`panel` showing the column `field` of panel `source_id`'s results instead of
    running a query of its own."""
    panel["datasource"] = SHARED
    panel["targets"] = [_shared_target(source_id)]
    panel["options"]["reduceOptions"]["fields"] = f"/^{field}$/"
    return panel


def shown_rows(panel: Panel, source_id: int, transformations: list[dict[str, Any]]) -> Panel:
    """`panel` (a table or map) showing panel `source_id`'s rows through Grafana's
    `transformations` instead of running a query of its own."""
    panel["datasource"] = SHARED
    panel["targets"] = [_shared_target(source_id)]
    panel["transformations"] = transformations
    return panel


def first_ranked(
    field: str, limit: int, shown: list[str], every: list[str]
) -> list[dict[str, Any]]:
    """Transformations keeping the rows whose `field` is 1..`limit`, in that order, with
    the columns `shown` of `every` the query returns."""
    between = {"id": "between", "options": {"from": 0, "to": limit + 1}}  # exclusive
    return [
        {
            "id": "filterByValue",
            "options": {
                "type": "include",
                "match": "all",
                "filters": [{"fieldName": field, "config": between}],
            },
        },
        {"id": "sortBy", "options": {"sort": [{"field": field, "desc": False}]}},
        columns(shown, every),
    ]


def not_null(*fields: str) -> dict[str, Any]:
    """A transformation keeping the rows where every one of `fields` has a value."""
    filters = [{"fieldName": f, "config": {"id": "isNotNull", "options": {}}} for f in fields]
    return {
        "id": "filterByValue",
        "options": {"type": "include", "match": "all", "filters": filters},
    }


def columns(shown: list[str], every: list[str]) -> dict[str, Any]:
    """A transformation showing the columns `shown`, in that order, of `every` the query
    returns."""
    return {
        "id": "organize",
        "options": {
            "excludeByName": {name: True for name in every if name not in shown},
            "indexByName": {name: i for i, name in enumerate(shown)},
            "renameByName": {},
        },
    }


def shown_field(panel: Panel) -> str | None:
    """The one column a stat or gauge shows, when it names one (`/^name$/`)."""
    fields = panel.get("options", {}).get("reduceOptions", {}).get("fields", "")
    return fields[2:-2] if fields.startswith("/^") and fields.endswith("$/") else None


def target(sql: str, series: bool = False) -> dict[str, Any]:
    return {
        "refId": "A",
        "datasource": DATASOURCE,
        "editorType": "sql",
        "rawSql": sql,
        "queryType": "timeseries" if series else "table",
        "format": 0 if series else 1,
    }


def _panel(kind: str, title: str, sql: str, pos: tuple[int, int, int, int], **extra: Any) -> Panel:
    x, y, w, h = pos
    series = extra.pop("series", False)
    panel: Panel = {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [target(sql, series)],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    for key, value in extra.items():
        if key in ("defaults", "overrides"):
            panel["fieldConfig"][key] = value
        else:
            panel[key] = value
    return panel


def stat(
    title: str,
    sql: str,
    pos: tuple[int, int, int, int],
    unit: str = "short",
    decimals: int | None = 0,
) -> Panel:
    defaults: dict[str, Any] = {"unit": unit, "color": {"mode": "fixed", "fixedColor": "blue"}}
    if decimals is not None:
        defaults["decimals"] = decimals
    return _panel(
        "stat",
        title,
        sql,
        pos,
        defaults=defaults,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "value",
            "justifyMode": "center",
        },
    )


def gauge(title: str, sql: str, pos: tuple[int, int, int, int]) -> Panel:
    # red below the command centre's target, green at or above it, as on the wall
    steps = [{"color": "red", "value": None}, {"color": "green", "value": COVERAGE_TARGET}]
    return _panel(
        "gauge",
        title,
        sql,
        pos,
        defaults={
            "unit": "percentunit",
            "min": 0,
            "max": 1,
            "decimals": 1,
            "thresholds": {"mode": "absolute", "steps": steps},
        },
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
    )


def table(
    title: str,
    sql: str,
    pos: tuple[int, int, int, int],
    overrides: list[dict[str, Any]] | None = None,
) -> Panel:
    return _panel(
        "table",
        title,
        sql,
        pos,
        overrides=overrides or [],
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
    )


def timeseries(title: str, sql: str, pos: tuple[int, int, int, int], unit: str = "short") -> Panel:
    return _panel(
        "timeseries",
        title,
        sql,
        pos,
        series=True,
        defaults={"unit": unit, "custom": {"lineInterpolation": "stepAfter", "fillOpacity": 10}},
        options={
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"]}
        },
    )


def barchart(title: str, sql: str, pos: tuple[int, int, int, int], unit: str = "short") -> Panel:
    return _panel(
        "barchart",
        title,
        sql,
        pos,
        defaults={"unit": unit},
        options={"orientation": "horizontal", "showValue": "auto", "legend": {"showLegend": False}},
    )


def geomap(title: str, sql: str, pos: tuple[int, int, int, int]) -> Panel:
    """Sites as dots at lat/lon, coloured by the `status` column."""
    colours = {"covered": "green", "understaffed": "red", "unstaffed": "orange", "inactive": "gray"}
    mappings = [
        {
            "type": "value",
            "options": {s: {"color": c, "index": i} for i, (s, c) in enumerate(colours.items())},
        }
    ]
    return _panel(
        "geomap",
        title,
        sql,
        pos,
        defaults={"mappings": mappings, "color": {"mode": "thresholds"}},
        options={
            "view": {"id": "fit", "lat": 0, "lon": 0, "zoom": 10},
            "basemap": {"type": "default", "name": "Basemap"},
            "layers": [
                {
                    "type": "markers",
                    "name": "sites",
                    "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                    "config": {
                        "size": {"fixed": 6},
                        "color": {"field": "status", "fixed": "green"},
                        "showLegend": True,
                    },
                    "tooltip": True,
                }
            ],
        },
    )


def colour_by_value(field: str, steps: list[tuple[float | None, str]]) -> dict[str, Any]:
    """A table override: cells of `field` coloured by thresholds."""
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            {
                "id": "thresholds",
                "value": {
                    "mode": "absolute",
                    "steps": [{"value": v, "color": c} for v, c in steps],
                },
            },
        ],
    }


def datasource_variable() -> dict[str, Any]:
    """The `datasource` variable every panel reads through: any ClickHouse data source, at
    first the one chosen on import (or, provisioned, the first ClickHouse data source)."""
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "ClickHouse",
        "query": DATASOURCE_TYPE,
        "current": {"text": "ClickHouse", "value": "${" + DATASOURCE_INPUT + "}"},
        "hide": 0,
        "refresh": 1,
        "regex": "",
    }


INPUTS = [
    {
        "name": DATASOURCE_INPUT,
        "label": "ClickHouse",
        "description": "the ClickHouse data source holding muster's store",
        "type": "datasource",
        "pluginId": DATASOURCE_TYPE,
        "pluginName": "ClickHouse",
    }
]
REQUIRES = [
    {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
    {"type": "datasource", "id": DATASOURCE_TYPE, "name": "ClickHouse", "version": "4.0.0"},
]


def constant(name: str, value: str, label: str) -> dict[str, Any]:
    return {"type": "constant", "name": name, "label": label, "query": value, "hide": 2}


def query_variable(
    name: str, label: str, sql: str, include_all: bool = True, hidden: bool = False
) -> dict[str, Any]:
    """A variable filled by a query; `__value` / `__text` columns give value and label.
    A hidden one is not shown on the dashboard: its panels' SQL uses it."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "query": sql,
        "definition": sql,
        "refresh": 2,  # on time range change
        "hide": 2 if hidden else 0,
        "includeAll": include_all,
        "allValue": "",
        "multi": False,
        "sort": 1,
        "current": {},
    }


def dashboard(
    uid: str,
    title: str,
    panels: list[Panel],
    variables: list[dict[str, Any]] | None = None,
    time_from: str = "now/d",
    refresh: str = "10s",
    tags: tuple[str, ...] = ("muster",),
) -> dict[str, Any]:
    for n, panel in enumerate(panels, 1):
        panel["id"] = n
    return {
        "__inputs": INPUTS,
        "__requires": REQUIRES,
        "uid": uid,
        "title": title,
        "tags": list(tags),
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "templating": {"list": [datasource_variable(), *(variables or [])]},
        "annotations": {"list": []},
        "panels": panels,
    }


def variable_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, SQL) of `board`'s query variables, in order: Grafana runs them when the time
    range changes (each refresh of a wall that follows now) before the panels' queries."""
    return [
        (var["name"], var["query"])
        for var in board.get("templating", {}).get("list", [])
        if var["type"] == "query"
    ]


def refresh_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, SQL) for every query one refresh of `board` sends to the data source:
    a panel showing another's results sends none."""
    return [
        (panel["title"], target["rawSql"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
        if "panelId" not in target
    ]
