"""A small S3-compatible object store on a directory, so the embedded broker keeps its topics.

Tansu, the embedded broker, keeps topics in memory unless given an object store: the build
muster ships has the S3 engine (and no SQLite or PostgreSQL one). This serves the part of
S3's HTTP interface Tansu's client uses (the Rust `object_store` crate, path-style
requests) from `MUSTER_DATA_DIR/broker/`: PUT (with `If-None-Match: *` and
`If-Match` for Tansu's compare-and-swap), GET (ranges too), HEAD, DELETE, bulk delete and
ListObjectsV2. Requests are not authenticated: it listens on 127.0.0.1 only, for the
broker muster starts beside it. aiohttp serves it: Tansu waits for each write (two a record
batch), and the standard library's server took about a millisecond a request.

Objects live in one append-only log (`ObjectLog`), written under one lock, so a
conditional write and the version it compares against never interleave. Writes are not
synced to the disk: what a killed process wrote is in the page cache all the same; a power
cut may lose the last seconds (the store, which the worker reads back from, is the memory
of last resort).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
import logging
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web

log = logging.getLogger(__name__)

BUCKET = "tansu"
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
LIST_MAX = 1000


HEADER = struct.Struct("<IId")  # key length, data length (GONE: deleted), when written
GONE = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Held:
    offset: int  # of the data in the log
    size: int
    mtime: float
    etag: str


class ObjectLog:
    """Objects in one append-only file (`objects.log` under `root`), indexed in memory.

    A write appends (key, data); a delete appends a tombstone. Creating a file for each
    object cost this machine's file system about a millisecond, and Tansu writes two
    objects a record batch and waits for each; an append to an open file costs
    microseconds. Reads take the bytes back from the file (the page cache). At the start
    the index is rebuilt by reading the log through, a record cut short by a crash is
    dropped, and when most of the log is superseded versions it is rewritten compactly.
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / "objects.log"
        self.lock = threading.Lock()
        self.index: dict[str, Held] = {}
        self.garbage = 0
        end = self._load()
        self.file = self.path.open("r+b" if self.path.exists() else "w+b")
        self.file.truncate(end)  # a record a crash cut short
        self.file.seek(end)
        if self.garbage > max(64 << 20, end // 2):
            self._compact()

    def _load(self) -> int:
        if not self.path.exists():
            return 0
        end = 0
        with self.path.open("rb") as log_file:
            data = log_file.read()
        while end + HEADER.size <= len(data):
            klen, dlen, mtime = HEADER.unpack_from(data, end)
            body = end + HEADER.size
            size = 0 if dlen == GONE else dlen
            if body + klen + size > len(data):
                break
            name = data[body : body + klen].decode()
            old = self.index.pop(name, None)
            self.garbage += 0 if old is None else old.size
            if dlen != GONE:
                value = data[body + klen : body + klen + dlen]
                self.index[name] = Held(body + klen, dlen, mtime, _etag(value))
            end = body + klen + size
        return end

    def _compact(self) -> None:
        tmp = self.path.with_suffix(".compact")
        index: dict[str, Held] = {}
        with tmp.open("wb") as out:
            for name, held in sorted(self.index.items()):
                data = self._bytes(held)
                key = name.encode()
                out.write(HEADER.pack(len(key), len(data), held.mtime) + key)
                index[name] = Held(out.tell(), len(data), held.mtime, held.etag)
                out.write(data)
        os.replace(tmp, self.path)
        self.file.close()
        self.file = self.path.open("r+b")
        self.file.seek(0, os.SEEK_END)
        self.index, self.garbage = index, 0

    @staticmethod
    def name(bucket: str, key: str) -> str:
        if not key or "\0" in key:
            raise ValueError(f"bad key {key!r}")
        return f"{bucket}/{key}"

    def _bytes(self, held: Held) -> bytes:
        return os.pread(self.file.fileno(), held.size, held.offset)

    def meta(self, bucket: str, key: str) -> Held | None:
        return self.index.get(self.name(bucket, key))

    def read(self, bucket: str, key: str) -> tuple[bytes, float, str] | None:
        held = self.meta(bucket, key)
        return None if held is None else (self._bytes(held), held.mtime, held.etag)

    def write(
        self, bucket: str, key: str, data: bytes, if_match: str | None, if_none_match: str | None
    ) -> str | None:
        """Store `data`; the new ETag, or None when a precondition fails."""
        name = self.name(bucket, key)
        with self.lock:
            held = self.index.get(name)
            if if_none_match == "*" and held is not None:
                return None
            if if_match is not None and (held is None or held.etag != if_match):
                return None
            now = time.time()
            encoded = name.encode()
            # no fsync: a killed process loses nothing written, only a power cut could
            self.file.write(HEADER.pack(len(encoded), len(data), now) + encoded)
            offset = self.file.tell()
            self.file.write(data)
            self.file.flush()
            etag = _etag(data)
            self.index[name] = Held(offset, len(data), now, etag)
            self.garbage += 0 if held is None else held.size
        return etag

    def delete(self, bucket: str, key: str) -> None:
        name = self.name(bucket, key)
        with self.lock:
            held = self.index.pop(name, None)
            if held is not None:
                encoded = name.encode()
                self.file.write(HEADER.pack(len(encoded), GONE, time.time()) + encoded)
                self.file.flush()
                self.garbage += held.size

    def keys(self, bucket: str, prefix: str) -> list[str]:
        start = f"{bucket}/"
        full = start + prefix
        return sorted(n[len(start) :] for n in self.index if n.startswith(full))

    def close(self) -> None:
        with self.lock:
            self.file.close()


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def _error(status: int, code: str, message: str) -> web.Response:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def app_for(store: ObjectLog) -> web.Application:
    """The S3 routes Tansu's client uses, path-style: /bucket/key."""

    async def put(request: web.Request) -> web.Response:
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        data = await request.read()
        try:
            etag = store.write(
                bucket,
                key,
                data,
                request.headers.get("If-Match"),
                request.headers.get("If-None-Match"),
            )
        except ValueError as exc:
            return _error(400, "InvalidArgument", str(exc))
        if etag is None:
            return _error(412, "PreconditionFailed", f"{key}: precondition failed")
        return web.Response(status=200, headers={"ETag": etag})

    async def get(request: web.Request) -> web.Response:
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        try:
            held = store.read(bucket, key)
        except ValueError as exc:
            return _error(400, "InvalidArgument", str(exc))
        if held is None:
            return _error(404, "NoSuchKey", f"{key} does not exist")
        data, mtime, etag = held
        wanted = request.headers.get("If-Match")
        if wanted is not None and wanted not in (etag, "*"):
            return _error(412, "PreconditionFailed", f"{key}: precondition failed")
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        headers = {"ETag": etag, "Last-Modified": formatdate(mtime, usegmt=True)}
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("Range") or "")
        if ranged and data:
            first = int(ranged[1]) if ranged[1] else max(len(data) - int(ranged[2]), 0)
            last = int(ranged[2]) if ranged[1] and ranged[2] else len(data) - 1
            last = min(last, len(data) - 1)
            headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
            return web.Response(status=206, body=data[first : last + 1], headers=headers)
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=data, headers=headers)

    async def delete(request: web.Request) -> web.Response:
        try:
            store.delete(request.match_info["bucket"], request.match_info["key"])
        except ValueError as exc:
            return _error(400, "InvalidArgument", str(exc))
        return web.Response(status=204)

    async def bulk_delete(request: web.Request) -> web.Response:
        bucket = request.match_info["bucket"]
        if "delete" not in request.query:
            return _error(501, "NotImplemented", "only bulk delete is served")
        deleted = []
        for key in re.findall(r"<Key>(.*?)</Key>", await request.text()):
            key = key.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            store.delete(bucket, key)
            deleted.append(f"<Deleted><Key>{escape(key)}</Key></Deleted>")
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="{XMLNS}">'
            f"{''.join(deleted)}</DeleteResult>"
        )
        return web.Response(text=body, content_type="application/xml")

    async def listing(request: web.Request) -> web.Response:
        bucket = request.match_info["bucket"]
        prefix = request.query.get("prefix", "")
        delimiter = request.query.get("delimiter", "")
        after = request.query.get("continuation-token") or request.query.get("start-after", "")
        contents: list[str] = []
        prefixes: list[str] = []
        for key in store.keys(bucket, prefix):
            if after and key <= after:
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest.split(delimiter, 1)[0] + delimiter
                if common not in prefixes:
                    prefixes.append(common)
                continue
            contents.append(key)
        truncated = len(contents) > LIST_MAX
        contents = contents[:LIST_MAX]
        items = []
        for key in contents:
            meta = store.meta(bucket, key)  # a listing reads no object's bytes
            if meta is None:
                continue
            when = datetime.fromtimestamp(meta.mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
            items.append(
                f"<Contents><Key>{escape(key)}</Key><LastModified>{when[:-3]}Z</LastModified>"
                f"<ETag>{escape(meta.etag)}</ETag><Size>{meta.size}"
                "</Size><StorageClass>STANDARD</StorageClass></Contents>"
            )
        common = "".join(
            f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes
        )
        token = (
            f"<NextContinuationToken>{escape(contents[-1])}</NextContinuationToken>"
            if truncated
            else ""
        )
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{XMLNS}">'
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(items) + len(prefixes)}</KeyCount><MaxKeys>{LIST_MAX}</MaxKeys>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
            f"{token}{''.join(items)}{common}</ListBucketResult>"
        )
        return web.Response(text=body, content_type="application/xml")

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_route("GET", "/{bucket}", listing)
    app.router.add_route("GET", "/{bucket}/", listing)
    app.router.add_route("POST", "/{bucket}", bulk_delete)
    app.router.add_route("PUT", "/{bucket}/{key:.+}", put)
    app.router.add_route("GET", "/{bucket}/{key:.+}", get)  # HEAD too
    app.router.add_route("DELETE", "/{bucket}/{key:.+}", delete)
    return app


class Served:
    """The object store served on a thread of its own (its own event loop)."""

    def __init__(self, root: Path, host: str, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app_for(ObjectLog(root)), access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        sock = socket.create_server((host, port))
        self.address: tuple[str, int] = sock.getsockname()[:2]
        self.loop.run_until_complete(web.SockSite(self.runner, sock).start())
        self.thread = threading.Thread(target=self.loop.run_forever, name="objects", daemon=True)
        self.thread.start()

    def shutdown(self) -> None:
        async def stop() -> None:
            await self.runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def serve(root: Path, host: str = "127.0.0.1", port: int = 0) -> Served:
    """Start serving `root` in a background thread; `url_of` tells where."""
    return Served(root, host, port)


def url_of(server: Served) -> str:
    host, port = server.address
    return f"http://{host}:{port}"


def main(argv: list[str]) -> int:
    """`python -m streams.objects DIR -- COMMAND…`: serve DIR, then run COMMAND (Tansu) with
    the object store's address in its environment; stop it on SIGTERM or SIGINT, and go
    when it goes. Tansu also dies with this process (the kernel's parent-death signal)."""
    root, _, command = argv[0], argv[1], argv[2:]
    server = serve(Path(root))
    env = os.environ | {
        "AWS_ENDPOINT": url_of(server),
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "muster",
        "AWS_SECRET_ACCESS_KEY": "muster",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_SKIP_SIGNATURE": "true",
        "AWS_UNSIGNED_PAYLOAD": "true",
    }
    child = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: child.send_signal(signal.SIGTERM))
    code = child.wait()
    server.shutdown()
    return code


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when this process dies (Linux prctl)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
