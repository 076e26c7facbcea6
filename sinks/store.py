"""Connecting to the store (embedded chdb or a ClickHouse server) and creating its schema.

The same clickhouse-connect client code serves `chdb:///abs/path` and `http(s)://…` URLs.
A chdb data directory may be opened by one process only, so the embedded store is guarded
by a lock file: whoever holds it owns the store. `muster store` holds it and serves it
over ClickHouse's HTTP interface (sinks/server.py), so every other process reaches it as
it would reach a ClickHouse server; a lone worker started without it holds the store
itself and answers read-only queries for the CLI on its `/query` endpoint (sinks/reader.py).

The schema as it is now lives in sinks/schema: a file per table, view and materialized
view, named after it. A new store is created from those files. The versioned migrations
in sinks/migrations only upgrade a store made before the newest of them; a test holds a
store upgraded from the first migration equal to one created fresh.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from schemas.errors import MusterError


class StoreError(MusterError):
    """The store could not be reached or refused a statement."""


class StoreBusy(StoreError):
    """The embedded store is open in another process (the running worker)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def migrations() -> list[Migration]:
    """The versioned `.sql` files in sinks/migrations, in order."""
    found = []
    for entry in resources.files("sinks.migrations").iterdir():
        match = re.fullmatch(r"(\d+)_(\w+)\.sql", entry.name)
        if match:
            text = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], tuple(split_statements(text))))
    return sorted(found, key=lambda m: m.version)


SCHEMA_KINDS = ("tables", "materialized", "views")


@dataclass(frozen=True)
class SchemaObject:
    name: str
    kind: str  # tables, materialized (views), views
    text: str  # its CREATE statement, comments kept


# which versioned migrations a store has had
MIGRATIONS_TABLE = SchemaObject(
    "schema_migrations",
    "tables",
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
    "ENGINE = ReplacingMergeTree ORDER BY version",
)


def schema_objects() -> list[SchemaObject]:
    """Every file of sinks/schema, in an order in which each is created after what it
    reads (a table before the views over it, a view before the views that read it)."""
    found: dict[str, SchemaObject] = {}
    for kind in SCHEMA_KINDS:
        for entry in resources.files("sinks.schema").joinpath(kind).iterdir():
            if entry.name.endswith(".sql"):
                name = entry.name.removesuffix(".sql")
                found[name] = SchemaObject(name, kind, entry.read_text(encoding="utf-8"))
    words = {
        name: set(re.findall(r"\w+", without_comments(o.text))) - {name}
        for name, o in found.items()
    }
    ordered: list[SchemaObject] = []
    placed: set[str] = set()

    def place(name: str, path: tuple[str, ...]) -> None:
        if name in placed:
            return
        if name in path:
            raise StoreError(f"sinks/schema: {' -> '.join((*path, name))} is a cycle")
        for other in sorted(words[name] & found.keys()):
            place(other, (*path, name))
        placed.add(name)
        ordered.append(found[name])

    for name in sorted(found, key=lambda n: (SCHEMA_KINDS.index(found[n].kind), n)):
        place(name, ())
    return ordered


def without_comments(text: str) -> str:
    """`text` without its `--` comments."""
    return "\n".join(line.split("--")[0] for line in text.splitlines())


def split_statements(text: str) -> list[str]:
    """Split a migration on `;` at line ends; `--` comment lines are dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";")]


_lock_handles: dict[Path, IO[str]] = {}

STORE_FILE = "store.json"  # where `muster store` says it serves a data dir's store


def served_store(data_dir: Path) -> str | None:
    """The URL of the `muster store` serving `data_dir`'s embedded store, if one runs."""
    try:
        served = json.loads((data_dir / STORE_FILE).read_text())
        os.kill(int(served["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(served["url"])


def store_url(clickhouse_url: str, data_dir: Path) -> str:
    """Where the store is: `MUSTER_CLICKHOUSE_URL` if set, else the `muster store` serving
    the data dir, else the embedded store itself (for this process alone)."""
    if clickhouse_url:
        return clickhouse_url
    return served_store(data_dir) or f"chdb://{(data_dir / 'store').resolve()}"


def lock_embedded(data_dir: Path) -> None:
    """Take the embedded store for this process; raise `StoreBusy` if another holds it."""
    path = (data_dir / "store.lock").resolve()
    if path in _lock_handles:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise StoreBusy(f"the embedded store in {data_dir} is open in another process") from exc
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _lock_handles[path] = handle


# ClickHouse compiles an expression to machine code the third time it meets it, and the
# query that does waits: 50-200 ms on a metrics call of 60-80 ms (100M bench store), and a
# cutoff or scope not seen before brings new expressions. Interpreted, the calls take as
# long as compiled ones, without those outliers (national p95 over 12 calls: 177 to 87 ms).
NO_JIT = ("compile_expressions", "compile_aggregate_expressions", "compile_sort_description")


def connect(url: str, database: str, create: bool = True) -> Client:
    """A clickhouse-connect client on `database` (created first when `create`)."""
    try:
        if url.startswith("chdb://"):
            client = clickhouse_connect.get_client(dsn=url)
        else:
            parsed = urlparse(url)
            client = clickhouse_connect.get_client(
                dsn=url if parsed.path not in ("", "/") else url.rstrip("/"),
                connect_timeout=10,
                send_receive_timeout=300,
            )
        for name in NO_JIT:
            client.set_client_setting(name, 0)
        if create:
            client.command(f"CREATE DATABASE IF NOT EXISTS {quote_ident(database)}")
        client.database = database
        return client
    except ClickHouseError as exc:
        raise StoreError(f"cannot open the store at {redact(url)}: {first_line(exc)}") from exc


def migrate(client: Client, upto: int | None = None) -> list[str]:
    """Apply the migrations not yet applied (through version `upto`, if given); return
    what was applied."""
    client.command(MIGRATIONS_TABLE.text)
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    if upto is None and not done and _is_empty(client):
        return create_fresh(client)
    applied = []
    for migration in migrations():
        if migration.version in done or (upto is not None and migration.version > upto):
            continue
        for statement in migration.statements:
            try:
                client.command(_filled(client, statement))
            except ClickHouseError as exc:
                raise StoreError(
                    f"migration {migration.version}_{migration.name} failed: {first_line(exc)}"
                ) from exc
        client.insert(
            "schema_migrations", [[migration.version, migration.name]], ["version", "name"]
        )
        applied.append(f"{migration.version:03d}_{migration.name}")
    return applied


def table_engine(client: Client, database: str, table: str) -> str:
    """The engine of `database`.`table`, or "" when there is no such table (or database)."""
    sql = "SELECT engine FROM system.tables WHERE database = {db:String} AND name = {t:String}"
    try:
        rows = client.query(sql, parameters={"db": database, "t": table}).result_rows
    except ClickHouseError:  # the client's own database does not exist
        return ""
    return str(rows[0][0]) if rows else ""


def _is_empty(client: Client) -> bool:
    """No table but schema_migrations: a new store."""
    sql = (
        "SELECT count() FROM system.tables WHERE database = currentDatabase() "
        "AND name != 'schema_migrations'"
    )
    return int(client.query(sql).result_rows[0][0]) == 0


def create_fresh(client: Client) -> list[str]:
    """A new store: every object of sinks/schema, then every migration marked applied
    (what they upgrade, the files already are)."""
    from sinks.cluster import statements  # which renders the same files for a cluster

    created = []
    for statement in statements():
        try:
            client.command(statement.text)
        except ClickHouseError as exc:
            raise StoreError(f"sinks/schema/{statement.source}: {first_line(exc)}") from exc
        created.append(statement.source.removesuffix(".sql"))
    versions = [[m.version, m.name] for m in migrations()]
    client.insert("schema_migrations", versions, ["version", "name"])
    return created


FILL = re.compile(r"FILL (\w+) FROM (\w+);?")


SCHEMA_VIEW = re.compile(r"VIEW (\w+) AS IN SCHEMA;?")


def _filled(client: Client, statement: str) -> str:
    """Two statements of muster's own in a migration.

    `VIEW <name> AS IN SCHEMA`: the view as its file in sinks/schema/views defines it now
    (a view keeps no data, so an old store gets the current text, written once).

    `FILL <table> FROM <view>`: insert into the table what its new materialized view would
    have written for everything the store already holds, by the view's own SELECT, so
    that a backfill and its view cannot say different things."""
    view = SCHEMA_VIEW.fullmatch(statement)
    if view is not None:
        text = resources.files("sinks.schema").joinpath("views", f"{view[1]}.sql").read_text()
        return without_comments(text).strip().rstrip(";")
    fill = FILL.fullmatch(statement)
    if fill is None:
        return statement
    select = client.query(
        "SELECT as_select FROM system.tables WHERE database = currentDatabase() "
        "AND name = {view:String}",
        parameters={"view": fill[2]},
    ).result_rows[0][0]
    return f"INSERT INTO {quote_ident(fill[1])} {select}"


def ch_time(ts: datetime) -> str:
    """A UTC DateTime64(6) literal (a query parameter's text)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def quote_ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise StoreError(f"database name {name!r} must be letters, digits and underscores")
    return f"`{name}`"


def redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    match = re.search(r"DB::Exception: (.*?)(?: \(version [\d.]+.*)?$", text, re.S)
    return (match[1] if match else text).splitlines()[0][:400]
