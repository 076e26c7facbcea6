"""The built-in wall at GET /: the bulletin figures, coverage, understaffed sites, people on
post over the day by district and open alerts, refreshed every 5 s by wall/wall.js.

Every asset is served from here (a command centre may be air-gapped). The page arrives with
the figures already in it: each headline figure's element carries
`data-metric="<SPEC §4 name>"` and `data-value="<the raw number>"`, from the same function
as `/api/metrics`, and the script keeps them current; `<body data-at>` is the cutoff they
are for (so `/api/metrics?at=<data-at>` answers the same numbers). `/?at=T` pins the wall
to a past cutoff; `/?lang=en` starts it in English.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import faust
from faust.web import Request, Response, View

from dashboards.boards import TILES
from schemas.errors import MusterError
from schemas.metrics import coverage_level
from sinks.queries import Scope, metrics, on_post_series
from sinks.reader import Reader
from streams.web.api import BadParameter, answer, parse_query

ASSETS = Path(__file__).with_name("wall")
TYPES = {".js": "text/javascript", ".css": "text/css"}
BIG = ("recruited", "on_post_now", "on_post_today", "cumulative_people", "person_times", "hours")


def page(figures: dict[str, Any] | None, target: float = 0.8) -> str:
    """The wall's HTML, with `figures` (an /api/metrics answer) filled in when known."""
    figures = figures or {}

    def figure(metric: str, zh: str, en: str, unit: str = "") -> str:
        value = figures.get(metric)
        raw = "" if value is None else str(value)
        shown = "—" if value is None else _shown(metric, value)
        unit_html = f'<span class="unit" data-zh="{unit}" data-en="h">{unit}</span>' if unit else ""
        size = "" if metric in BIG else " small"
        return (
            f'<div class="tile{size}"><div class="label" data-zh="{html.escape(zh)}" '
            f'data-en="{html.escape(en)}">{html.escape(zh)}</div>'
            f'<div class="figure" data-metric="{metric}" data-value="{raw}">{shown}{unit_html}'
            "</div></div>"
        )

    tiles = []
    for metric in TILES:
        tiles.append(figure(metric.name, metric.zh, metric.en, metric.unit("zh")))
    coverage = figures.get("coverage")
    at = figures.get("at", "")
    return TEMPLATE.format(
        tiles="\n".join(tiles),
        coverage_raw="" if coverage is None else str(coverage),
        coverage_shown="—" if coverage is None else f"{coverage * 100:.1f}%",
        coverage_level=coverage_level(coverage, target),
        target=target,
        at=html.escape(str(at)),
    )


def _shown(metric: str, value: float) -> str:
    if metric == "coverage":
        return f"{value * 100:.1f}%"
    return f"{round(value):,}"


TEMPLATE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>muster · 指挥中心</title>
<link rel="stylesheet" href="/wall/wall.css">
</head>
<body data-at="{at}" data-coverage-target="{target}">
<header>
  <h1 data-zh="志愿者在岗态势" data-en="Volunteers on post">志愿者在岗态势</h1>
  <div class="at" id="at">{at}</div>
  <div class="state" id="state"></div>
  <button id="lang" type="button">English</button>
</header>
<section class="tiles">
{tiles}
</section>
<section class="grid">
  <div class="panel coverage {coverage_level}" id="coverage">
    <h2 data-zh="点位覆盖率" data-en="Site coverage">点位覆盖率</h2>
    <div class="figure" data-metric="coverage" data-value="{coverage_raw}">{coverage_shown}</div>
    <div class="bar"><div class="fill" id="cov-fill"></div></div>
    <div class="sub" id="cov-sub"></div>
    <div class="sub target" id="cov-target"></div>
  </div>
  <div class="panel">
    <h2 data-zh="缺员点位（最缺在前）"
        data-en="Understaffed sites (worst first)">缺员点位（最缺在前）</h2>
    <div class="count" id="understaffed-count"></div>
    <div id="understaffed"></div>
  </div>
  <div class="panel alerts">
    <h2 data-zh="未解除告警" data-en="Open alerts">未解除告警</h2>
    <div class="count" id="alerts-count"></div>
    <div id="alerts"></div>
  </div>
  <div class="panel chart">
    <h2 data-zh="各区在岗人数（当日）"
        data-en="People on post today, by district">各区在岗人数（当日）</h2>
    <div id="series"></div>
  </div>
</section>
<script src="/wall/wall.js"></script>
</body>
</html>
"""


def add_wall(
    app: faust.App, reader: Reader, executor: Executor, zone: ZoneInfo, target: float = 0.8
) -> None:
    """Route GET /, its assets, and /api/wall/series on the worker's web server."""

    async def run(work: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, work)

    @app.page("/")
    class WallView(View):
        async def get(self, request: Request) -> Response:
            query = {k: v for k, v in request.query.items() if k == "at"}
            try:
                at, _scope = parse_query(query, {}, zone)
                figures = await run(lambda: metrics(reader, at, zone, Scope()))
            except BadParameter as exc:
                return self.json({"error": str(exc)}, status=400)
            except MusterError:
                figures = None  # the script fills the figures once the store answers
            return self.html(page(figures, target))

    @app.page("/wall/{name}")
    class AssetView(View):
        async def get(self, request: Request, name: str) -> Response:
            path = ASSETS / name
            if path.suffix not in TYPES or path.parent != ASSETS or not path.is_file():
                return self.json({"error": f"no such asset: {name!r}"}, status=404)
            text = path.read_text(encoding="utf-8")
            return self.text(text, content_type=TYPES[path.suffix])

    @app.page("/api/wall/series")
    class SeriesView(View):
        async def get(self, request: Request) -> Response:
            query = dict(request.query)

            def work() -> dict[str, Any]:
                at, _scope = parse_query(query, {}, zone)
                return on_post_series(reader, at, zone)

            return await answer(self, executor, work)
