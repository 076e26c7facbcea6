"""The read API of SPEC §7, served by every worker on MUSTER_WORKER_PORT.

    GET /api/metrics?at=&city=&district=&street=&community=&site=&org=&role=&team=
    GET /api/sites?at=&city=&district=&street=&community=&site=
    GET /api/alerts?state=open|all&at=
    GET /healthz, GET /readyz

Handlers parse (a bad or unknown parameter is a 400 naming it), call the named queries on
the store thread, and answer. `/api/metrics` returns exactly what `muster metrics --json`
prints, from the same function.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import faust
from faust.web import Request, Response, View

from schemas.errors import MusterError, UnknownScope
from schemas.events import parse_rfc3339
from sinks.queries import Scope, alerts, metrics, site_inputs
from sinks.reader import Reader
from streams.core.rows import from_micros, to_micros
from streams.core.status import SiteAttrs, iso, iso_micros, site_status

SITE_PARAMS = {"city": "city", "district": "district", "street": "street"}
SITE_PARAMS |= {"community": "community", "site": "site_id"}
PERSON_PARAMS = {"org": "org", "role": "role", "team": "team_id"}


class BadParameter(MusterError):
    """A query parameter the API does not know, or whose value it cannot read."""


def parse_query(
    query: Mapping[str, str], allowed: Mapping[str, str], zone: ZoneInfo
) -> tuple[datetime, Scope]:
    """`at` (default now) and the scope from a query string; BadParameter names the culprit."""
    unknown = sorted(set(query) - set(allowed) - {"at"})
    if unknown:
        known = ", ".join(["at", *allowed])
        raise BadParameter(f"unknown parameter {unknown[0]!r} (known: {known})")
    at = datetime.now(zone)
    if "at" in query:
        # An unencoded "+08:00" arrives as " 08:00": nothing else could be meant.
        text = re.sub(r" (\d\d:\d\d)$", r"+\1", query["at"])
        try:
            at = parse_rfc3339(text)
        except ValueError as exc:
            raise BadParameter(f"at: {exc} (got {query['at']!r})") from exc
    scope = Scope(**{allowed[name]: value or None for name, value in query.items() if name != "at"})
    return at, scope


def site_statuses(reader: Reader, at: datetime, zone: ZoneInfo, scope: Scope) -> dict[str, Any]:
    """SPEC §7 `/api/sites`: the SPEC §6 status of every site known at `at`, by site_id."""
    statuses = []
    for row in site_inputs(reader, at, scope):
        last = row.pop("last_activity_us")
        on_post = row.pop("on_post")
        attrs = SiteAttrs.from_json(row)
        when = None if last is None else from_micros(last)
        statuses.append(site_status(attrs, on_post, when, zone))
    return {"at": iso(at, zone), "sites": statuses}


def alert_list(
    reader: Reader, zone: ZoneInfo, state: str, at: datetime | None = None
) -> dict[str, Any]:
    """SPEC §7 `/api/alerts`: newest `opened_at` first. With `at`, the alerts as they stood
    then: those opened by `at`, resolved only if that was by `at`, and an alert open then
    with its site's `short` and `people` at `at`."""
    if state not in ("open", "all"):
        raise BadParameter(f"state: must be 'open' or 'all' (got {state!r})")
    cutoff = None if at is None else to_micros(at)
    rows = alerts(reader, open_only=state == "open", at=cutoff)
    stood: dict[str, dict[str, Any]] = {}
    if at is not None and any(r["resolved_us"] is None or r["resolved_us"] > cutoff for r in rows):
        stood = {s["site_id"]: s for s in site_statuses(reader, at, zone, Scope())["sites"]}
    out = []
    for row in rows:
        opened, resolved = row.pop("opened_us"), row.pop("resolved_us")
        if cutoff is not None and (resolved is None or resolved > cutoff):
            resolved = None
            status = stood.get(row["site_id"])
            if status is not None:
                row |= {"short": status["short"], "people": status["people"]}
        out.append(
            row | {"opened_at": iso_micros(opened, zone), "resolved_at": iso_micros(resolved, zone)}
        )
    return {"alerts": out}


async def answer(view: View, executor: Executor, work: Callable[[], Any]) -> Response:
    """`work()`'s JSON, run on `executor`; 400 for a bad parameter, 503 when the store fails."""
    loop = asyncio.get_running_loop()
    try:
        return view.json(await loop.run_in_executor(executor, work))
    except (BadParameter, UnknownScope) as exc:
        return view.json({"error": str(exc)}, status=400)
    except MusterError as exc:
        return view.json({"error": str(exc)}, status=503)


def add_api(
    app: faust.App,
    reader: Reader,
    executor: Executor,
    zone: ZoneInfo,
    not_ready: Callable[[], list[str]],
) -> None:
    """Route the read API on the worker's web server; queries run on `executor`."""

    def plain(request: Request) -> dict[str, str]:
        return dict(request.query)

    @app.page("/api/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            def work() -> dict[str, Any]:
                at, scope = parse_query(plain(request), SITE_PARAMS | PERSON_PARAMS, zone)
                return metrics(reader, at, zone, scope)

            return await answer(self, executor, work)

    @app.page("/api/sites")
    class SitesView(View):
        async def get(self, request: Request) -> Response:
            def work() -> dict[str, Any]:
                at, scope = parse_query(plain(request), SITE_PARAMS, zone)
                return site_statuses(reader, at, zone, scope)

            return await answer(self, executor, work)

    @app.page("/api/alerts")
    class AlertsView(View):
        async def get(self, request: Request) -> Response:
            query = plain(request)

            def work() -> dict[str, Any]:
                state = query.pop("state", "open")
                at, _ = parse_query(query, {}, zone)  # `at` alone, or a 400 naming the rest
                return alert_list(reader, zone, state, at if "at" in query else None)

            return await answer(self, executor, work)

    @app.page("/healthz")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class ReadyView(View):
        async def get(self, request: Request) -> Response:
            reasons = not_ready()
            loop = asyncio.get_running_loop()
            try:
                await asyncio.wait_for(
                    loop.run_in_executor(executor, reader.query, "SELECT 1"), timeout=5
                )
            except (MusterError, TimeoutError) as exc:
                reasons.append(f"the store does not answer: {exc or 'timed out after 5 s'}")
            if reasons:
                return self.json({"status": "not ready", "reasons": reasons}, status=503)
            return self.json({"status": "ready"})
