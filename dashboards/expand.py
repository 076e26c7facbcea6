"""Expand a panel's SQL as Grafana and the ClickHouse plugin (v4) do, so tests can run it.

Grafana first interpolates template variables (`$name`, `${name}`, `[[name]]`, and
`${name:sqlstring}`: the value quoted, each `'` doubled) and its globals (`$__from`,
`$__to`, `$__interval`, `$__interval_ms`); the plugin then expands its macros
(pkg/macros/macros.go in grafana/clickhouse-datasource):

    $__fromTime / $__toTime           toDateTime(<unix seconds>)
    $__fromTime_ms / $__toTime_ms     fromUnixTimestamp64Milli(<unix ms>)
    $__timeFilter(c)                  c >= toDateTime(..) AND c <= toDateTime(..)
    $__timeFilter_ms(c)               the same with fromUnixTimestamp64Milli
    $__dateFilter(c)                  c >= toDate('..') AND c <= toDate('..')
    $__timeInterval(c)                toStartOfInterval(toDateTime(c), INTERVAL <s> second)
    $__timeInterval_ms(c)             the same over toDateTime64(c, 3), INTERVAL <ms> millisecond
    $__interval_s                     the interval in whole seconds (at least 1)
    $__conditionalAll(cond, $v)       `cond`, or 1=1 when the variable is at All
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# Grafana's interval for a panel: the time range over its points (maxDataPoints, about its
# width in pixels), rounded to one of these (rangeutil.roundInterval in @grafana/data):
# below each bound in ms, the interval it rounds to.
ROUNDED_MS = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000),
    (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000),
    (45_000, 30_000), (90_000, 60_000), (210_000, 120_000), (450_000, 300_000),
    (750_000, 600_000), (1_050_000, 900_000), (1_500_000, 1_200_000), (2_700_000, 1_800_000),
    (5_400_000, 3_600_000), (9_000_000, 7_200_000), (16_200_000, 10_800_000),
    (32_400_000, 21_600_000), (86_400_000, 43_200_000), (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
)  # fmt: skip


def grafana_interval(start: datetime, end: datetime, points: int) -> timedelta:
    """The `$__interval` Grafana gives a panel of `points` points over [start, end]."""
    ms = (end - start).total_seconds() * 1000 / points
    rounded = next((to for below, to in ROUNDED_MS if ms < below), 31_536_000_000)
    return timedelta(milliseconds=rounded)


@dataclass
class Context:
    start: datetime
    end: datetime
    interval: timedelta = timedelta(minutes=1)
    variables: dict[str, str] = field(default_factory=dict)  # name -> value ('' is All)
    all_selected: frozenset[str] = frozenset()


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _seconds(ts: datetime) -> int:
    return int(ts.timestamp())


def _args(sql: str, open_at: int) -> tuple[list[str], int]:
    """Arguments of the macro call whose '(' is at `open_at`; and the index after ')'."""
    depth, args, current = 0, [], ""
    i = open_at
    while i < len(sql):
        ch = sql[i]
        if ch == "(":
            depth += 1
            if depth > 1:
                current += ch
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(current.strip())
                return args, i + 1
            current += ch
        elif ch == "," and depth == 1:
            args.append(current.strip())
            current = ""
        else:
            current += ch
        i += 1
    raise ValueError(f"unclosed macro call in: {sql[open_at - 20 : open_at + 40]!r}")


def interpolate(sql: str, ctx: Context) -> str:
    """Grafana's template variables and time globals."""

    def var(match: re.Match[str]) -> str:
        name = match.group("a") or match.group("b") or match.group("c")
        if name in ("__from", "__to"):
            return str(_ms(ctx.start if name == "__from" else ctx.end))
        if name == "__interval_ms":
            return str(int(ctx.interval.total_seconds() * 1000))
        if name == "__interval":
            return f"{max(int(ctx.interval.total_seconds()), 1)}s"
        if name not in ctx.variables:
            return match.group(0)  # a plugin macro, or not a variable: left alone
        value = ctx.variables[name]
        if match.group("format") == "sqlstring":  # quoted, each ' doubled (Grafana's format)
            return "'" + value.replace("'", "''") + "'"
        return value.replace("'", "\\'")

    pattern = r"\$\{(?P<a>\w+)(?::(?P<format>\w+))?\}|\[\[(?P<b>\w+)\]\]|\$(?P<c>\w+)"
    return re.sub(pattern, var, sql)


def expand(sql: str, ctx: Context) -> str:
    """The SQL the plugin sends to ClickHouse for `sql` in `ctx`."""
    sql = _conditional_all(sql, ctx)
    sql = interpolate(sql, ctx)
    start, end = ctx.start.astimezone(UTC), ctx.end.astimezone(UTC)
    seconds = max(int(ctx.interval.total_seconds()), 1)
    milliseconds = max(int(ctx.interval.total_seconds() * 1000), 1)
    calls: dict[str, Callable[[str], str]] = {
        "timeFilter_ms": lambda c: (
            f"{c} >= fromUnixTimestamp64Milli({_ms(start)}) "
            f"AND {c} <= fromUnixTimestamp64Milli({_ms(end)})"
        ),
        "timeFilter": lambda c: (
            f"{c} >= toDateTime({_seconds(start)}) AND {c} <= toDateTime({_seconds(end)})"
        ),
        "dateFilter": lambda c: (
            f"{c} >= toDate('{start:%Y-%m-%d}') AND {c} <= toDate('{end:%Y-%m-%d}')"
        ),
        "timeInterval_ms": lambda c: (
            f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {milliseconds} millisecond)"
        ),
        "timeInterval": lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {seconds} second)",
    }
    for name, render in calls.items():
        token = f"$__{name}("
        while token in sql:
            at = sql.index(token)
            args, after = _args(sql, at + len(token) - 1)
            if len(args) != 1:
                raise ValueError(f"$__{name} takes 1 argument, got {len(args)}")
            sql = sql[:at] + render(args[0]) + sql[after:]
    values = {
        "fromTime_ms": f"fromUnixTimestamp64Milli({_ms(start)})",
        "toTime_ms": f"fromUnixTimestamp64Milli({_ms(end)})",
        "fromTime": f"toDateTime({_seconds(start)})",
        "toTime": f"toDateTime({_seconds(end)})",
        "interval_s": str(seconds),
    }
    for name, text in values.items():  # the _ms names first: $__toTime is their prefix
        sql = re.sub(rf"\$__{name}(\(\))?(?!\w)", text, sql)
    if "$__" in sql:
        raise ValueError(f"unexpanded macro in: {sql}")
    return sql


def _conditional_all(sql: str, ctx: Context) -> str:
    token = "$__conditionalAll("
    while token in sql:
        at = sql.index(token)
        args, after = _args(sql, at + len(token) - 1)
        if len(args) != 2:
            raise ValueError(f"$__conditionalAll takes 2 arguments, got {len(args)}")
        name = args[1].lstrip("$").strip("{}")
        is_all = name in ctx.all_selected or ctx.variables.get(name, "") == ""
        sql = sql[:at] + ("1=1" if is_all else args[0]) + sql[after:]
    return sql


Row = dict[str, Any]


def transform(rows: list[Row], transformations: list[dict[str, Any]]) -> list[Row]:
    """Apply the Grafana transformations muster's panels use to a query's rows, as Grafana
    does: `filterByValue` (include, all of `isNotNull` / `between`, which excludes both
    ends), `sortBy` (one field; nulls first ascending) and `organize` (columns kept and
    their order). Others are refused, so a test cannot pass on one it does not know."""
    for step in transformations:
        options = step["options"]
        if step["id"] == "filterByValue":
            assert options["type"] == "include" and options["match"] == "all", options
            tests = [_value_test(f["fieldName"], f["config"]) for f in options["filters"]]
            rows = [row for row in rows if all(test(row) for test in tests)]
        elif step["id"] == "sortBy":
            (sort,) = options["sort"]
            name, desc = sort["field"], sort.get("desc", False)
            rows = sorted(rows, key=lambda r: (r[name] is not None, r[name]), reverse=desc)
        elif step["id"] == "organize":
            dropped = {n for n, v in options.get("excludeByName", {}).items() if v}
            order = options.get("indexByName", {})
            kept = [n for n in (rows[0] if rows else {}) if n not in dropped]
            kept.sort(key=lambda n: order.get(n, len(order)))
            rows = [{n: row[n] for n in kept} for row in rows]
        else:
            raise ValueError(f"transformation {step['id']!r} is not emulated")
    return rows


def _value_test(name: str, config: dict[str, Any]) -> Callable[[Row], bool]:
    kind, options = config["id"], config.get("options", {})
    if kind == "isNotNull":
        return lambda row: row[name] is not None
    if kind == "between":
        return lambda row: row[name] is not None and options["from"] < row[name] < options["to"]
    raise ValueError(f"value matcher {kind!r} is not emulated")
