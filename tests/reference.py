"""A straightforward reference implementation of SPEC §2–4, written apart from the pipeline.

It sees every record at once, in topic order, and computes shifts and metrics the slow,
obvious way. Tests compare the pipeline against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.errors import InvalidEvent
from schemas.events import parse_record


@dataclass
class RefShift:
    person_id: str
    shift_id: str
    site_id: str
    role: str
    org: str
    team_id: str | None
    start: datetime
    end: datetime
    reason: str


@dataclass
class Reference:
    events: list[dict[str, Any]]  # accepted person events, deduplicated, parsed ts
    sites: list[tuple[int, dict[str, Any]]]  # (topic position, accepted site_upserted)
    shifts: list[RefShift]
    orphans: list[dict[str, Any]]
    dlq: int


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00")).astimezone(
        UTC
    )


def build(
    records: list[tuple[str, bytes]], max_shift: timedelta, now: datetime | None = None
) -> Reference:
    """`records`: (topic kind, value) in topic order (per key, as Kafka keeps it)."""
    now = now or datetime.now(UTC)
    seen: set[tuple[str, str]] = set()
    events, sites, dlq = [], [], 0
    for position, (kind, value) in enumerate(records):
        try:
            parse_record(value, kind, now)
        except InvalidEvent:
            dlq += 1
            continue
        event = json.loads(value)
        owner = event["site_id"] if kind == "sites" else event["person_id"]
        if (owner, event["event_id"]) in seen:
            continue
        seen.add((owner, event["event_id"]))
        event = dict(event, ts=_ts(event["ts"]))
        if kind == "sites":
            sites.append((position, event))
        else:
            events.append(event)

    shifts: list[RefShift] = []
    orphans: list[dict[str, Any]] = []
    by_person: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["type"] != "registered":
            by_person.setdefault(e["person_id"], []).append(e)
    for person in sorted(by_person):
        moves = by_person[person]
        moves.sort(key=lambda e: (e["ts"], 0 if e["type"] == "check_out" else 1, e["event_id"]))
        open_: dict[str, Any] | None = None
        for e in moves:
            t = e["ts"]
            if open_ and t > open_["ts"] + max_shift:
                shifts.append(_close(open_, open_["ts"] + max_shift, "auto"))
                open_ = None
            if e["type"] == "check_in":
                if open_:
                    shifts.append(_close(open_, t, "transfer"))
                open_ = e
            elif open_:
                shifts.append(_close(open_, t, "check_out"))
                open_ = None
            else:
                orphans.append(e)
        if open_:
            shifts.append(_close(open_, open_["ts"] + max_shift, "auto"))
    return Reference(events, sites, shifts, orphans, dlq)


def _close(e: dict[str, Any], end: datetime, reason: str) -> RefShift:
    return RefShift(
        e["person_id"],
        e["event_id"],
        e["site_id"],
        e["role"],
        e["org"],
        e.get("team_id"),
        e["ts"],
        end,
        reason,
    )


SITE_SCOPES = ("city", "district", "street", "community", "site_id")
PERSON_SCOPES = ("org", "role", "team_id")


def sites_at(ref: Reference, at: datetime) -> dict[str, dict[str, Any]]:
    latest: dict[str, tuple[tuple[datetime, int], dict[str, Any]]] = {}
    for position, s in ref.sites:
        if s["ts"] <= at:
            order = (s["ts"], position)
            if s["site_id"] not in latest or order > latest[s["site_id"]][0]:
                latest[s["site_id"]] = (order, s)
    return {k: v[1] for k, v in latest.items()}


def metrics(
    ref: Reference, at: datetime, zone: ZoneInfo, scope: dict[str, str] | None = None
) -> dict[str, Any]:
    scope = {k: v for k, v in (scope or {}).items() if v}
    midnight = datetime.combine(at.astimezone(zone).date(), time(0), tzinfo=zone)
    sites = sites_at(ref, at)
    site_scope = {k: v for k, v in scope.items() if k in SITE_SCOPES}
    scoped_sites = {
        sid: s
        for sid, s in sites.items()
        if all((s.get(k) or "") == v for k, v in site_scope.items())
    }

    def keep(s: RefShift) -> bool:
        if s.start > at:
            return False
        if site_scope and s.site_id not in scoped_sites:
            return False
        return all((getattr(s, k) or "") == v for k, v in scope.items() if k in PERSON_SCOPES)

    kept = [s for s in ref.shifts if keep(s)]
    micros = sum(_us(min(s.end, at) - s.start) for s in kept)
    micros_auto = sum(_us(s.end - s.start) for s in kept if s.reason == "auto" and s.end <= at)

    on_post_at: dict[tuple[str, str], set[str]] = {}
    for s in ref.shifts:
        if s.start <= at < s.end:
            on_post_at.setdefault((s.site_id, s.role), set()).add(s.person_id)
    active = [s for s in scoped_sites.values() if s.get("active", True)]
    covered = 0
    for site in active:
        need = {r: m for r, m in (site.get("requirements") or {}).items() if m > 0}
        if need:
            ok = all(len(on_post_at.get((site["site_id"], r), ())) >= m for r, m in need.items())
        else:
            ok = any(sid == site["site_id"] for sid, _ in on_post_at)
        covered += ok

    recruited = None
    if not site_scope and "role" not in scope:
        recruited = len(
            {
                e["person_id"]
                for e in ref.events
                if e["type"] == "registered"
                and e["ts"] <= at
                and all((e.get(k) or "") == v for k, v in scope.items() if k in ("org", "team_id"))
            }
        )
    return {
        "recruited": recruited,
        "on_post_now": len({s.person_id for s in kept if s.end > at}),
        "on_post_today": len({s.person_id for s in kept if s.end > midnight}),
        "cumulative_people": len({s.person_id for s in kept}),
        "person_times": len(kept),
        "hours": micros / 3.6e9,
        "hours_auto": micros_auto / 3.6e9,
        "teams": len({s.team_id for s in kept if s.team_id}),
        "sites_active": len(active),
        "sites_covered": covered,
        "coverage": covered / len(active) if active else 0.0,
        "orphan_checkouts": sum(1 for e in ref.orphans if e["ts"] <= at),
        "dlq": ref.dlq,
    }


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def agrees(got: dict[str, Any], want: dict[str, Any], hours_tolerance: float) -> bool:
    """Every metric in `want` equals `got`'s; floats (hours, coverage) within the tolerance."""
    return all(
        abs(got[k] - v) <= hours_tolerance if isinstance(v, float) else got[k] == v
        for k, v in want.items()
    )


def site_statuses(ref: Reference, at: datetime, zone: ZoneInfo) -> dict[str, dict[str, Any]]:
    """SPEC §6: the status of every site known at `at`."""
    out: dict[str, dict[str, Any]] = {}
    for sid, s in sites_at(ref, at).items():
        here = [x for x in ref.shifts if x.site_id == sid]
        on_post: dict[str, set[str]] = {}
        for x in here:
            if x.start <= at < x.end:
                on_post.setdefault(x.role, set()).add(x.person_id)
        counts = {role: len(p) for role, p in sorted(on_post.items())}
        need = {r: m for r, m in (s.get("requirements") or {}).items() if m > 0}
        short = {r: m - counts.get(r, 0) for r, m in sorted(need.items()) if counts.get(r, 0) < m}
        active = s.get("active", True)
        covered = active and (not short if need else bool(counts))
        moments = [x.start for x in here if x.start <= at] + [
            x.end for x in here if x.reason in ("check_out", "transfer") and x.end <= at
        ]
        last = max(moments, default=None)
        out[sid] = {
            "site_id": sid,
            "name": s["name"],
            "city": s["city"],
            "district": s["district"],
            "street": s.get("street"),
            "community": s.get("community"),
            "kind": s.get("kind"),
            "active": active,
            "requirements": dict(s.get("requirements") or {}),
            "lat": s.get("lat"),
            "lon": s.get("lon"),
            "on_post": counts,
            "people": sum(counts.values()),
            "short": short,
            "covered": covered,
            "last_activity": None if last is None else last.astimezone(zone).isoformat(),
        }
    return out
