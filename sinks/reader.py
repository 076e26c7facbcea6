"""Read-only queries against the store, wherever it is.

A ClickHouse server is queried directly. The embedded store is queried in-process when no
worker holds it, and through the running worker's `/query` endpoint when one does (a chdb
data directory can be opened by one process only).
"""

from __future__ import annotations

import json
import queue
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from schemas.errors import MusterError
from sinks.store import StoreBusy, StoreError, connect, first_line, lock_embedded, migrate
from streams.settings import Settings

WORKER_FILE = "worker.json"


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[list[Any]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


Query = tuple[str, dict[str, Any] | None]


class Reader(Protocol):
    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Result: ...

    def query_all(self, queries: Sequence[Query]) -> list[Result]: ...


def jsonable(value: Any) -> Any:
    """A JSON value for one ClickHouse value (DateTime64 as 'YYYY-MM-DD hh:mm:ss.ffffff')."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if value.microsecond else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID | IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


class NotOneStatement(MusterError):
    """A query holds more than one statement; nothing was sent to the store."""


def one_statement(sql: str) -> str:
    """`sql` without a trailing `;`, or `NotOneStatement` when a second statement follows a
    `;` outside quotes and comments. The embedded engine runs every statement it is given
    and, when a later one fails, leaves the earlier ones' rows for the next query to read."""
    if ";" not in sql:
        return sql
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"`":
            i += 1
            while i < n and sql[i] != c:
                i += 2 if sql[i] == "\\" else 1
        elif sql.startswith("--", i) or c == "#":
            i = sql.find("\n", i)
            i = n if i < 0 else i
        elif sql.startswith("/*", i):
            i = sql.find("*/", i + 2)
            i = n if i < 0 else i + 1
        elif c == ";":
            rest = sql[i + 1 :]
            if _blank(rest):
                return sql[:i]
            raise NotOneStatement(
                f"one statement at a time: a second one follows the ';' at character {i + 1} "
                f"({rest.strip()[:60]!r}); send them one by one"
            )
        i += 1
    return sql


def _blank(sql: str) -> bool:
    """Only white space, `;` and comments."""
    return not re.sub(r"--[^\n]*|#[^\n]*|/\*.*?(\*/|$)|[;\s]", "", sql, flags=re.S)


RESYNC = "SELECT 'muster: resync' AS resync"


def run_query(client: Client, sql: str, parameters: dict[str, Any] | None) -> Result:
    """Run one read-only query (`readonly=1`: the store refuses writes and DDL). A failed
    query leaves the client as it found it: whatever an embedded store left unread is
    read off before the next query."""
    return execute(client, one_statement(sql), parameters)


def execute(client: Client, sql: str, parameters: dict[str, Any] | None) -> Result:
    """`run_query` without the one-statement check (callers that made the SQL)."""
    try:
        result = client.query(sql, parameters=parameters or None, settings={"readonly": 1})
    except ClickHouseError as exc:
        _resync(client)
        raise StoreError(first_line(exc)) from exc
    return Result(list(result.column_names), [jsonable(list(r)) for r in result.result_rows])


def _resync(client: Client, tries: int = 3) -> None:
    """Query until the client answers exactly its own question (a chdb client can hand a
    failed query's leftovers to the next one)."""
    for _ in range(tries):
        try:
            if client.query(RESYNC).result_rows == [("muster: resync",)]:
                return
        except (ClickHouseError, IndexError, UnicodeDecodeError, ValueError):
            continue


class LocalReader:
    """Queries on `client`. Given `helpers` (more clients on the same store), `query_all`
    runs independent queries at once, each on a client of its own: a metrics call's five
    or six small queries take one or two cores' worth of planning each, and on 2 cores the
    call takes about half as long (100M bench store, a city: 93-116 against 50-70 ms).
    Callers take turns (the worker's store thread): the first query of each batch runs on
    `client`, on the caller's thread."""

    def __init__(self, client: Client, helpers: Sequence[Client] = ()) -> None:
        self.client = client
        self.free: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for helper in helpers:
            self.free.put(helper)
        self.pool = (
            ThreadPoolExecutor(len(helpers), thread_name_prefix="store-read") if helpers else None
        )

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Result:
        return run_query(self.client, sql, parameters)

    def query_all(self, queries: Sequence[Query]) -> list[Result]:
        """Each query's result, in order; the first runs on this thread, on `client`."""
        if self.pool is None or len(queries) < 2:
            return [self.query(sql, parameters) for sql, parameters in queries]
        rest = [self.pool.submit(self._on_helper, *query) for query in queries[1:]]
        try:
            first = self.query(*queries[0])
        finally:
            wait(rest)  # every helper done before this returns or raises
        return [first, *(future.result() for future in rest)]

    def _on_helper(self, sql: str, parameters: dict[str, Any] | None) -> Result:
        client = self.free.get()  # one per pool thread: never waits
        try:
            return run_query(client, sql, parameters)
        finally:
            self.free.put(client)


# A metrics call runs up to 5 queries at once; on 2 cores 3 helpers are as fast as 4.
READ_HELPERS = 3


def helped_reader(client: Client, url: str, database: str) -> LocalReader:
    """A reader on `client` with READ_HELPERS more clients on the store at `url`, as the
    worker answers the read API (and the bench times it)."""
    helpers = [connect(url, database, create=False) for _ in range(READ_HELPERS)]
    return LocalReader(client, helpers)


class WorkerReader:
    """Queries the embedded store through the worker that holds it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Result:
        sql = one_statement(sql)
        body = json.dumps({"sql": sql, "parameters": parameters or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/query", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            try:
                message = json.load(exc).get("error", str(exc))
            except ValueError:
                message = str(exc)
            raise StoreError(message) from exc
        except OSError as exc:
            raise StoreError(f"the worker at {self.url} did not answer: {exc}") from exc
        return Result(payload["columns"], payload["rows"])

    def query_all(self, queries: Sequence[Query]) -> list[Result]:
        """One after another: the worker runs its store's queries on one thread."""
        return [self.query(sql, parameters) for sql, parameters in queries]


def open_reader(settings: Settings) -> Reader:
    """The reader for the configured store (see module doc)."""
    if not settings.store_is_embedded:
        return LocalReader(connect(settings.store_url, settings.database, create=False))
    try:
        lock_embedded(settings.data_dir)
    except StoreBusy as exc:
        worker = read_worker_file(settings.data_dir)
        if worker is None:
            raise StoreBusy(
                f"{exc}, which does not serve queries yet; wait for the worker to start"
            ) from exc
        return WorkerReader(worker["url"])
    client = connect(settings.store_url, settings.database)
    migrate(client)  # an embedded store nobody has opened yet reads as empty, not missing
    return LocalReader(client)


def read_worker_file(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / WORKER_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def write_worker_file(data_dir: Path, url: str, pid: int) -> None:
    path = data_dir / WORKER_FILE
    path.write_text(json.dumps({"url": url, "pid": pid}))
