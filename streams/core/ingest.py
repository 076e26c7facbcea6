"""SPEC §7 ingest without HTTP: a request body read as events, each validated as the pipeline
validates it (SPEC §2), the token's rights checked, each event routed to its topic (SPEC §1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from schemas.errors import InvalidEvent, MusterError
from schemas.events import AnyEvent, CheckIn, CheckOut, Registered, SiteUpserted, parse_record

MAX_BODY = 1024 * 1024  # SPEC §7: at most 1 MiB per request


class NotEvents(MusterError):
    """A body that is neither one JSON value nor NDJSON (SPEC §7: 400)."""


@dataclass(frozen=True)
class Record:
    """One line of a request: the event when valid, else why not."""

    index: int  # 0-based line number of the body
    raw: bytes
    event: AnyEvent | None
    error: str | None
    key: bytes | None  # SPEC §1: person_id on events, site_id on sites

    @property
    def topic_kind(self) -> str:
        """`sites` for `site_upserted`, else `events` (invalid records go to the DLQ)."""
        return "sites" if isinstance(self.event, SiteUpserted) else "events"


def read_body(body: bytes, now: datetime) -> list[Record]:
    """The body as records: one JSON value, or NDJSON (one per line; blank lines skipped).

    A body none of whose lines is JSON is neither, and raises NotEvents; a line that is not
    JSON in a body whose other lines are becomes an invalid record (it goes to the DLQ).
    """
    if not body.strip():
        raise NotEvents("the body is empty: send one JSON event, or NDJSON (one per line)")
    whole = _json(body)
    if whole is not None:
        return [_record(0, body.strip(), now)]
    lines = [(i, line.strip()) for i, line in enumerate(body.split(b"\n")) if line.strip()]
    if not any(_json(line) is not None for _, line in lines):
        first = lines[0][1]
        raise NotEvents(
            "the body is neither one JSON event nor NDJSON (no line of it is JSON; line 1: "
            f"{_why_not_json(first)})"
        )
    return [_record(i, line, now) for i, line in lines]


def _json(raw: bytes) -> object | None:
    try:
        value: object = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return value


def _why_not_json(raw: bytes) -> str:
    try:
        json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc.msg} at col {exc.colno}"
    except RecursionError:
        return "JSON nested too deeply"
    return "JSON"


def _record(index: int, raw: bytes, now: datetime) -> Record:
    data = _json(raw)
    kind = "events"
    if isinstance(data, dict) and data.get("type") == "site_upserted":
        kind = "sites"
    try:
        event = parse_record(raw, kind, now)
    except InvalidEvent as exc:
        return Record(index, raw, None, str(exc), _original_key(data))
    key = event.site_id if isinstance(event, SiteUpserted) else event.person_id
    return Record(index, raw, event, None, key.encode())


def _original_key(data: object) -> bytes | None:
    """The key an invalid record would have had, for its DLQ record (SPEC §1)."""
    if isinstance(data, dict):
        for field in ("person_id", "site_id"):
            if isinstance(data.get(field), str) and data[field]:
                return str(data[field]).encode()
    return None


@dataclass(frozen=True)
class Rights:
    """What one token may post (SPEC §7)."""

    name: str
    sites: frozenset[str] = frozenset()
    registry: bool = False
    admin: bool = False

    def describe(self) -> str:
        if self.admin:
            return "admin"
        parts = [f"sites {', '.join(sorted(self.sites))}"] if self.sites else []
        return "; ".join(parts + (["registry"] if self.registry else [])) or "nothing"


def refusal(rights: Rights, event: AnyEvent) -> str | None:
    """Why `rights` may not post `event`, or None when it may (SPEC §7 token rights).

    `admin` posts anything; `registry` posts `registered`; `sites` posts a `check_in`, and a
    `check_out` that carries a `site_id`, naming one of its sites, and a `check_out` without
    one.
    """
    if rights.admin:
        return None
    who = f"token {rights.name!r} ({rights.describe()})"
    if isinstance(event, SiteUpserted):
        return f"{who} may not post site_upserted: that needs an admin token"
    if isinstance(event, Registered):
        return None if rights.registry else f"{who} may not post registered events"
    if not rights.sites:
        return f"{who} may not post {event.type} events: that needs a site token"
    site = event.site_id if isinstance(event, CheckIn | CheckOut) else None
    if site is not None and site not in rights.sites:
        return f"{who} may not post for site {site!r}"
    return None
