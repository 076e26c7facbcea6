"""The schema of sinks/schema rendered for a store: one ClickHouse node, or a cluster.

`statements(None)` is what a new single-node store runs (the files as they are) and what
every test store is made of. `statements(Cluster(name, database))` renders the same files
for a ClickHouse cluster with Keeper:

- each table `t` becomes `t_local`, its MergeTree engine Replicated on the Keeper path
  `/clickhouse/tables/{uuid}/{shard}` with the `{replica}` macro, and `t` a Distributed
  table over `t_local` on every shard. Workers insert into and views read `t`, so the
  rest of muster is the same code against one node or a cluster;
- the rows of one key go to one shard (the Distributed table shards by a hash of the
  first column of the local table's ORDER BY), so ReplacingMergeTree keeps one row per
  key and a retried insert is deduplicated on the replica that took it;
- a materialized view fires on the local table it reads first and writes the local table
  it feeds, on the replica that took the insert; what else it reads (a join) is read
  through the Distributed table, whole;
- every CREATE runs `ON CLUSTER`, so one statement creates an object on every host.

The views are checked against the reference on one node (every test), and on this
rendering run on the embedded engine as a cluster of one shard (tests/cluster_store.py:
Distributed tables, materialized views on the local tables, a retried batch counted once);
replicas of that shard answer the same, a Distributed table over one shard reading one
replica's whole table. With several shards each rollup is kept per shard and the
views' sums add the shards up, but the views have not been checked on several shards:
deploy/README.md says to grow replicas, not shards, and why the volumes allow it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from sinks.store import (
    MIGRATIONS_TABLE,
    SchemaObject,
    StoreError,
    first_line,
    migrations,
    schema_objects,
    table_engine,
    without_comments,
)

KEEPER_PATH = "/clickhouse/tables/{uuid}/{shard}"
REPLICA = "{replica}"


@dataclass(frozen=True)
class Cluster:
    name: str  # as the servers' remote_servers configuration names it
    database: str

    def __post_init__(self) -> None:
        for what, value in (("cluster", self.name), ("database", self.database)):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
                raise StoreError(f"{what} name {value!r} must be letters, digits and underscores")


@dataclass(frozen=True)
class Statement:
    source: str  # the file it was rendered from, e.g. "tables/shifts.sql"
    text: str  # one statement, without its closing `;`


def statements(cluster: Cluster | None = None) -> list[Statement]:
    """Every object of sinks/schema, each after what it reads: as written for one node,
    rendered for `cluster` otherwise (with schema_migrations and the database first)."""
    objects = schema_objects()
    if cluster is None:
        return [Statement(_source(o), o.text.strip().rstrip(";")) for o in objects]
    tables = {o.name for o in objects if o.kind == "tables"}
    out = [
        Statement("database", f"CREATE DATABASE IF NOT EXISTS {cluster.database} {_on(cluster)}"),
        Statement("database", f"USE {cluster.database}"),
    ]
    for item in [MIGRATIONS_TABLE, *objects]:
        code = _code(item.text)
        if item.kind == "tables":
            out.extend(Statement(_source(item), text) for text in _table(item.name, code, cluster))
        elif item.kind == "materialized":
            out.append(Statement(_source(item), _materialized(item.name, code, tables, cluster)))
        else:
            out.append(Statement(_source(item), _view(item.name, code, cluster)))
    return out


def script(cluster: Cluster) -> str:
    """What `muster migrate --cluster NAME --print` prints: every statement ends in `;`,
    the last one recording the migrations the schema already holds."""
    return "".join(f"{s.text};\n\n" for s in [*statements(cluster), _versions()])


def _versions() -> Statement:
    """Every migration marked applied: what they upgrade, the files already are (a worker
    starting on the cluster then finds nothing to apply)."""
    values = ", ".join(f"({m.version}, '{m.name}')" for m in migrations())
    return Statement("migrations", f"INSERT INTO schema_migrations (version, name) VALUES {values}")


def _source(item: SchemaObject) -> str:
    return f"{item.kind}/{item.name}.sql"


def _on(cluster: Cluster) -> str:
    return f"ON CLUSTER {cluster.name}"


def _code(text: str) -> str:
    """The statement without `--` comments, blank lines or its closing `;`."""
    lines = (line.rstrip() for line in without_comments(text).splitlines())
    return "\n".join(line for line in lines if line).strip().rstrip(";")


def _header(pattern: str, code: str, name: str) -> re.Match[str]:
    match = re.match(pattern, code)
    if match is None:
        raise StoreError(f"{name}: cannot render for a cluster: it does not start as {pattern}")
    return match


ENGINE = re.compile(r"ENGINE\s*=\s*(\w*)MergeTree\b(?:\s*\(([^()]*)\))?")


def _table(name: str, code: str, cluster: Cluster) -> list[str]:
    """`name_local` with a Replicated engine, and `name` Distributed over it."""
    head = _header(r"CREATE TABLE IF NOT EXISTS (\w+)\b", code, name)
    local = f"{name}_local"
    text = f"CREATE TABLE IF NOT EXISTS {local} {_on(cluster)}{code[head.end() :]}"
    engine = ENGINE.search(text)
    if engine is None:  # a Null table: a materialized view's input, read by no view
        return [text]
    args = ", ".join(a for a in (f"'{KEEPER_PATH}'", f"'{REPLICA}'", engine[2]) if a)
    text = (
        f"{text[: engine.start()]}ENGINE = Replicated{engine[1]}MergeTree({args})"
        + (text[engine.end() :])
    )
    text = text.replace("non_replicated_deduplication_window", "replicated_deduplication_window")
    key = _shard_key(text, name)
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {name} {_on(cluster)} AS {local}\n"
        f"ENGINE = Distributed('{cluster.name}', '{cluster.database}', '{local}', {key})"
    )
    return [text, distributed]


def _shard_key(text: str, name: str) -> str:
    """A hash of the ORDER BY's first column: the rows of one key land on one shard."""
    order = re.search(r"\bORDER BY\s+(.+?)\s*(?:\bSETTINGS\b|\bTTL\b|$)", text, re.S)
    if order is None:
        raise StoreError(f"tables/{name}.sql: no ORDER BY to shard by")
    key = order[1].strip()
    if key.startswith("("):
        key = _first_element(key[1:])
    return f"cityHash64({key})"


def _first_element(text: str) -> str:
    """The first comma-separated element of a parenthesised list (its `(` dropped)."""
    depth = 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            if depth == 0:
                return text[:i].strip()
            depth -= 1
        elif char == "," and depth == 0:
            return text[:i].strip()
    return text.strip()


def _materialized(name: str, code: str, tables: set[str], cluster: Cluster) -> str:
    """The view on the local table it reads first (the one whose inserts fire it), into
    the local table it feeds."""
    head = _header(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS\b", code, name)
    body = code[head.end() :]
    source = next(
        (m for m in re.finditer(r"\bFROM\s+(\w+)\b", body) if m[1] in tables),
        None,
    )
    if source is None:
        raise StoreError(f"materialized/{name}.sql: reads no table of sinks/schema/tables")
    body = f"{body[: source.start(1)]}{source[1]}_local{body[source.end(1) :]}"
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} {_on(cluster)} TO {head[2]}_local AS{body}"
    )


def _view(name: str, code: str, cluster: Cluster) -> str:
    head = _header(r"CREATE OR REPLACE VIEW (\w+)\b", code, name)
    return f"CREATE OR REPLACE VIEW {name} {_on(cluster)}{code[head.end() :]}"


def migrate_cluster(client: Client, cluster: Cluster) -> list[str]:
    """Create the schema on every host of `cluster` (`client` on any of them); return what
    was created. A cluster is made from the schema as it is now; a cluster made by an
    older muster is not upgraded in place: its pending migrations are named, and
    deploy/README.md says how to replay into a new database instead."""
    done: set[int] = set()
    if table_engine(client, cluster.database, "schema_migrations"):
        rows = client.query(f"SELECT version FROM {cluster.database}.schema_migrations")
        done = {int(row[0]) for row in rows.result_rows}
    known = migrations()
    pending = [f"{m.version:03d}_{m.name}" for m in known if m.version not in done]
    if done and pending:
        raise StoreError(
            f"database {cluster.database} on cluster {cluster.name} lacks migrations "
            f"{', '.join(pending)}; a cluster is created from the current schema, not "
            "upgraded in place: replay into a new database (deploy/README.md, upgrades)"
        )
    if done:
        return []
    created = []
    for statement in [*statements(cluster), _versions()]:
        if statement.text.startswith("USE "):
            client.database = cluster.database
            continue
        try:
            client.command(
                statement.text,
                settings={"distributed_foreground_insert": 1},  # the versions, at once
            )
        except ClickHouseError as exc:
            raise StoreError(f"{statement.source} on cluster: {first_line(exc)}") from exc
        created.append(statement.source)
    return created[:-1]
