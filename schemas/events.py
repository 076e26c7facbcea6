"""Event models of SPEC §2: one pydantic model per `type`, a discriminated union over them.

`parse_record` is the single entry point the pipeline uses: bytes in, a valid event or an
`InvalidEvent` whose message names the field and the offending value.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)

from schemas.errors import InvalidEvent

CLOCK_SKEW = timedelta(minutes=10)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


def _no_control_chars(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def parse_rfc3339(value: object) -> datetime:
    """SPEC §2 `ts`: RFC 3339 with an explicit offset; returns an aware UTC datetime.

    Fractional seconds beyond microseconds are truncated (Python's and ClickHouse's
    DateTime64(6) resolution).
    """
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 string such as 2022-03-15T08:00:00+08:00")
    match = _RFC3339.fullmatch(value)
    if not match:
        raise ValueError(
            "must be RFC 3339 with an explicit offset (Z or +08:00), "
            "such as 2022-03-15T08:00:00+08:00"
        )
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    if int(off_h or 0) > 23 or int(off_m or 0) > 59:
        raise ValueError("has an offset out of range")
    offset = timedelta(0)
    if not zulu:
        offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (1 if sign == "+" else -1)
    micro = int((frac or "0")[:6].ljust(6, "0"))
    try:
        local = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micro,
            tzinfo=timezone(offset),
        )
    except ValueError as exc:
        raise ValueError(f"is not a valid date and time ({exc})") from exc
    return local.astimezone(UTC)


def _not_in_future(value: datetime, info: ValidationInfo) -> datetime:
    now = (info.context or {}).get("now")
    if now is not None and value > now + CLOCK_SKEW:
        raise ValueError(
            f"is more than 10 minutes ahead of the pipeline clock ({now.isoformat()}); "
            "check the site device's clock"
        )
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(parse_rfc3339),
    AfterValidator(_not_in_future),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _RFC3339.pattern}),
]
EventId = Annotated[
    StrictStr, Field(min_length=1, max_length=128), AfterValidator(_no_control_chars)
]
Identifier = Annotated[
    StrictStr, Field(min_length=1, max_length=64), AfterValidator(_no_control_chars)
]
Code = Annotated[StrictStr, Field(pattern=CODE_PATTERN)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: EventId
    ts: Timestamp


class Registered(_Event):
    """A volunteer is recruited (招募)."""

    type: Literal["registered"]
    person_id: Identifier
    org: Code
    team_id: Identifier | None = None


class CheckIn(_Event):
    """A volunteer goes on post (上岗) at a site in a role."""

    type: Literal["check_in"]
    person_id: Identifier
    site_id: Identifier
    role: Code
    org: Code
    team_id: Identifier | None = None


class CheckOut(_Event):
    """A volunteer leaves post; `site_id` is informational."""

    type: Literal["check_out"]
    person_id: Identifier
    site_id: Identifier | None = None


class SiteUpserted(_Event):
    """A site (点位) and its per-role staffing minimums, versioned by `ts`."""

    type: Literal["site_upserted"]
    site_id: Identifier
    name: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    city: Identifier
    district: Identifier
    street: Identifier | None = None
    community: Identifier | None = None
    kind: Code | None = None
    requirements: dict[Code, Annotated[StrictInt, Field(ge=0)]] = Field(default_factory=dict)
    active: StrictBool = True
    lat: Annotated[StrictFloat, Field(ge=-90, le=90)] | None = None
    lon: Annotated[StrictFloat, Field(ge=-180, le=180)] | None = None


PersonEvent = Annotated[Registered | CheckIn | CheckOut, Field(discriminator="type")]
AnyEvent = Annotated[Registered | CheckIn | CheckOut | SiteUpserted, Field(discriminator="type")]
Movement = CheckIn | CheckOut

TOPIC_TYPES: dict[str, frozenset[str]] = {
    "events": frozenset({"registered", "check_in", "check_out"}),
    "sites": frozenset({"site_upserted"}),
}
_ANY_EVENT: TypeAdapter[Registered | CheckIn | CheckOut | SiteUpserted] = TypeAdapter(AnyEvent)


def describe_errors(exc: ValidationError) -> str:
    """One line per problem: the field path, what is wrong, and the offending value."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if p not in _MODEL_TAGS) or "(value)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            parts.append(f"{loc}: required field is missing")
        elif err["type"] == "union_tag_invalid":
            tag = err.get("ctx", {}).get("tag")
            parts.append(
                f"type: {tag!r} is not one of registered, check_in, check_out, site_upserted"
            )
        elif err["type"] == "union_tag_not_found":
            parts.append("type: required field is missing")
        else:
            parts.append(f"{loc}: {msg} (got {_short(err.get('input'))})")
    return "; ".join(parts)


_MODEL_TAGS = frozenset(TOPIC_TYPES["events"] | TOPIC_TYPES["sites"])


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_record(
    value: bytes | None, topic_kind: str, now: datetime | None
) -> Registered | CheckIn | CheckOut | SiteUpserted:
    """Validate one input record (SPEC §1–2); raise `InvalidEvent` with a readable reason.

    `topic_kind` is `events` or `sites`; an event of a type that belongs on the other
    topic is invalid. `now` is the pipeline's wall clock for the clock-skew rule.
    """
    if value is None:
        raise InvalidEvent("record has no value (tombstone)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"value is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(
            f"value is not JSON: {exc.msg} at line {exc.lineno} col {exc.colno}"
        ) from exc
    except RecursionError as exc:  # e.g. 100,000 nested brackets: not an event either
        raise InvalidEvent("value is JSON nested too deeply to be an event") from exc
    if not isinstance(data, dict):
        raise InvalidEvent(f"value must be a JSON object, got {type(data).__name__}")
    kind = data.get("type")
    if isinstance(kind, str) and kind in _MODEL_TAGS and kind not in TOPIC_TYPES[topic_kind]:
        raise InvalidEvent(
            f"type: {kind!r} does not belong on the {topic_kind} topic "
            f"(expected one of {', '.join(sorted(TOPIC_TYPES[topic_kind]))})"
        )
    try:
        return _ANY_EVENT.validate_python(data, context={"now": now})
    except ValidationError as exc:
        raise InvalidEvent(describe_errors(exc)) from exc
