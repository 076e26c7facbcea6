"""The embedded broker keeps its topics between runs: Tansu's S3 engine on muster's object
store (streams/objects.py), a real Tansu process stopped and started again."""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streams.broker import create_topics, is_listening, start_tansu
from streams.objects import ObjectLog, serve, url_of
from streams.settings import Settings
from tests.workers import free_port

pytestmark = pytest.mark.slow


def request(url: str, method: str = "GET", body: bytes = b"", **headers: str):
    req = urllib.request.Request(url, data=body or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_objects_are_written_only_when_their_precondition_holds(tmp_path: Path) -> None:
    server = serve(tmp_path)
    url = f"{url_of(server)}/b/clusters/c/meta.json"
    try:
        status, headers, _ = request(url, "PUT", b"one", **{"If-None-Match": "*"})
        assert status == 200
        first = headers["ETag"]
        assert request(url, "PUT", b"two", **{"If-None-Match": "*"})[0] == 412  # exists
        assert request(url, "PUT", b"two", **{"If-Match": '"stale"'})[0] == 412
        status, headers, _ = request(url, "PUT", b"two", **{"If-Match": first})
        assert status == 200 and headers["ETag"] != first
        status, headers, body = request(url)
        assert (status, body) == (200, b"two") and "Last-Modified" in headers
        assert request(url, Range="bytes=1-")[2] == b"wo"
        listing = request(f"{url_of(server)}/b?list-type=2&prefix=clusters/&delimiter=/")[2]
        assert b"<Prefix>clusters/c/</Prefix>" in listing and b"<Key>" not in listing
        listing = request(f"{url_of(server)}/b?list-type=2&prefix=clusters/c/")[2]
        assert b"<Key>clusters/c/meta.json</Key><LastModified>" in listing
        assert request(url, "DELETE")[0] == 204
        assert request(url)[0] == 404
    finally:
        server.shutdown()


def test_the_log_comes_back_whole_after_a_stop_and_drops_a_record_cut_short(
    tmp_path: Path,
) -> None:
    log = ObjectLog(tmp_path)
    first = log.write("b", "k1", b"one", None, "*")
    log.write("b", "k1", b"two", first, None)
    log.write("b", "k2", b"gone", None, None)
    log.delete("b", "k2")
    log.write("b", "k3", b"three", None, None)
    log.close()
    with (tmp_path / "objects.log").open("ab") as out:
        out.write(b"\x05\x00\x00")  # a crash in the middle of the next record
    again = ObjectLog(tmp_path)
    assert again.keys("b", "") == ["k1", "k3"]
    assert again.read("b", "k1")[0] == b"two" and again.read("b", "k2") is None
    assert again.write("b", "k4", b"four", None, "*") is not None
    again.close()
    assert ObjectLog(tmp_path).read("b", "k4")[0] == b"four"


def test_a_broker_stopped_and_started_again_keeps_topics_records_and_commits(
    tmp_path: Path,
) -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = Settings(kafka_bootstrap=address, data_dir=tmp_path, broker_storage="disk")
    broker = start_tansu(settings)
    topic = settings.topic("events")
    try:
        assert topic in create_topics(settings)
        producer = Producer({"bootstrap.servers": address})
        for n in range(500):
            producer.produce(topic, key=f"p{n % 13}".encode(), value=f"{n}".encode())
        assert producer.flush(30) == 0
        consumer = Consumer(
            {"bootstrap.servers": address, "group.id": "g", "enable.auto.commit": False}
        )
        consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.events_partitions)])
        read = [consumer.poll(5) for _ in range(200)]
        consumer.commit(asynchronous=False)
        consumer.close()
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=20)
    assert not is_listening(address)

    broker = start_tansu(settings)
    try:
        assert create_topics(settings) == []  # all kept
        consumer = Consumer({"bootstrap.servers": address, "group.id": "again"})
        consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.events_partitions)])
        values = []
        while (msg := consumer.poll(5)) is not None:
            values.append(int(msg.value()))
        consumer.close()
        assert sorted(values) == list(range(500))
        committed = Consumer({"bootstrap.servers": address, "group.id": "g"}).committed(
            [TopicPartition(topic, p) for p in range(settings.events_partitions)], timeout=10
        )
        got = sum(1 for m in read if m is not None and not m.error())
        assert sum(tp.offset for tp in committed if tp.offset > 0) == got
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=20)
