"""The one writer into the store: batched inserts, retries, insert deduplication tokens.

Rows arrive as `{table: [row, ...]}` dicts (streams/core/rows.py). Every table is a
ReplacingMergeTree keyed so that writing a row twice changes nothing, so a batch retried
after a crash is harmless; the dedup token also spares the store the duplicate part.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from sinks.store import StoreError, first_line
from streams.core.rows import PREV_FROM_STORE, from_store

log = logging.getLogger(__name__)


class RetryLater(StoreError):
    """The store refused a batch after every retry; the caller must not commit it."""


# Tables whose rows carry the version they replace: key column, value columns (as read
# back in row form), and the columns naming the previous values (004_rollups.sql).
VERSIONED = {
    "shifts": (
        "shift_id",
        {
            "ended_at": "toUnixTimestamp64Micro(ended_at)",
            "reason": "reason",
            "firsts": "firsts",
            "day_firsts": "day_firsts",
        },
        ("prev_ended_at", "prev_reason", "prev_firsts", "prev_day_firsts"),
    ),
    "checkouts": ("event_id", {"orphan": "orphan"}, ("prev_orphan",)),
    "recruit_firsts": ("key", {"first_ts": "toUnixTimestamp64Micro(first_ts)"}, ("prev_ts",)),
}


def prev_from_store(rows: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """`rows` with every versioned row marked to take the version it replaces from the
    store at write time (`_with_previous`): for a person whose state was read back from
    the store, the rows replace whatever the store's rollups counted."""
    return {t: [from_store(r) for r in rs] if t in VERSIONED else rs for t, rs in rows.items()}


# no previous version stored
NOTHING: dict[str, list[object]] = {
    "shifts": [None, "", 0, 0],
    "checkouts": [None],
    "recruit_firsts": [None],
}


class RowWriter:
    """Writes batches; with a `journal` file, a batch a crash cut short is completed later.

    An INSERT and the inserts of its materialized views are not atomic: a process killed
    midway can leave a shift row stored and some rollup rows not. The batch is therefore
    kept in the journal, with its deduplication tokens, until every table has it;
    `recover` inserts it again, and the store takes from it exactly what it lacks (tables
    and views that have a block skip it by its token)."""

    def __init__(
        self,
        client: Client,
        attempts: int = 5,
        backoff: float = 0.5,
        journal: Path | None = None,
    ) -> None:
        self.client = client
        self.attempts = attempts
        self.backoff = backoff
        self.journal = journal
        self.rows_written = 0

    def write(self, rows_by_table: Mapping[str, list[dict[str, Any]]]) -> int:
        """Insert every table's rows; return the number of rows written."""
        batch = []
        for table, rows in rows_by_table.items():
            if rows:
                if table in VERSIONED:
                    rows = self._with_previous(table, rows)
                columns = list(rows[0])
                pick = itemgetter(*columns)
                if len(columns) == 1:  # itemgetter of one key gives the value, not a tuple
                    data: list[Any] = [(pick(row),) for row in rows]
                else:
                    data = [pick(row) for row in rows]
                batch.append((table, columns, data, _encoded(data)))
        if self.journal is not None:
            # The journal is the batch as JSON, each table's data in the very text its
            # deduplication token is taken from (encoded once, the batch's largest cost).
            parts = (
                f'{{"table": {json.dumps(t)}, "columns": {json.dumps(c)}, "data": {text}}}'
                for t, c, _, text in batch
            )
            tmp = self.journal.with_suffix(".tmp")
            tmp.write_text(f"[{', '.join(parts)}]")
            os.replace(tmp, self.journal)
        for table, columns, data, text in batch:
            self._insert(table, columns, data, _token(text))
        if self.journal is not None:
            self.journal.unlink()
        count = sum(len(part[2]) for part in batch)
        self.rows_written += count
        return count

    def recover(self) -> int:
        """Complete the batch a crash cut short, if any; return its number of rows."""
        if self.journal is None or not self.journal.exists():
            return 0
        batch = json.loads(self.journal.read_text())
        for part in batch:
            self._insert(part["table"], part["columns"], part["data"])
        self.journal.unlink()
        return sum(len(part["data"]) for part in batch)

    def _with_previous(self, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows written again for a replayed record say which version they replace only
        now: the one the store holds, or an earlier row of this batch. The store's rollups
        then take the diff from what they already counted, so a replay never counts twice."""
        if not any(PREV_FROM_STORE in r for r in rows):
            return rows
        key, columns, previous = VERSIONED[table]
        people = sorted({r["person_id"] for r in rows if PREV_FROM_STORE in r})
        sql = (
            f"SELECT person_id, {key}, {', '.join(columns.values())} FROM {table} FINAL "
            "WHERE person_id IN {people:Array(String)}"
        )
        try:
            result = self.client.query(sql, parameters={"people": people})
        except (ClickHouseError, OSError) as exc:
            raise RetryLater(
                f"reading stored {table} of replayed records failed: {first_line(exc)}"
            ) from exc
        held = {(r[0], r[1]): list(r[2:]) for r in result.result_rows}
        out = []
        for row in rows:
            ident = (row["person_id"], row[key])
            if PREV_FROM_STORE in row:
                row = {c: v for c, v in row.items() if c != PREV_FROM_STORE}
                was = held.get(ident)
                row |= dict(zip(previous, was if was is not None else NOTHING[table], strict=True))
            held[ident] = [row[c] for c in columns]
            out.append(row)
        return out

    def _insert(
        self, table: str, columns: list[str], data: Sequence[Sequence[Any]], token: str = ""
    ) -> None:
        token = token or _token(_encoded(data))
        for attempt in range(1, self.attempts + 1):
            try:
                self.client.insert(
                    table,
                    data,
                    column_names=columns,
                    settings={
                        "insert_deduplication_token": f"{table}:{token}",
                        # a batch retried after a lost answer is dropped by the views too
                        "deduplicate_blocks_in_dependent_materialized_views": 1,
                    },
                )
                return
            except (ClickHouseError, OSError) as exc:
                if attempt == self.attempts:
                    raise RetryLater(
                        f"insert of {len(data)} rows into {table} failed {attempt} times: "
                        f"{first_line(exc)}"
                    ) from exc
                log.warning("insert into %s failed (%s); retrying", table, first_line(exc))
                time.sleep(self.backoff * 2 ** (attempt - 1))


def _encoded(data: Sequence[Sequence[Any]]) -> str:
    return json.dumps(data, sort_keys=True, default=str)


def _token(encoded: str) -> str:
    """A batch's deduplication token: the same for the same rows, after a crash too."""
    return hashlib.sha256(encoded.encode()).hexdigest()
