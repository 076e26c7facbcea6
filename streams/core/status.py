"""SPEC §6 site status and the SPEC §4 coverage rule, as plain functions.

Both the live site agent (T = now) and the read API (any T, from the store) build a site's
status here, so the two cannot disagree on what "covered" or "short" means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from streams.core.rows import from_micros


@dataclass(frozen=True)
class SiteAttrs:
    """One `site_upserted`'s attributes (SPEC §2); optional ones are None when absent."""

    site_id: str
    name: str
    city: str
    district: str
    street: str | None = None
    community: str | None = None
    kind: str | None = None
    requirements: Mapping[str, int] = field(default_factory=dict)
    active: bool = True
    lat: float | None = None
    lon: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "name": self.name,
            "city": self.city,
            "district": self.district,
            "street": self.street,
            "community": self.community,
            "kind": self.kind,
            "active": self.active,
            "requirements": dict(self.requirements),
            "lat": self.lat,
            "lon": self.lon,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SiteAttrs:
        return cls(
            site_id=data["site_id"],
            name=data["name"],
            city=data["city"],
            district=data["district"],
            street=data.get("street") or None,
            community=data.get("community") or None,
            kind=data.get("kind") or None,
            requirements={str(r): int(m) for r, m in (data.get("requirements") or {}).items()},
            active=bool(data.get("active", True)),
            lat=data.get("lat"),
            lon=data.get("lon"),
        )


def shortfall(requirements: Mapping[str, int], on_post: Mapping[str, int]) -> dict[str, int]:
    """SPEC §6 `short`: role -> missing people, for every role below its requirement."""
    return {
        role: need - on_post.get(role, 0)
        for role, need in sorted(requirements.items())
        if need > 0 and on_post.get(role, 0) < need
    }


def is_covered(attrs: SiteAttrs, on_post: Mapping[str, int]) -> bool:
    """SPEC §4 `sites_covered`: every positive requirement met; with none, anyone on post.
    An inactive site is never covered (SPEC §6)."""
    if not attrs.active:
        return False
    if any(need > 0 for need in attrs.requirements.values()):
        return not shortfall(attrs.requirements, on_post)
    return sum(on_post.values()) > 0


def site_status(
    attrs: SiteAttrs,
    on_post: Mapping[str, int],
    last_activity: datetime | None,
    zone: ZoneInfo,
) -> dict[str, Any]:
    """SPEC §6 status of one site from its attributes at T, the distinct people on post at T
    per role, and its last activity at or before T."""
    counts = {role: n for role, n in sorted(on_post.items()) if n > 0}
    return attrs.to_json() | {
        "on_post": counts,
        "people": sum(counts.values()),
        "short": shortfall(attrs.requirements, counts),
        "covered": is_covered(attrs, counts),
        "last_activity": None if last_activity is None else iso(last_activity, zone),
    }


def iso(ts: datetime, zone: ZoneInfo) -> str:
    """RFC 3339 in the pipeline's time zone, as every muster answer prints times."""
    return ts.astimezone(zone).isoformat()


def iso_micros(micros: int | None, zone: ZoneInfo) -> str | None:
    """`iso` of a time kept as microseconds since the epoch; None stays None."""
    return None if micros is None else iso(from_micros(micros), zone)
