"""The one writer into the store: batched inserts, retries, insert deduplication tokens.

Rows arrive as `{table: [row, ...]}` dicts (streams/rows.py). Every table is a
ReplacingMergeTree keyed so that writing a row twice changes nothing, so a batch retried
after a crash is harmless; the dedup token also spares the store the duplicate part.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from sinks.store import StoreError, first_line

log = logging.getLogger(__name__)


class RetryLater(StoreError):
    """The store refused a batch after every retry; the caller must not commit it."""


class RowWriter:
    def __init__(self, client: Client, attempts: int = 5, backoff: float = 0.5) -> None:
        self.client = client
        self.attempts = attempts
        self.backoff = backoff
        self.rows_written = 0

    def write(self, rows_by_table: Mapping[str, list[dict[str, Any]]]) -> int:
        """Insert every table's rows; return the number of rows written."""
        count = 0
        for table, rows in rows_by_table.items():
            if rows:
                self._insert(table, rows)
                count += len(rows)
        self.rows_written += count
        return count

    def _insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        data = [[row[c] for c in columns] for row in rows]
        token = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
        for attempt in range(1, self.attempts + 1):
            try:
                self.client.insert(
                    table,
                    data,
                    column_names=columns,
                    settings={"insert_deduplication_token": f"{table}:{token}"},
                )
                return
            except (ClickHouseError, OSError) as exc:
                if attempt == self.attempts:
                    raise RetryLater(
                        f"insert of {len(rows)} rows into {table} failed {attempt} times: "
                        f"{first_line(exc)}"
                    ) from exc
                log.warning("insert into %s failed (%s); retrying", table, first_line(exc))
                time.sleep(self.backoff * 2 ** (attempt - 1))
