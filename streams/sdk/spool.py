"""The emitter's disk spool: events not yet taken by Kafka or the gateway, in emit order.

SQLite in WAL mode with `synchronous=FULL`: an event is on disk before `emit` returns, so a
process killed at any moment loses nothing, and a restarted one sends what is left first.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Spooled:
    seq: int
    topic_kind: str  # `events` or `sites` (SPEC §1)
    key: bytes | None
    value: bytes


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                "topic_kind TEXT NOT NULL, key BLOB, value BLOB NOT NULL)"
            )

    def add(self, items: list[tuple[str, bytes | None, bytes]]) -> None:
        """Append (topic_kind, key, value) items in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO spool (topic_kind, key, value) VALUES (?, ?, ?)", items
            )
            self._db.execute("COMMIT")

    def head(self, limit: int) -> list[Spooled]:
        """The oldest `limit` items, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic_kind, key, value FROM spool ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [Spooled(*row) for row in rows]

    def remove_through(self, seq: int) -> None:
        """Forget every item up to and including `seq` (they were sent)."""
        with self._lock:
            self._db.execute("DELETE FROM spool WHERE seq <= ?", (seq,))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
