"""`muster store`: the embedded store served over ClickHouse's own HTTP interface.

Workers, the gateway, the CLI, Grafana's ClickHouse plugin (HTTP protocol), DBeaver and
curl reach it as they reach a ClickHouse server: `MUSTER_CLICKHOUSE_URL=http://127.0.0.1:8123`.
What is served is the part of that interface those clients use:

- `POST /` with the query in the body, or in `query=` with the body as its data (an
  INSERT's rows); `GET /?query=` for reads only; `/ping` and `/replicas_status`;
- `database`, `default_format`, `param_<name>` (query parameters) and settings in the
  URL; with a `session_id`, `SET` and `USE` hold for the session's later queries;
- results in any format the engine writes (the query's FORMAT clause, else
  `default_format`, else TabSeparated) and inserts in any format it reads (Native,
  RowBinary, JSONEachRow, TabSeparated, CSV, ...);
- request bodies sent with `Content-Encoding` lz4 (frame), gzip or deflate (zstd when the
  `zstandard` module is there), plain or chunked; responses compressed the same ways
  when the client sends `enable_http_compression=1` and accepts one;
- `readonly=1` or `2`, and GET, run on a handle the engine keeps read-only;
- errors as ClickHouse reports them: the HTTP status its error code maps to,
  `X-ClickHouse-Exception-Code`, and `Code: N. DB::Exception: ... (NAME) (version ...)`.

Not served: ClickHouse's compressed block format (`compress=1`, `decompress=1`: clients
that use it, e.g. clickhouse-go with lz4, must be set to no compression), progress headers,
users and passwords (any are accepted: it listens on 127.0.0.1 unless told otherwise).

Every engine call runs on one thread (chdb hung when threads shared a handle): requests are
read, decompressed and answered on threads of their own and take turns at the engine.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.frame

from sinks.reader import NotOneStatement, one_statement
from sinks.store import STORE_FILE, connect, lock_embedded, migrate, quote_ident
from streams.settings import Settings

log = logging.getLogger(__name__)
open_engine: Callable[[str], Any] = chdb.connect

# URL parameters that steer the HTTP exchange, never settings of the query.
TRANSPORT = frozenset(
    {
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "quota_key",
        "user",
        "password",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "role",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "enable_http_compression",
        "http_zlib_compression_level",
        "cancel_http_readonly_queries_on_client_close",
        "add_http_cors_header",
        "readonly",
    }
)

READS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"})

# An INSERT whose rows follow its FORMAT clause: the statement, the format, then the rows.
INSERT_ROWS = re.compile(
    rb"\s*(INSERT\s+INTO\s+.*?)\bFORMAT\s+(\w+)(?:[ \t]*\r?\n|[ \t]+|\s*$)", re.I | re.S
)
TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
ERROR = re.compile(r"Code: (\d+)\. ")
ERROR_NAME = re.compile(r"\s*\(([A-Z][A-Z0-9_]+)\)\s*$")
ENGINE_PREFIX = re.compile(r"\s*(?:Code: \d+\. )?DB::Exception: ")
VERSION = re.compile(r"\s*\(version [^()]*(?:\([^()]*\))?\)\.?\s*$")
SET = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|[^,\s]+)")

# HTTP status per error, as ClickHouse's HTTP handler maps them.
FORBIDDEN = {"READONLY", "ACCESS_DENIED", "UNKNOWN_USER", "WRONG_PASSWORD"}
BAD_REQUEST_PREFIXES = ("CANNOT_PARSE", "CANNOT_READ", "UNEXPECTED_AST", "TOO_DEEP", "TOO_BIG")
BAD_REQUEST = {
    "SYNTAX_ERROR",
    "INCORRECT_DATA",
    "TYPE_MISMATCH",
    "BAD_ARGUMENTS",
    "ILLEGAL_TYPE_OF_ARGUMENT",
    "NUMBER_OF_ARGUMENTS_DOESNT_MATCH",
    "UNKNOWN_QUERY_PARAMETER",
    "BAD_QUERY_PARAMETER",
    "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    "ILLEGAL_COLUMN",
    "NOT_AN_AGGREGATE",
    "ILLEGAL_AGGREGATION",
}
CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "JSONCompactEachRow": "application/x-ndjson; charset=UTF-8",
}


def _zstd() -> Any:
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        return None
    return zstandard


ZSTD = _zstd()


def decompress(data: bytes, encoding: str) -> bytes:
    """A request body as sent with `Content-Encoding: encoding`."""
    if encoding in ("", "identity"):
        return data
    if encoding == "lz4":
        return bytes(lz4.frame.decompress(data))
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "zstd" and ZSTD is not None:
        return bytes(ZSTD.ZstdDecompressor().decompressobj().decompress(data))
    raise StoreRefusal(1, "UNSUPPORTED_METHOD", f"Unknown HTTP Content-Encoding {encoding!r}")


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "lz4": lambda body: bytes(lz4.frame.compress(body)),
    "gzip": lambda body: gzip.compress(body, compresslevel=3),
    "deflate": lambda body: zlib.compress(body, 3),
}
if ZSTD is not None:
    COMPRESSORS["zstd"] = lambda body: bytes(ZSTD.ZstdCompressor().compress(body))


def pick_encoding(accepted: str) -> str | None:
    """The first encoding in an Accept-Encoding header this server writes."""
    for part in accepted.split(","):
        name = part.split(";")[0].strip().lower()
        if name in COMPRESSORS:
            return name
    return None


class StoreRefusal(Exception):
    """A request refused with a ClickHouse error code, as the server would."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name, self.message = code, name, message

    @classmethod
    def of_engine(cls, exc: BaseException) -> StoreRefusal:
        text = str(exc).strip()
        code = ERROR.search(text)
        message = text
        while (inner := ENGINE_PREFIX.match(message)) is not None:  # nested "Code: N. ..."
            message = message[inner.end() :]
        message = VERSION.sub("", message).strip().rstrip(".")
        name = ERROR_NAME.search(message)
        message = ERROR_NAME.sub("", message).strip().rstrip(".")
        return cls(int(code[1]) if code else 1000, name[1] if name else "STD_EXCEPTION", message)

    @property
    def status(self) -> int:
        if self.name in FORBIDDEN:
            return 403
        if self.name.startswith("UNKNOWN_"):
            return 404
        if self.name in BAD_REQUEST or self.name.startswith(BAD_REQUEST_PREFIXES):
            return 400
        if self.name == "UNSUPPORTED_METHOD":
            return 501
        return 500

    def body(self, version: str) -> bytes:
        return (
            f"Code: {self.code}. DB::Exception: {self.message}. ({self.name}) "
            f"(version {version} (muster store))\n"
        ).encode()


@dataclass
class Call:
    """One statement for the engine, as the request asked for it."""

    sql: str
    fmt: str
    rows: bytes | None = None  # an INSERT's rows, read from a file
    params: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    database: str = "default"
    readonly: bool = False


@dataclass
class Answer:
    body: bytes
    summary: dict[str, str]


@dataclass
class Handle:
    """A chdb connection, with the database and settings last applied to it."""

    conn: Any
    database: str = "default"
    settings: dict[str, str] = field(default_factory=dict)


class Engine:
    """The store's engine, every call on one thread: a handle for writes and one the
    engine keeps read-only (`readonly = 2`: settings may change, data may not)."""

    def __init__(self, path: str) -> None:
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.spool = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
        self.write, self.read = self.thread.submit(self._open, path).result()
        meta = self.thread.submit(self._run, self.read, Call("SELECT version(), timezone()", "TSV"))
        self.version, self.timezone = meta.result().body.decode().strip().split("\t")

    @staticmethod
    def _open(path: str) -> tuple[Handle, Handle]:
        write, read = Handle(open_engine(path)), Handle(open_engine(path))
        read.conn.query("SET readonly = 2", "TSV")
        return write, read

    def run(self, call: Call) -> Answer:
        return self.thread.submit(
            self._run, self.read if call.readonly else self.write, call
        ).result()

    def _run(self, handle: Handle, call: Call) -> Answer:
        try:
            self._prepare(handle, call)
            if call.rows is None:
                result = handle.conn.query(call.sql, call.fmt, params=call.params)
                return Answer(result.bytes() or b"", _summary(result, "read"))
            with tempfile.NamedTemporaryFile(dir=self.spool, suffix=".rows") as rows:
                rows.write(call.rows)
                rows.flush()
                path = rows.name.replace("'", "\\'")
                sql = f"{call.sql} FROM INFILE '{path}' FORMAT {call.fmt}"
                result = handle.conn.query(sql, "TSV", params=call.params)
            return Answer(b"", _summary(result, "written"))
        except StoreRefusal:
            raise
        except Exception as exc:  # chdb raises its own error types, all with the code
            raise StoreRefusal.of_engine(exc) from exc

    @staticmethod
    def _prepare(handle: Handle, call: Call) -> None:
        """The call's database and settings on the handle: a setting it leaves out goes
        back to its default, one it changes is set."""
        if call.database != handle.database:
            handle.conn.query(f"USE {quote_ident(call.database)}", "TSV")
            handle.database = call.database
        for name in [n for n in handle.settings if n not in call.settings]:
            handle.conn.query(f"SET {_ident(name)} = DEFAULT", "TSV")
            del handle.settings[name]
        for name, value in call.settings.items():
            if handle.settings.get(name) != value:
                literal = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
                handle.conn.query(f"SET {_ident(name)} = {literal}", "TSV")
                handle.settings[name] = value

    def close(self) -> None:
        def shut() -> None:
            for handle in (self.read, self.write):
                handle.conn.close()

        self.thread.submit(shut).result()
        self.thread.shutdown()


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise StoreRefusal(115, "UNKNOWN_SETTING", f"Setting {name!r} is not a setting name")
    return name


def _summary(result: Any, kind: str) -> dict[str, str]:
    rows, size = str(result.rows_read()), str(result.bytes_read())
    summary = {"read_rows": rows, "read_bytes": size, "written_rows": "0", "written_bytes": "0"}
    if kind == "written":  # an INFILE insert reads exactly the rows it writes
        summary |= {
            "read_rows": "0",
            "read_bytes": "0",
            "written_rows": rows,
            "written_bytes": size,
        }
    summary["elapsed_ns"] = str(int(result.elapsed() * 1e9))
    return summary


def first_word(sql: str) -> str:
    """The statement's keyword, past comments, white space and opening brackets."""
    text = re.sub(r"^(?:\s+|--[^\n]*\n?|/\*.*?\*/|\()*", "", sql, flags=re.S)
    match = re.match(r"[A-Za-z]+", text)
    return match[0].upper() if match else ""


@dataclass
class Session:
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    used: float = field(default_factory=time.monotonic)


class Sessions:
    """`SET` and `USE` kept per `session_id` for `session_timeout` seconds (60)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: dict[str, tuple[Session, float]] = {}

    def get(self, session_id: str, timeout: float) -> Session:
        now = time.monotonic()
        with self.lock:
            for key, (session, ttl) in list(self.held.items()):
                if now - session.used > ttl:
                    del self.held[key]
            session = self.held.get(session_id, (Session(), timeout))[0]
            session.used = now
            self.held[session_id] = (session, timeout)
            return session


class StoreServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: Engine, database: str) -> None:
        super().__init__(address, StoreRequest)
        self.engine = engine
        self.database = database
        self.sessions = Sessions()


class StoreRequest(BaseHTTPRequestHandler):
    server: StoreServer
    protocol_version = "HTTP/1.1"
    server_version = "muster-store"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._answer(b"", readonly=True)

    def do_POST(self) -> None:
        self._answer(self._body(), readonly=False)

    def do_HEAD(self) -> None:
        self._reply(200, b"", {"Content-Type": "text/plain; charset=UTF-8"})

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, body: bytes, readonly: bool) -> None:
        url = urlsplit(self.path)
        query_id = str(uuid.uuid4())
        try:
            if url.path in ("/ping", "/replicas_status") or (
                url.path == "/" and not url.query and not body
            ):
                self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
                return
            if url.path != "/":
                raise StoreRefusal(
                    1000,
                    "UNKNOWN_HANDLER",
                    f"There is no handle {url.path} (muster store serves /, /ping)",
                )
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            query_id = params.get("query_id") or query_id
            call = self._call(params, body, readonly)
            answer = self.server.engine.run(call)
            headers = {
                "Content-Type": CONTENT_TYPES.get(call.fmt, _content_type(call.fmt)),
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Summary": json.dumps(answer.summary),
            }
            if call.rows is None and first_word(call.sql) in READS:
                headers["X-ClickHouse-Format"] = call.fmt
            payload = answer.body
            encoding = pick_encoding(self.headers.get("Accept-Encoding", ""))
            if params.get("enable_http_compression") == "1" and encoding and payload:
                payload = COMPRESSORS[encoding](payload)
                headers["Content-Encoding"] = encoding
            self._reply(200, payload, headers)
        except Exception as exc:  # any other failure: an answer, not a dropped connection
            self._refuse(exc if isinstance(exc, StoreRefusal) else _unexpected(exc), query_id)

    def _refuse(self, exc: StoreRefusal, query_id: str) -> None:
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(exc.code),
            "X-ClickHouse-Query-Id": query_id,
        }
        self._reply(exc.status, exc.body(self.server.engine.version), headers)

    def _call(self, params: dict[str, str], body: bytes, readonly: bool) -> Call:
        body = decompress(body, self.headers.get("Content-Encoding", "").strip().lower())
        kind = self.headers.get("Content-Type", "")
        if kind.startswith("multipart/form-data"):  # the query and parameters as form fields
            fields = form_fields(body, kind)
            params = params | {k: v.decode() for k, v in fields.items() if k != "query"}
            params["query"], body = fields.get("query", b"").decode(), b""
        if params.get("decompress") == "1" or params.get("compress") == "1":
            raise StoreRefusal(
                1,
                "UNSUPPORTED_METHOD",
                "ClickHouse's compressed block format "
                "(compress=1, decompress=1) is not served: turn the client's compression off",
            )
        text = params["query"].encode() + b"\n" + body if "query" in params else body
        session = None
        if session_id := params.get("session_id"):
            session = self.server.sessions.get(
                session_id, float(params.get("session_timeout") or 60)
            )
        settings = dict(session.settings) if session else {}
        settings |= {
            k: v for k, v in params.items() if k not in TRANSPORT and not k.startswith("param_")
        }
        database = params.get("database") or (session and session.database) or self.server.database
        readonly = readonly or params.get("readonly", "0") not in ("", "0")
        call = Call("", "TabSeparated", settings=settings, database=database, readonly=readonly)
        call.params = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        if (insert := INSERT_ROWS.match(text)) is not None:
            call.sql, call.fmt = insert[1].decode().strip(), insert[2].decode()
            call.rows = text[insert.end() :]
            if readonly:
                raise _readonly()
            return call
        try:
            sql = one_statement(text.decode())
        except NotOneStatement as exc:
            raise StoreRefusal(
                62, "SYNTAX_ERROR", f"Multi-statements are not allowed: {exc}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise StoreRefusal(
                27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED", f"the query is not UTF-8: {exc}"
            ) from exc
        if not sql.strip():
            raise StoreRefusal(62, "SYNTAX_ERROR", "Empty query")
        word = first_word(sql)
        if word in ("SET", "USE"):
            return self._session_statement(word, sql, session, call)
        if readonly and word not in READS:
            raise _readonly()
        fmt = TRAILING_FORMAT.search(sql)
        call.sql, call.fmt = sql, fmt[1] if fmt else params.get("default_format") or "TabSeparated"
        return call

    def _session_statement(self, word: str, sql: str, session: Session | None, call: Call) -> Call:
        """`SET` and `USE` change the session (without one, only their own query)."""
        rest = re.sub(r"^\s*\w+\s*", "", sql).strip().rstrip(";").strip()
        if word == "USE":
            database = rest.strip('`"')
            call.sql = f"EXISTS DATABASE {quote_ident(database)}"  # a missing one is an error
            call.database = database
            if session is not None:
                session.database = database
        else:
            pairs = {name: value.strip("'") for name, value in SET.findall(rest)}
            if not pairs:
                raise StoreRefusal(62, "SYNTAX_ERROR", f"Cannot parse SET {rest!r}")
            call.settings |= pairs
            call.sql = "SELECT 1 WHERE 0"  # the engine checks the settings on the way
            if session is not None:
                session.settings |= pairs
        call.fmt, call.readonly = "TabSeparated", True
        return call

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("X-ClickHouse-Server-Display-Name", "muster-store")
        self.send_header("X-ClickHouse-Timezone", self.server.engine.timezone)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Keep-Alive", "timeout=30")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def form_fields(body: bytes, content_type: str) -> dict[str, bytes]:
    """The fields of a multipart/form-data body (clickhouse-connect sends a query and its
    parameters so when they are too long for a URL). Files (external data) are refused."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        raise StoreRefusal(1, "UNSUPPORTED_METHOD", "multipart/form-data without a boundary")
    fields = {}
    for part in body.split(b"--" + boundary[1].encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name is None:
            continue
        if re.search(rb"filename=", head):
            raise StoreRefusal(
                1, "UNSUPPORTED_METHOD", "external data (a file field) is not served"
            )
        fields[name[1].decode()] = value.removesuffix(b"\r\n")
    return fields


def _content_type(fmt: str) -> str:
    if fmt.startswith("JSON"):
        return "application/json; charset=UTF-8"
    if fmt.startswith(("TabSeparated", "TSV")):
        return "text/tab-separated-values; charset=UTF-8"
    if fmt.startswith(("Pretty", "Vertical", "Markdown", "Values")):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


def _unexpected(exc: Exception) -> StoreRefusal:
    log.exception("muster store: a request failed")
    return StoreRefusal(1001, "STD_EXCEPTION", f"{type(exc).__name__}: {exc}")


def _readonly() -> StoreRefusal:
    return StoreRefusal(
        164,
        "READONLY",
        "Cannot execute query in readonly mode. For queries over HTTP, method GET implies "
        "readonly. You should use method POST for modifying queries",
    )


def served_url(settings: Settings) -> str:
    """Where `muster store` answers, as other processes on this machine reach it."""
    host = "127.0.0.1" if settings.store_host in ("0.0.0.0", "") else settings.store_host
    return f"http://{host}:{settings.store_port}"


def serve(settings: Settings, ready: Callable[[str], None] | None = None) -> int:
    """Open and migrate the embedded store, then serve it until SIGTERM or Ctrl-C."""
    lock_embedded(settings.data_dir)
    path = str((settings.data_dir / "store").resolve())
    client = connect(f"chdb://{path}", settings.database)
    if applied := migrate(client):
        log.info("store migrated: %s", ", ".join(applied))
    client.close()
    engine = Engine(path)
    server = StoreServer((settings.store_host, settings.store_port), engine, settings.database)
    url = served_url(settings)
    (settings.data_dir / STORE_FILE).write_text(json.dumps({"url": url, "pid": os.getpid()}))
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"store: {url} serves {path} (database {settings.database})", file=sys.stderr, flush=True)
    if ready is not None:
        ready(url)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        engine.close()
        (settings.data_dir / STORE_FILE).unlink(missing_ok=True)
    return 0
