"""SPEC §7 ingest rules without HTTP: reading a body, validation per line, token rights."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from schemas.events import parse_record
from streams.core.ingest import NotEvents, Rights, read_body, refusal

NOW = datetime(2022, 3, 15, 12, 0, tzinfo=UTC)


def cin(pid: str = "p1", sid: str = "S1", eid: str = "e1") -> dict[str, str]:
    return {
        "event_id": eid,
        "type": "check_in",
        "ts": "2022-03-15T08:00:00+08:00",
        "person_id": pid,
        "site_id": sid,
        "role": "marshal",
        "org": "union",
    }


def line(event: object) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


def test_one_event_pretty_printed_is_one_record() -> None:
    body = json.dumps(cin(), indent=2).encode()
    [record] = read_body(body, NOW)
    assert record.error is None and record.index == 0
    assert record.key == b"p1" and record.topic_kind == "events"


def test_ndjson_indexes_are_line_numbers_and_bad_lines_are_records() -> None:
    site = {"event_id": "s", "type": "site_upserted", "ts": "2022-03-15T08:00:00Z"}
    site |= {"site_id": "S9", "name": "九", "city": "上海市", "district": "浦东新区"}
    body = b"\n".join(
        [line(cin()), b"", b"{not json", line(cin(eid="e2") | {"ts": "08:00"}), line(site), b""]
    )
    records = read_body(body, NOW)
    assert [r.index for r in records] == [0, 2, 3, 4]
    assert [r.error is None for r in records] == [True, False, False, True]
    assert "not JSON" in str(records[1].error)
    assert "ts" in str(records[2].error) and "'08:00'" in str(records[2].error)
    assert records[2].key == b"p1"  # the DLQ record keeps the key it would have had
    assert records[3].topic_kind == "sites" and records[3].key == b"S9"
    assert records[0].raw == line(cin())  # produced as sent: unknown fields survive


def test_validation_is_the_pipelines() -> None:
    """A line is accepted exactly when the pipeline's own parser accepts it."""
    cases = [cin(), cin() | {"role": "Marshal"}, cin() | {"type": "check_out"}, [1, 2], "x"]
    cases += [cin() | {"ts": "2099-01-01T00:00:00Z"}, {"type": "check_in"}]
    for case in cases:
        raw = line(case)
        [record] = read_body(raw, NOW)
        try:
            parse_record(raw, "events", NOW)
            valid = True
        except Exception:
            valid = False
        assert (record.error is None) == valid, case


def test_a_body_that_is_neither_json_nor_ndjson() -> None:
    for body in [b"", b"  \n", b"hello world", b"a=1&b=2\nc=3", b"\xff\xfe\x00"]:
        with pytest.raises(NotEvents):
            read_body(body, NOW)


def test_non_utf8_line_among_json_lines_is_rejected_not_fatal() -> None:
    records = read_body(line(cin()) + b"\n\xff\xfe\n", NOW)
    assert records[1].error is not None and "UTF-8" in records[1].error


def parsed(event: dict[str, object]):  # type: ignore[no-untyped-def]
    return parse_record(line(event), "sites" if event["type"] == "site_upserted" else "events", NOW)


def test_rights() -> None:
    site_token = Rights("site-1", frozenset({"S1", "S2"}))
    registry = Rights("reg", registry=True)
    admin = Rights("admin", admin=True)
    registered = {"event_id": "r", "type": "registered", "ts": "2022-03-15T08:00:00Z"}
    registered |= {"person_id": "p1", "org": "union"}
    out_plain = {"event_id": "o", "type": "check_out", "ts": "2022-03-15T09:00:00Z"}
    out_plain |= {"person_id": "p1"}
    site = {"event_id": "s", "type": "site_upserted", "ts": "2022-03-15T08:00:00Z"}
    site |= {"site_id": "S1", "name": "一", "city": "上海市", "district": "浦东新区"}

    assert refusal(site_token, parsed(cin(sid="S2"))) is None
    assert "S3" in str(refusal(site_token, parsed(cin(sid="S3"))))
    assert refusal(site_token, parsed(out_plain)) is None
    assert refusal(site_token, parsed(out_plain | {"site_id": "S1"})) is None
    assert "S3" in str(refusal(site_token, parsed(out_plain | {"site_id": "S3"})))
    assert refusal(site_token, parsed(registered)) is not None
    assert "admin" in str(refusal(site_token, parsed(site)))

    assert refusal(registry, parsed(registered)) is None
    assert refusal(registry, parsed(cin())) is not None
    assert refusal(registry, parsed(out_plain)) is not None

    for event in [cin(sid="S7"), registered, out_plain, site]:
        assert refusal(admin, parsed(event)) is None


def test_deeply_nested_json_is_an_invalid_line_not_a_crash() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    records = read_body(line(cin()) + b"\n" + deep + b"\n", NOW)
    assert records[0].error is None and "nested too deeply" in str(records[1].error)
    with pytest.raises(NotEvents):
        read_body(deep, NOW)
