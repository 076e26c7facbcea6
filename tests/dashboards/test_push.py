"""`muster dashboards push` against a stand-in for Grafana's HTTP API (Grafana itself cannot
run here): the requests grafana-client makes create the folder, data source, dashboards and
alert rules once, update them on a second push, and a refused token is a clear error."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboards.boards import DASHBOARDS, RULES
from dashboards.push import ClickHouse, push
from schemas.errors import MusterError

TOKEN = "glsa_test"


class Grafana:
    """Just the endpoints push uses, with Grafana's answers (404 when absent)."""

    def __init__(self) -> None:
        self.folders: dict[str, Any] = {}
        self.sources: dict[str, Any] = {}
        self.boards: dict[str, Any] = {}
        self.rules: dict[str, Any] = {}
        self.calls: list[tuple[str, str]] = []


def serve(state: Grafana) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self, method: str) -> None:
            state.calls.append((method, self.path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self.answer(401, {"message": "invalid API key"})
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            parts = self.path.split("?")[0].strip("/").split("/")[1:]  # after "api"
            stores = {
                ("folders",): state.folders,
                ("datasources", "uid"): state.sources,
                ("v1", "provisioning", "alert-rules"): state.rules,
            }
            for prefix, store in stores.items():
                if tuple(parts[: len(prefix)]) == prefix:
                    uid = parts[len(prefix)] if len(parts) > len(prefix) else None
                    if method == "GET":
                        if uid in store:
                            return self.answer(200, store[uid])
                        return self.answer(404, {"message": "not found"})
                    if method == "PUT" and uid in store:
                        store[uid] = body
                        return self.answer(200, body)
                    if method == "POST" and uid is None:
                        key = body["uid"]
                        if key in store:
                            return self.answer(409, {"message": "exists"})
                        store[key] = body
                        return self.answer(201 if prefix[0] == "v1" else 200, body)
            if parts == ["datasources"] and method == "POST":
                if body["uid"] in state.sources:
                    return self.answer(409, {"message": "data source exists"})
                state.sources[body["uid"]] = body
                return self.answer(200, {"datasource": body})
            if parts == ["dashboards", "db"] and method == "POST":
                assert body["overwrite"] is True and body["folderUid"] == "muster"
                state.boards[body["dashboard"]["uid"]] = body["dashboard"]
                return self.answer(200, {"status": "success"})
            return self.answer(404, {"message": f"no route {method} {self.path}"})

        def do_GET(self) -> None:
            self.handle_any("GET")

        def do_POST(self) -> None:
            self.handle_any("POST")

        def do_PUT(self) -> None:
            self.handle_any("PUT")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def grafana() -> Iterator[tuple[Grafana, str]]:
    state = Grafana()
    server = serve(state)
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_push_creates_then_updates_everything(grafana: tuple[Grafana, str]) -> None:
    state, url = grafana
    said: list[str] = []
    ch = ClickHouse(host="ch.internal", password="s3cret", database="muster")
    push(url, TOKEN, "Asia/Shanghai", ch, said.append)
    assert set(state.folders) == {"muster"}
    source = state.sources["muster-clickhouse"]
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["jsonData"]["host"] == "ch.internal"
    assert source["secureJsonData"]["password"] == "s3cret"
    assert set(state.boards) == {f"muster-{name}" for name in DASHBOARDS}
    assert set(state.rules) == {uid for uid, *_ in RULES}
    assert all(
        r["folderUID"] == "muster" and r["ruleGroup"] == "muster" for r in state.rules.values()
    )
    assert sum("created" in line for line in said) == 2 + len(RULES)

    said.clear()
    push(url, TOKEN, "Asia/Shanghai", ch, said.append)  # again: nothing new, all updated
    assert len(state.boards) == len(DASHBOARDS) and len(state.rules) == len(RULES)
    assert not any("created" in line for line in said), said
    assert ("PUT", "/api/datasources/uid/muster-clickhouse") in state.calls


def test_a_refused_token_names_the_status(grafana: tuple[Grafana, str]) -> None:
    _state, url = grafana
    with pytest.raises(MusterError, match="401"):
        push(url, "wrong", "Asia/Shanghai", ClickHouse(), lambda _: None)


def test_an_absent_grafana_is_a_clear_error() -> None:
    with pytest.raises(MusterError, match=r"does not answer|refused"):
        push("http://127.0.0.1:9", TOKEN, "Asia/Shanghai", ClickHouse(), lambda _: None)
