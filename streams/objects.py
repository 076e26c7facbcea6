"""A small S3-compatible object store on a directory, so the embedded broker keeps its topics.

Tansu, the embedded broker, keeps topics in memory unless given an object store: the build
muster ships has the S3 engine (and no SQLite or PostgreSQL one). This serves the part of
S3's HTTP interface Tansu's client uses (the Rust `object_store` crate, path-style
requests) from files under `MUSTER_DATA_DIR/broker/`: PUT (with `If-None-Match: *` and
`If-Match` for Tansu's compare-and-swap), GET (ranges too), HEAD, DELETE, bulk delete and
ListObjectsV2. Requests are not authenticated: it listens on 127.0.0.1 only, for the
broker muster starts beside it.

Each object is a file; a write goes to a temporary file renamed over the old one, under
one lock, so a conditional write and the read it compares against never interleave, and a
killed process leaves the last whole version. Writes are not synced to the disk: what a
killed process wrote is in the page cache all the same; a power cut may lose the last
seconds (the store, which the worker reads back from, is the memory of last resort).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

log = logging.getLogger(__name__)

BUCKET = "tansu"
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
LIST_MAX = 1000


class ObjectDir:
    """Objects as files under `root`, one folder per bucket."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()

    def path(self, bucket: str, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/") or "\0" in key:
            raise ValueError(f"bad key {key!r}")
        return self.root / bucket / key

    @staticmethod
    def etag(data: bytes) -> str:
        return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'

    def read(self, bucket: str, key: str) -> tuple[bytes, float] | None:
        try:
            path = self.path(bucket, key)
            return path.read_bytes(), path.stat().st_mtime
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def write(
        self, bucket: str, key: str, data: bytes, if_match: str | None, if_none_match: str | None
    ) -> str | None:
        """Store `data`; the new ETag, or None when a precondition fails."""
        path = self.path(bucket, key)
        with self.lock:
            held = self.read(bucket, key)
            if if_none_match == "*" and held is not None:
                return None
            if if_match is not None and (held is None or self.etag(held[0]) != if_match):
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)  # no fsync: a killed process loses nothing written,
            os.replace(tmp, path)  # only a power cut could (Tansu's own disk use is alike)
        return self.etag(data)

    def delete(self, bucket: str, key: str) -> None:
        with self.lock:
            try:
                self.path(bucket, key).unlink()
            except FileNotFoundError:
                pass

    def keys(self, bucket: str, prefix: str) -> list[str]:
        base = self.root / bucket
        if not base.is_dir():
            return []
        # walk only the folder the prefix names
        folder = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        out = []
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue
                key = Path(dirpath, name).relative_to(base).as_posix()
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)


class Handler(BaseHTTPRequestHandler):
    store: ObjectDir
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        log.debug(format, *args)

    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        bucket, _, key = unquote(parts.path.lstrip("/")).partition("/")
        return bucket, key, parse_qs(parts.query, keep_blank_values=True)

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error>"
        ).encode()
        self._send(status, body, {"Content-Type": "application/xml"})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_PUT(self) -> None:
        bucket, key, _ = self._target()
        data = self._body()
        try:
            etag = self.store.write(
                bucket, key, data, self.headers.get("If-Match"), self.headers.get("If-None-Match")
            )
        except ValueError as exc:
            return self._error(400, "InvalidArgument", str(exc))
        if etag is None:
            return self._error(412, "PreconditionFailed", f"{key}: precondition failed")
        self._send(200, b"", {"ETag": etag})

    def do_GET(self) -> None:
        bucket, key, query = self._target()
        if not key:
            return self._list(bucket, query)
        try:
            held = self.store.read(bucket, key)
        except ValueError as exc:
            return self._error(400, "InvalidArgument", str(exc))
        if held is None:
            return self._error(404, "NoSuchKey", f"{key} does not exist")
        data, mtime = held
        etag = self.store.etag(data)
        wanted = self.headers.get("If-Match")
        if wanted is not None and wanted not in (etag, "*"):
            return self._error(412, "PreconditionFailed", f"{key}: precondition failed")
        if self.headers.get("If-None-Match") == etag:
            return self._send(304, b"", {"ETag": etag, "Content-Length": "0"})
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(mtime, usegmt=True),
            "Content-Type": "application/octet-stream",
        }
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
        if ranged and data:
            first = int(ranged[1]) if ranged[1] else max(len(data) - int(ranged[2]), 0)
            last = int(ranged[2]) if ranged[1] and ranged[2] else len(data) - 1
            last = min(last, len(data) - 1)
            headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
            return self._send(206, data[first : last + 1], headers)
        self._send(200, data, headers)

    do_HEAD = do_GET

    def do_DELETE(self) -> None:
        bucket, key, _ = self._target()
        try:
            self.store.delete(bucket, key)
        except ValueError as exc:
            return self._error(400, "InvalidArgument", str(exc))
        self._send(204)

    def do_POST(self) -> None:
        bucket, _, query = self._target()
        if "delete" not in query:
            return self._error(501, "NotImplemented", "only bulk delete is served")
        keys = [unquote(k) for k in re.findall(r"<Key>(.*?)</Key>", self._body().decode())]
        deleted = []
        for key in keys:
            key = key.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
            self.store.delete(bucket, key)
            deleted.append(f"<Deleted><Key>{escape(key)}</Key></Deleted>")
        body = f'<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="{XMLNS}">'
        self._send(200, (body + "".join(deleted) + "</DeleteResult>").encode())

    def _list(self, bucket: str, query: dict[str, list[str]]) -> None:
        def one(name: str) -> str:
            return query.get(name, [""])[0]

        prefix, delimiter = one("prefix"), one("delimiter")
        after = one("continuation-token") or one("start-after")
        contents, prefixes = [], []
        for key in self.store.keys(bucket, prefix):
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
            held = self.store.read(bucket, key)
            if held is None:
                continue
            data, mtime = held
            modified = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            items.append(
                f"<Contents><Key>{escape(key)}</Key><LastModified>{modified}Z</LastModified>"
                f"<ETag>{escape(self.store.etag(data))}</ETag><Size>{len(data)}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
        common = "".join(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>"
                         for p in prefixes)  # fmt: skip
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
        self._send(200, body.encode(), {"Content-Type": "application/xml"})


def serve(root: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Start serving `root` in a background thread; the server's address is on it."""
    handler = type("ObjectHandler", (Handler,), {"store": ObjectDir(root)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="objects", daemon=True).start()
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


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
