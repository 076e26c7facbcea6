"""Rows the pipeline upserts into the store, as plain JSON-able dicts.

Each builder's keys are the columns of one ClickHouse table (sinks/migrations). Times are
integers of microseconds since the epoch, which is how DateTime64(6) stores them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.dlq import DeadLetter
from schemas.events import CheckIn, CheckOut, Registered, SiteUpserted
from streams.core.shifts import Move, Shift

Row = dict[str, Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(ts: datetime) -> int:
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


def event_row(event: Registered | CheckIn | CheckOut, partition: int, offset: int) -> Row:
    return {
        "person_id": event.person_id,
        "event_id": event.event_id,
        "type": event.type,
        "ts": to_micros(event.ts),
        "site_id": getattr(event, "site_id", None) or "",
        "role": getattr(event, "role", None) or "",
        "org": getattr(event, "org", None) or "",
        "team_id": getattr(event, "team_id", None) or "",
        "partition": partition,
        "offset": offset,
    }


# Marks a row written again for a replayed record: which version it replaces is not known
# to the person state (it may be ahead of the store), so the writer reads it from the store.
PREV_FROM_STORE = "_prev_from_store"


def shift_row(
    person_id: str,
    shift: Shift,
    version: int,
    prev: Shift | None = None,
    marks: tuple[int, int] = (0, 0),
    prev_marks: tuple[int, int] | None = None,
) -> Row:
    """A shift version and the version it replaces (`prev`, None for a new shift): the diff
    the store's rollups are fed with (sinks/migrations/004_rollups.sql). `marks` are the
    shift's `firsts` and `day_firsts` bits (streams/core/follows.py), `prev_marks` the
    replaced version's (the same when only the shift itself changed)."""
    if prev_marks is None:
        prev_marks = marks if prev is not None else (0, 0)
    return {
        "person_id": person_id,
        "shift_id": shift.shift_id,
        "site_id": shift.site_id,
        "role": shift.role,
        "org": shift.org,
        "team_id": shift.team_id or "",
        "started_at": to_micros(shift.start),
        "ended_at": to_micros(shift.end),
        "reason": shift.reason,
        "version": version,
        "prev_ended_at": None if prev is None else to_micros(prev.end),
        "prev_reason": "" if prev is None else prev.reason,
        "firsts": marks[0],
        "day_firsts": marks[1],
        "prev_firsts": prev_marks[0],
        "prev_day_firsts": prev_marks[1],
    }


def recruit_row(
    person_id: str, key: str, first_ts: int, version: int, prev: int | None = None
) -> Row:
    """A person's first registration (microseconds) under an org/team scope key, and the
    earlier first it replaces (None when the key is new for them)."""
    return {
        "person_id": person_id,
        "key": key,
        "first_ts": first_ts,
        "version": version,
        "prev_ts": prev,
    }


def checkout_row(
    person_id: str, move: Move, orphan: bool, version: int, prev_orphan: bool | None = None
) -> Row:
    """A check-out's orphan flag and the flag it replaces (None for a new check-out)."""
    return {
        "person_id": person_id,
        "event_id": move.event_id,
        "ts": to_micros(move.ts),
        "site_id": move.site_id or "",
        "orphan": int(orphan),
        "version": version,
        "prev_orphan": None if prev_orphan is None else int(prev_orphan),
    }


def from_store(row: Row) -> Row:
    return row | {PREV_FROM_STORE: True}


def site_row(event: SiteUpserted, partition: int, offset: int) -> Row:
    return {
        "site_id": event.site_id,
        "event_id": event.event_id,
        "ts": to_micros(event.ts),
        "partition": partition,
        "offset": offset,
        "name": event.name,
        "city": event.city,
        "district": event.district,
        "street": event.street or "",
        "community": event.community or "",
        "kind": event.kind or "",
        "requirements": dict(event.requirements),
        "active": int(event.active),
        "lat": event.lat,
        "lon": event.lon,
    }


def dlq_row(
    error: str, topic: str, partition: int, offset: int, key: str | None, raw: str | None
) -> Row:
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key or "",
        "error": error,
        "raw": raw or "",
    }


def letter_row(value: bytes | None, partition: int, offset: int, key: str | None) -> Row | None:
    """The `dlq` row of a record on the DLQ topic sent by the gateway or `muster import`
    (which keep no store), identified by its place there; None for the pipeline's own
    letters, whose rows were written when it sent them."""
    letter = DeadLetter.from_gateway(value)
    if letter is None:
        return None
    return dlq_row(letter.error, letter.topic, partition, offset, key, letter.raw)


def status_row(status: dict[str, Any], now: int) -> Row:
    """The `site_status` row of a SPEC §6 status computed at `now` (microseconds)."""
    last = status["last_activity"]
    return {
        "site_id": status["site_id"],
        "at": now,
        "name": status["name"],
        "city": status["city"],
        "district": status["district"],
        "street": status["street"],
        "community": status["community"],
        "kind": status["kind"],
        "active": int(status["active"]),
        "requirements": status["requirements"],
        "lat": status["lat"],
        "lon": status["lon"],
        "on_post": status["on_post"],
        "people": status["people"],
        "short": status["short"],
        "covered": int(status["covered"]),
        "last_activity": None if last is None else _micros_of(last),
        "version": now,
    }


def on_post_rows(site_id: str, by: dict[tuple[str, str], int], now: int) -> list[Row]:
    minute = now // 60_000_000 * 60
    return [
        {
            "minute": minute,
            "site_id": site_id,
            "role": role,
            "org": org,
            "people": n,
            "version": now,
        }
        for (role, org), n in sorted(by.items())
    ]


def alert_row(alert: dict[str, Any], now: int) -> Row:
    resolved = alert["resolved_at"]
    return {
        "alert_id": alert["alert_id"],
        "kind": alert["kind"],
        "site_id": alert["site_id"],
        "opened_at": _micros_of(alert["opened_at"]),
        "short": alert["short"],
        "people": alert["people"],
        "resolved_at": None if resolved is None else _micros_of(resolved),
        "version": now,
    }


def _micros_of(text: str) -> int:
    return to_micros(datetime.fromisoformat(text))
