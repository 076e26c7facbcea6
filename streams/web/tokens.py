"""The gateway's tokens (SPEC §7): a JSON file of names, rights and SHA-256 hashes.

The token itself is printed once by `muster token add` and never stored. The gateway looks
at the file's size and modification time on every request and reads it again when they
change, so `add` and `revoke` take effect without a restart. A presented token is hashed
and compared with every stored hash in constant time.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.errors import MusterError
from streams.core.ingest import Rights

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class TokenError(MusterError):
    """A token file that cannot be read or written, or a bad name."""


@dataclass(frozen=True)
class Entry:
    rights: Rights
    sha256: str
    created: str

    def to_json(self) -> dict[str, Any]:
        r = self.rights
        return {
            "name": r.name,
            "sha256": self.sha256,
            "sites": sorted(r.sites),
            "registry": r.registry,
            "admin": r.admin,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        rights = Rights(
            name=str(data["name"]),
            sites=frozenset(str(s) for s in data.get("sites", [])),
            registry=bool(data.get("registry", False)),
            admin=bool(data.get("admin", False)),
        )
        return cls(rights, str(data["sha256"]), str(data.get("created", "")))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenFile:
    """Read, watch and change one token file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._entries: list[Entry] = []

    # -- the gateway's side ------------------------------------------------------------

    def rights(self, token: str) -> Rights | None:
        """The rights of a presented token, or None when no stored hash matches."""
        self._refresh()
        wanted = digest(token)
        found = None
        for entry in self._entries:  # every hash compared, in constant time each
            if hmac.compare_digest(wanted, entry.sha256) and found is None:
                found = entry.rights
        return found

    def __len__(self) -> int:
        self._refresh()
        return len(self._entries)

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._entries = None, []
            return
        seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        if seen == self._seen:
            return
        try:
            self._entries = self._read()
        except TokenError as exc:  # keep the last good tokens rather than lock everyone out
            log.error("%s; still using the %d tokens read before", exc, len(self._entries))
        self._seen = seen
        log.info("tokens: %d read from %s", len(self._entries), self.path)

    def _read(self) -> list[Entry]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [Entry.from_json(item) for item in data["tokens"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TokenError(f"cannot read the token file {self.path}: {exc}") from exc

    # -- `muster token` ------------------------------------------------------------------

    def add(self, name: str, sites: list[str], registry: bool, admin: bool) -> str:
        """Store a new token's hash under `name`; return the token (shown once)."""
        if not _NAME.match(name):
            raise TokenError(
                f"--name {name!r}: use 1-64 letters, digits, '_', '.' or '-' (no spaces)"
            )
        if not (sites or registry or admin):
            raise TokenError("a token needs rights: --site S (repeatable), --registry or --admin")
        for site in sites:
            if not site or len(site) > 64:
                raise TokenError(f"--site {site!r}: a site_id has 1-64 characters")
        token = "mst_" + secrets.token_urlsafe(32)
        rights = Rights(name, frozenset(sites), registry, admin)
        created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        with self._locked() as entries:
            if any(e.rights.name == name for e in entries):
                raise TokenError(
                    f"a token named {name!r} exists; revoke it first or choose another name"
                )
            entries.append(Entry(rights, digest(token), created))
        return token

    def revoke(self, name: str) -> None:
        with self._locked() as entries:
            kept = [e for e in entries if e.rights.name != name]
            if len(kept) == len(entries):
                known = ", ".join(e.rights.name for e in entries) or "none"
                raise TokenError(f"no token named {name!r} (known: {known})")
            entries[:] = kept

    def entries(self) -> list[Entry]:
        return self._read()

    @contextmanager
    def _locked(self) -> Iterator[list[Entry]]:
        """Read, change and atomically replace the file, one `muster token` at a time."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._read()
            yield entries
            body = json.dumps({"tokens": [e.to_json() for e in entries]}, indent=2)
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(body + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
