"""The ingest gateway (SPEC §7) as a process, on the real broker, with a real worker behind
it: every answer, token rights, partial rejection to the DLQ, the size limit, a resend, and
the numbers exact against the reference."""

from __future__ import annotations

import http.client
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streams.core.ingest import MAX_BODY
from tests import reference
from tests.scenarios import cin, cout, site
from tests.workers import Gateway, Worker

pytestmark = pytest.mark.slow
ZONE = ZoneInfo("Asia/Shanghai")


def iso(ts: datetime) -> str:
    return ts.astimezone(ZONE).isoformat()


def dump(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


def ndjson(*lines: bytes) -> bytes:
    return b"\n".join(lines) + b"\n"


def test_ingest_answers_rights_dlq_and_exact_numbers(door: tuple[Worker, Gateway]) -> None:
    w, g = door
    now = datetime.now(UTC)
    h = lambda hours: now - timedelta(hours=hours)  # noqa: E731
    site_1 = g.token("--name", "site-1", "--site", "S1")
    hq = g.token("--name", "hq", "--admin")
    registry = g.token("--name", "registry", "--registry")
    seen: list[tuple[str, bytes]] = []  # what reached a topic, in order, for the reference

    def accept(token: str, kind: str, *lines: bytes, rejected: list[int] | None = None) -> None:
        status, body = g.post(ndjson(*lines), token)
        assert status == 202, body
        assert [r["index"] for r in body["rejected"]] == (rejected or [])
        assert body["accepted"] == len(lines) - len(rejected or [])
        seen.extend((kind, line) for line in lines)

    s1 = dump(site("S1", iso(h(30)), "s1", requirements={"marshal": 2}))
    s2 = dump(site("S2", iso(h(30)), "s2", district="黄浦区", requirements={"guide": 1}))
    status, body = g.post(s1, hq, "application/json")  # one JSON event, not NDJSON
    assert (status, body) == (202, {"accepted": 1, "rejected": []})
    seen.append(("sites", s1))
    accept(hq, "sites", s2)

    # 401: no token, another scheme, an unknown token; nothing reaches a topic.
    a1 = dump(cin("A", iso(h(3)), "a1", role="marshal"))
    for token in [None, "mst_not-a-token", ""]:
        status, body = g.post(a1, token)
        assert status == 401 and "token" in body["error"], body

    # 403: one event outside the token's rights refuses the whole request.
    other = dump(cin("X", iso(h(1)), "x1", sid="S2", role="guide"))
    status, body = g.post(ndjson(a1, other), site_1)
    assert status == 403 and "S2" in body["error"] and "line 2" in body["error"], body
    registered = {"event_id": "r1", "type": "registered", "ts": iso(h(40))}
    registered |= {"person_id": "A", "org": "youth_league"}
    for line in [dump(registered), s1]:
        assert g.post(line, site_1)[0] == 403
    assert g.post(ndjson(a1), registry)[0] == 403

    # 400: neither JSON nor NDJSON; 413: over 1 MiB, told or counted.
    for junk in [b"hello", b"", b"a=1\nb=2\n"]:
        status, body = g.post(junk, site_1)
        assert status == 400 and body["error"], junk
    assert g.post(a1 + b" " * MAX_BODY, site_1)[0] == 413
    assert post_chunked(g, site_1, [b" " * 600_000, a1, b" " * 600_000]) == 413

    # 202: a batch with bad lines: the good ones are accepted, the bad go to the DLQ.
    b1 = dump(cin("B", iso(h(2)), "b1", role="marshal", org="union"))
    bad_ts = dump(cin("C", "yesterday", "c1"))
    a1_out = dump(cout("A", iso(h(1)), "a2"))
    wrong_topic_kind = b'{"event_id": "z", "type": "parade"}'
    accept(site_1, "events", a1, b1, bad_ts, b"{oops", a1_out, wrong_topic_kind, rejected=[2, 3, 5])
    accept(registry, "events", dump(registered))
    padded = a1 + b" " * (MAX_BODY - len(a1) - 1)  # exactly 1 MiB with its newline: allowed
    assert g.post(padded + b"\n", site_1) == (202, {"accepted": 1, "rejected": []})
    seen.append(("events", a1))

    # A resend is harmless for events (same event_id); its bad lines are sent to the DLQ again.
    accept(site_1, "events", a1, b1, bad_ts, b"{oops", a1_out, wrong_topic_kind, rejected=[2, 3, 5])

    ref = reference.build(seen, timedelta(hours=12), now)
    assert ref.dlq == 6
    for cutoff in (h(1.5), datetime.now(UTC)):
        want = reference.metrics(ref, cutoff, ZONE)
        got = w.metrics_settle(cutoff, want)
    assert got["on_post_now"] == 1 and got["recruited"] == 1  # B; X was refused with a 403

    letters = dlq_letters(w, 6)
    assert {json.dumps(x["raw"]) for x in letters} >= {json.dumps(bad_ts.decode())}
    for letter in letters:
        assert letter["topic"] == "ingest" and letter["partition"] is None
        assert letter["offset"] is None and letter["error"]
    assert any("yesterday" in x["error"] for x in letters)

    assert g.get("/readyz") == (200, {"status": "ready"})


def post_chunked(g: Gateway, token: str, chunks: list[bytes]) -> int:
    """A body with no Content-Length (chunked): the gateway must count it."""
    url = urlsplit(g.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request(
        "POST",
        "/api/events",
        body=iter(chunks),
        headers={"Authorization": f"Bearer {token}"},
        encode_chunked=True,
    )
    status = conn.getresponse().status
    conn.close()
    return status


def dlq_letters(w: Worker, n: int) -> list[dict[str, Any]]:
    consumer = Consumer({"bootstrap.servers": w.settings.kafka_bootstrap, "group.id": "check-dlq"})
    consumer.assign([TopicPartition(w.settings.topic("dlq"), 0, OFFSET_BEGINNING)])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while len(found) < n and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            found.append(json.loads(msg.value()))
    consumer.close()
    assert len(found) == n, found
    return found
