"""SPEC §2 validation: what is accepted, what is rejected, and that errors name field and value."""

import json
from datetime import UTC, datetime

import pytest

from schemas.errors import InvalidEvent
from schemas.events import CheckIn, SiteUpserted, parse_record, parse_rfc3339
from schemas.jsonschema import JSON_DIR, documents, render

NOW = datetime(2022, 3, 15, 12, 0, tzinfo=UTC)
GOOD = {
    "event_id": "e1",
    "type": "check_in",
    "ts": "2022-03-15T08:00:00+08:00",
    "person_id": "张三",
    "site_id": "S1",
    "role": "guide",
    "org": "union",
}


def parse(event: object, kind: str = "events"):
    return parse_record(json.dumps(event).encode(), kind, NOW)


def reason(event: object, kind: str = "events") -> str:
    with pytest.raises(InvalidEvent) as info:
        parse(event, kind)
    return str(info.value)


def test_accepts_a_check_in_and_ignores_unknown_fields():
    event = parse(GOOD | {"device": "kiosk-7"})
    assert isinstance(event, CheckIn)
    assert event.ts == datetime(2022, 3, 15, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "ts,expected",
    [
        ("2022-03-15T08:00:00Z", datetime(2022, 3, 15, 8, tzinfo=UTC)),
        ("2022-03-15t08:00:00.5z", datetime(2022, 3, 15, 8, 0, 0, 500000, tzinfo=UTC)),
        (
            "2022-03-15T08:00:00.123456789-05:30",
            datetime(2022, 3, 15, 13, 30, 0, 123456, tzinfo=UTC),
        ),
    ],
)
def test_rfc3339_forms(ts, expected):
    assert parse_rfc3339(ts) == expected


@pytest.mark.parametrize(
    "change,field,shown",
    [
        ({"ts": "2022-03-15T08:00:00"}, "ts", "'2022-03-15T08:00:00'"),
        ({"ts": "2022-03-15 08:00:00+08:00"}, "ts", "08:00:00+08:00"),
        ({"ts": "2022-02-30T08:00:00Z"}, "ts", "2022-02-30"),
        ({"ts": "2022-03-15T12:10:01Z"}, "ts", "ahead of the pipeline clock"),
        ({"ts": 1647302400}, "ts", "1647302400"),
        ({"event_id": ""}, "event_id", "''"),
        ({"event_id": "x" * 129}, "event_id", "xxx"),
        ({"person_id": "a\nb"}, "person_id", "control characters"),
        ({"person_id": "p" * 65}, "person_id", "ppp"),
        ({"role": "Guide"}, "role", "'Guide'"),
        ({"org": "x" * 33}, "org", "xxx"),
        ({"site_id": 7}, "site_id", "7"),
    ],
)
def test_rejections_name_the_field_and_the_value(change, field, shown):
    text = reason(GOOD | change)
    assert text.startswith(f"{field}:") and shown in text


def test_ten_minutes_of_clock_skew_are_tolerated():
    assert parse(GOOD | {"ts": "2022-03-15T12:10:00Z"})


def test_missing_fields_and_unknown_types():
    assert "site_id: required field is missing" in reason(
        {k: v for k, v in GOOD.items() if k != "site_id"}
    )
    assert "'clock_in' is not one of" in reason(GOOD | {"type": "clock_in"})
    assert "type: required field is missing" in reason({"event_id": "e", "ts": GOOD["ts"]})


def test_types_belong_on_their_topic():
    assert "does not belong on the sites topic" in reason(GOOD, "sites")
    site = {
        "event_id": "s",
        "type": "site_upserted",
        "ts": GOOD["ts"],
        "site_id": "S1",
        "name": "n",
        "city": "上海市",
        "district": "浦东新区",
    }
    assert "does not belong on the events topic" in reason(site, "events")
    parsed = parse(site, "sites")
    assert isinstance(parsed, SiteUpserted) and parsed.active and parsed.requirements == {}
    assert "requirements.guide" in reason(site | {"requirements": {"guide": -1}}, "sites")
    assert "requirements.guide" in reason(site | {"requirements": {"guide": 1.5}}, "sites")
    assert "active" in reason(site | {"active": "yes"}, "sites")


@pytest.mark.parametrize(
    "value,text",
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{", "not JSON"),
        (b"[1]", "JSON object"),
        (None, "no value"),
    ],
)
def test_undecodable_records(value, text):
    with pytest.raises(InvalidEvent, match=text):
        parse_record(value, "events", NOW)


def test_json_schema_files_are_in_sync():
    for name, doc in documents().items():
        assert (JSON_DIR / name).read_text(encoding="utf-8") == render(doc), (
            f"schemas/json/{name} is stale: run python -m schemas.jsonschema"
        )
