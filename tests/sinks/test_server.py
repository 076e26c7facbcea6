"""`muster store` (sinks/server.py) as the clients of a ClickHouse server drive it:
clickhouse-connect's HTTP client with its defaults (lz4 both ways, a session id, settings in
the URL) and plain HTTP as curl sends it. The store runs as its own process."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from sinks.reader import LocalReader
from sinks.store import connect, migrate


@pytest.fixture
def db(served_store: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = clickhouse_connect.get_client(dsn=served_store)
    admin.command(f"CREATE DATABASE {name}")
    yield name
    admin.command(f"DROP DATABASE {name}")


def client(url: str, db: str, **kwargs: Any) -> Client:
    return clickhouse_connect.get_client(dsn=f"{url}/{db}", **kwargs)


def send(
    url: str,
    params: dict[str, str],
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
    chunks: list[bytes] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request as curl would send it: (status, headers, body)."""
    where = urlsplit(url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    path = f"{where.path or '/'}?{urlencode(params)}"
    method = method or ("GET" if body is None and chunks is None else "POST")
    if chunks is not None:
        conn.putrequest(method, path)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for chunk in chunks:
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
    else:
        conn.request(method, path, body=body, headers=headers or {})
    answer = conn.getresponse()
    data = answer.read()
    conn.close()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}, data


TABLE = (
    "CREATE TABLE things (id UInt32, name String, at DateTime64(6, 'UTC'), "
    "kind LowCardinality(String), n Nullable(Int64), tags Array(String)) "
    "ENGINE = MergeTree ORDER BY id"
)


def test_clickhouse_connect_writes_reads_and_sees_errors(served_store: str, db: str) -> None:
    ch = client(served_store, db)  # defaults: lz4 requests and answers, a session id
    assert ch.compression and "lz4" in ch.compression
    ch.command(TABLE)
    at = datetime(2022, 3, 15, 8, 0, 0, 123456, tzinfo=UTC)
    rows = [
        [i, f"p{i}", at, "nat" if i % 3 else "cp", None if i % 2 else i, ["a", "b"]]
        for i in range(5000)
    ]
    ch.insert("things", rows, column_names=["id", "name", "at", "kind", "n", "tags"])
    got = ch.query(
        "SELECT count(), sum(id), countIf(n IS NULL), max(at), uniqExact(kind) FROM things "
        "WHERE id < {upto:UInt32} AND kind != {no:String}",
        parameters={"upto": 3000, "no": "none"},
    ).result_rows
    assert got == [(3000, sum(range(3000)), 1500, at.replace(tzinfo=None), 2)]
    # parameters too long for a URL go as multipart/form-data fields
    names = [f"p{i}" for i in range(0, 5000, 2)]
    sql = "SELECT count() FROM things WHERE name IN {names:Array(String)}"
    assert ch.query(sql, parameters={"names": names}).result_rows == [(2500,)]
    first = ch.query("SELECT * FROM things ORDER BY id LIMIT 2").result_rows
    assert first[1] == (1, "p1", at.replace(tzinfo=None), "nat", None, ["a", "b"])
    ch.raw_insert("things", ["id", "name"], '{"id": 90000, "name": "json"}\n', fmt="JSONEachRow")
    assert ch.command("SELECT name FROM things WHERE id = 90000") == "json"

    with pytest.raises(DatabaseError, match=r"code: 60.*UNKNOWN_TABLE"):
        ch.query("SELECT * FROM missing_table")
    with pytest.raises(DatabaseError, match=r"code: 164.*readonly"):
        ch.command("INSERT INTO things (id) VALUES (1)", settings={"readonly": 1})
    with pytest.raises(DatabaseError, match=r"code: 62"):
        ch.query("SELEC 1")
    assert ch.command("SELECT count() FROM things") == 5001  # nothing half-done


def test_muster_reaches_it_as_a_clickhouse_server(served_store: str, db: str) -> None:
    """The worker's and the CLI's own path: migrate, then read a view with parameters."""
    ch = connect(served_store, db)
    assert migrate(ch)  # a fresh database: the whole schema
    reader = LocalReader(ch)
    assert reader.query("SELECT count() AS n FROM shifts_current").rows == [[0]]
    got = reader.query(
        "SELECT {x:DateTime64(6, 'UTC')} AS t", {"x": datetime(2022, 3, 15, tzinfo=UTC)}
    )
    assert got.rows == [["2022-03-15 00:00:00"]]


def test_plain_http_as_curl_sends_it(served_store: str, db: str) -> None:
    url = served_store
    assert send(url, {"query": "SELECT 1, 'a'"})[2] == b"1\ta\n"
    assert send(f"{url}/ping", {}) == (200, send(f"{url}/ping", {})[1], b"Ok.\n")
    status, headers, body = send(url, {"database": db}, body=TABLE.encode())
    assert status == 200 and "x-clickhouse-format" not in headers  # DDL: no result set
    # rows in the body after the query in the URL, gzip-compressed, and chunked
    lines = b"".join(json.dumps({"id": i, "name": f"n{i}"}).encode() + b"\n" for i in range(100))
    insert = {"database": db, "query": "INSERT INTO things (id, name) FORMAT JSONEachRow"}
    status, headers, _ = send(
        url, insert, body=gzip.compress(lines), headers={"Content-Encoding": "gzip"}
    )
    assert status == 200, _
    assert json.loads(headers["x-clickhouse-summary"])["written_rows"] == "100"
    tsv = b"".join(f"{i}\tt{i}\n".encode() for i in range(100, 150))
    insert["query"] = "INSERT INTO things (id, name) FORMAT TabSeparated"
    assert send(url, insert, chunks=[tsv[:100], tsv[100:]])[0] == 200
    # the statement and its rows in the body alone
    body = b"INSERT INTO things (id, name) FORMAT JSONEachRow\n" + b"\n".join(
        lines.split(b"\n")[:40]
    )
    got = send(url, {"database": db}, body=body)
    assert got[0] == 200, got
    # parameters, formats, the database and settings in the URL
    query = {
        "database": db,
        "query": "SELECT count() AS n, {p:String} AS p FROM things",
        "param_p": "x",
    }
    assert send(url, query | {"default_format": "JSONEachRow"})[2] == b'{"n":190,"p":"x"}\n'
    status, headers, body = send(url, query | {"query": query["query"] + " FORMAT JSON"})
    assert headers["x-clickhouse-format"] == "JSON" and json.loads(body)["data"] == [
        {"n": 190, "p": "x"}
    ]
    assert headers["content-type"].startswith("application/json")
    block = {"query": "SELECT getSetting('max_block_size')"}
    assert send(url, block | {"max_block_size": "1234"})[2] == b"1234\n"
    assert send(url, block)[2] != b"1234\n"  # a request's settings do not outlive it
    # compressed answers when asked, as ClickHouse does
    asked = query | {"enable_http_compression": "1"}
    status, headers, body = send(url, asked, headers={"Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == b"190\tx\n"


def test_errors_as_clickhouse_reports_them(served_store: str, db: str) -> None:
    url = served_store
    status, headers, body = send(url, {"query": "SELECT * FROM nowhere", "database": db})
    assert (status, headers["x-clickhouse-exception-code"]) == (404, "60")
    assert body.startswith(b"Code: 60. DB::Exception: ") and b"(UNKNOWN_TABLE)" in body
    status, headers, body = send(url, {"query": f"CREATE TABLE {db}.x (a UInt8) ENGINE = Memory"})
    assert (status, headers["x-clickhouse-exception-code"]) == (403, "164")  # GET reads only
    status, headers, body = send(url, {}, body=b"SELECT 1; DROP DATABASE " + db.encode())
    assert (status, headers["x-clickhouse-exception-code"]) == (400, "62")
    assert send(url, {"query": "SELECT 1", "database": db})[0] == 200  # the database is still there
    status, headers, _ = send(url, {"query": "SELECT 1", "no_such_setting": "1"})
    assert headers["x-clickhouse-exception-code"] == "115"
    status, headers, _ = send(url, {"query": "SELECT 1", "database": "no_such_db"})
    assert (status, headers["x-clickhouse-exception-code"]) == (404, "81")
    status, headers, _ = send(url, {"query": "SELECT 1", "session_id": "s", "session_timeout": "x"})
    assert (status, headers["x-clickhouse-exception-code"]) == (500, "1001")  # not a dropped line
    status, headers, _ = send(url, {"query": "SELECT 1", "compress": "1"})
    assert status == 501 and "x-clickhouse-exception-code" in headers


def test_a_session_keeps_set_and_use(served_store: str, db: str) -> None:
    url, session = served_store, {"session_id": uuid.uuid4().hex}
    assert send(url, session, body=b"SET max_block_size = 4321")[0] == 200
    assert send(url, session, body=f"USE {db}".encode())[0] == 200
    got = send(url, session, body=b"SELECT getSetting('max_block_size'), currentDatabase()")
    assert got[2] == f"4321\t{db}\n".encode()
    other = send(url, {}, body=b"SELECT getSetting('max_block_size'), currentDatabase()")
    assert other[2] != got[2]


def test_many_clients_at_once(served_store: str, db: str) -> None:
    """Writers and readers on threads of their own: every row lands, every answer is its
    own question's (the engine takes them one at a time)."""
    client(served_store, db).command(
        "CREATE TABLE hits (w UInt8, i UInt32) ENGINE = MergeTree ORDER BY (w, i)"
    )
    failures: list[BaseException] = []

    def write(w: int) -> None:
        try:
            ch = client(served_store, db)
            for batch in range(10):
                ch.insert(
                    "hits", [[w, batch * 100 + i] for i in range(100)], column_names=["w", "i"]
                )
                assert (
                    ch.command("SELECT {w:UInt8} * 1000 + 7", parameters={"w": w}) == w * 1000 + 7
                )
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    counts = client(served_store, db).query("SELECT w, count() FROM hits GROUP BY w ORDER BY w")
    assert counts.result_rows == [(w, 1000) for w in range(8)]
