"""Reading back from the store what a worker's tables lack (sinks/recall.py), for the agents.

Each table the agents keep (people, the sites' event ids, the sites' live state) is named
here with a way to list its keys. The first time an agent meets a key its table lacks, the
store is asked once which keys it holds that the table does not ("forgotten"): none after a
normal start, all of them after the tables were lost. Only a forgotten key is then read
back, one at a time, on the store's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client

from sinks.recall import (
    forgotten_people,
    forgotten_site_ids,
    forgotten_sites,
    person_history,
    site_event_ids,
    stored_site,
)
from sinks.store import StoreError
from streams.agents.pending import STORE_RETRY_SECONDS
from streams.core.live import SiteLive, recall_since, recall_site
from streams.core.person import PersonState, rebuild
from streams.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

STORED: dict[str, Callable[[Client, Iterable[str]], set[str]]] = {
    "people": forgotten_people,
    "site ids": forgotten_site_ids,
    "sites": forgotten_sites,
}


class Recall:
    def __init__(self, client: Client, store_thread: Executor, settings: Settings) -> None:
        self.client = client
        self.store_thread = store_thread
        self.settings = settings
        self.known: dict[str, Callable[[], list[str]]] = {}
        self.lost: dict[str, set[str]] = {}  # per table: read at its first use (recovered)

    def know(self, table: str, keys: Callable[[], list[str]]) -> None:
        """`keys` lists what the table holds now (on the event loop: Faust tables)."""
        self.known[table] = keys

    async def forgotten(self, table: str) -> set[str]:
        """The keys the store holds that the table does not (read once)."""
        if table not in self.lost:
            keys = self.known[table]()
            self.lost[table] = await self._on_store(STORED[table], self.client, keys)
            if self.lost[table]:
                log.info(
                    "the store holds %d %s this worker's table does not (other workers', "
                    "or this worker's own lost with the broker's state): each of its own "
                    "is read back from the store when first met",
                    len(self.lost[table]),
                    table,
                )
        return self.lost[table]

    async def holds(self, table: str, key: str) -> bool:
        return key in await self.forgotten(table)

    async def person(self, person_id: str) -> PersonState:
        stored, version = await self._on_store(person_history, self.client, person_id)
        self.lost["people"].discard(person_id)
        return rebuild(stored, version, self.settings.max_shift, self.settings.zone)

    async def site_ids(self, site_id: str) -> dict[str, str]:
        seen = await self._on_store(site_event_ids, self.client, site_id)
        self.lost["site ids"].discard(site_id)
        return seen

    async def site(self, site_id: str, now: int) -> SiteLive:
        max_shift = int(self.settings.max_shift.total_seconds() * 1e6)
        since = recall_since(now, max_shift)
        stored = await self._on_store(stored_site, self.client, site_id, since)
        self.lost["sites"].discard(site_id)
        return recall_site(
            site_id,
            stored.versions,
            stored.shifts,
            stored.alerts,
            stored.status,
            now,
            self.settings.zone,
        )

    async def _on_store(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn` on the store thread, again every few seconds while the store refuses."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await loop.run_in_executor(self.store_thread, fn, *args)
            except StoreError as exc:
                log.error("%s; trying again in %d s", exc, STORE_RETRY_SECONDS)
                await asyncio.sleep(STORE_RETRY_SECONDS)
