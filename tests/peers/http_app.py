"""The routes of the HTTP peer, written against small Request/Response values.

Why: keeping the routes free of socket code makes them easy to read and lets
``http_server`` own all I/O (keep-alive, chunking, TLS, HEAD).

Body bytes are deterministic: ``pattern_bytes(n)`` is ``bytes(range(256))``
repeated and cut to n bytes; ``/bytes/<n>``, ``/chunked/<n>``, ``/slow-body/<n>``
and ``/big/<n>`` all send exactly ``pattern_bytes(n)``.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import gzip
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union
from urllib.parse import parse_qsl, quote

PATTERN = bytes(range(256))
BIG_BLOCK = memoryview(PATTERN * 256)  # 64 KiB, a multiple of 256: /big/n == pattern_bytes(n)
JSON_OBJECT = {"hello": "world", "n": 1, "list": [1, 2, 3], "nested": {"a": None}, "text": "中文"}
GZIP_PLAIN = json.dumps({"gzipped": True, "text": "hello " * 100}).encode()
GZIP_BODY = gzip.compress(GZIP_PLAIN, mtime=0)
SET_COOKIES = ("session=abc123; Path=/; HttpOnly", "theme=dark; Path=/; Max-Age=3600")
CUSTOM_HEADER = ("X-Custom-Header", "ftcore-peer")
DEFAULT_TEXT = "你好, world"

Headers = List[Tuple[str, str]]


def pattern_bytes(n: int, offset: int = 0) -> bytes:
    """n deterministic bytes, starting ``offset`` bytes into the endless pattern."""
    start = offset % 256
    reps = (start + n) // 256 + 1
    return (PATTERN * reps)[start : start + n]


class BodyReader:
    """What the server hands a route to read the request body (interface)."""

    received: int = 0

    def read(self, size: int) -> bytes:  # pragma: no cover - interface
        """Up to ``size`` bytes; b"" at the end of the body."""
        raise NotImplementedError


class Gates:
    """Named barriers that hold ``/gate/<name>`` requests until a test opens them.

    Why: concurrency tests need to know how many requests are *inside* the
    server at once, without sleeping. Use a unique name per test.
    """

    def __init__(self, release: threading.Event) -> None:
        self._release = release
        self._cond = threading.Condition()
        self._open: Dict[str, bool] = {}
        self._arrived: Dict[str, int] = {}
        self._waiting: Dict[str, int] = {}

    def pass_through(self, name: str) -> None:
        """Called by the route: count the arrival, then wait for the gate to open."""
        with self._cond:
            self._arrived[name] = self._arrived.get(name, 0) + 1
            self._waiting[name] = self._waiting.get(name, 0) + 1
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._open.get(name, False) or self._release.is_set())
            self._waiting[name] -= 1
            self._cond.notify_all()

    def open(self, name: str) -> None:
        with self._cond:
            self._open[name] = True
            self._cond.notify_all()

    def wake_all(self) -> None:
        """Teardown: let every held request go (the release event is already set)."""
        with self._cond:
            self._cond.notify_all()

    def arrived(self, name: str) -> int:
        with self._cond:
            return self._arrived.get(name, 0)

    def waiting(self, name: str) -> int:
        with self._cond:
            return self._waiting.get(name, 0)

    def wait_arrived(self, name: str, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` requests have reached the gate; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._arrived.get(name, 0) >= count, timeout)


@dataclass
class Request:
    """One parsed request as the routes see it."""

    method: str
    target: str
    path: str
    query: str
    headers: Headers
    scheme: str
    host: str
    reader: BodyReader
    release: threading.Event
    gates: Gates
    _body: Optional[bytes] = None

    @property
    def params(self) -> Dict[str, str]:
        """Query parameters, percent-decoded; the last value of a name wins."""
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def header(self, name: str) -> Optional[str]:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    def body(self) -> bytes:
        """The whole request body, read once and kept."""
        if self._body is None:
            parts = []
            while True:
                piece = self.reader.read(65536)
                if not piece:
                    break
                parts.append(piece)
            self._body = b"".join(parts)
        return self._body


@dataclass
class Response:
    """A reply. An iterable body is streamed piece by piece (each piece is one
    write, so pacing reaches the wire); with ``length=None`` it is sent chunked."""

    status: int = 200
    headers: Headers = field(default_factory=list)
    body: Union[bytes, Iterable[bytes]] = b""
    length: Optional[int] = None


def json_response(obj: object, status: int = 200, headers: Optional[Headers] = None) -> Response:
    data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    hdrs = [("Content-Type", "application/json; charset=utf-8")] + list(headers or [])
    return Response(status, hdrs, data)


def text_response(
    text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8"
) -> Response:
    return Response(status, [("Content-Type", content_type)], text.encode("utf-8"))


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {value!r}") from None


class BadRequest(Exception):
    """A route's input was malformed: the server answers 400 with the message."""


# --- routes -----------------------------------------------------------------------


def echo(req: Request, match: re.Match[str]) -> Response:
    body = req.body()
    headers: Dict[str, str] = {}
    for name, value in req.headers:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return json_response(
        {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "scheme": req.scheme,
            "headers": headers,
            "header_list": [[name, value] for name, value in req.headers],
            "body": body.decode("latin-1"),
            "body_len": len(body),
        }
    )


def status(req: Request, match: re.Match[str]) -> Response:
    code = _int(match.group(1), "status")
    if not 200 <= code <= 999:
        raise BadRequest("status must be within 200..999")
    if code in (204, 304):
        return Response(code)
    return text_response(f"status {code}", code)


def json_route(req: Request, match: re.Match[str]) -> Response:
    return json_response(JSON_OBJECT)


def json_bom(req: Request, match: re.Match[str]) -> Response:
    data = b"\xef\xbb\xbf" + json.dumps(JSON_OBJECT, ensure_ascii=False).encode("utf-8")
    return Response(200, [("Content-Type", "application/json; charset=utf-8")], data)


def text(req: Request, match: re.Match[str]) -> Response:
    params = req.params
    charset = params.get("charset", "utf-8")
    base = params.get("content_type", "text/plain")
    try:
        data = params.get("body", DEFAULT_TEXT).encode(charset)
    except (LookupError, UnicodeEncodeError) as exc:
        raise BadRequest(str(exc)) from None
    return Response(200, [("Content-Type", f"{base}; charset={charset}")], data)


def not_json(req: Request, match: re.Match[str]) -> Response:
    content_type = req.params.get("content_type", "text/plain")
    return Response(200, [("Content-Type", content_type)], b"hello{")


def bytes_route(req: Request, match: re.Match[str]) -> Response:
    n = _int(match.group(1), "n")
    content_type = req.params.get("content_type", "application/octet-stream")
    return Response(200, [("Content-Type", content_type)], pattern_bytes(n))


def _pieces(n: int, count: int) -> List[Tuple[int, int]]:
    """(offset, size) of ``count`` near-equal pieces covering n bytes."""
    count = max(1, min(count, n)) if n else 0
    bounds = [n * i // count for i in range(count + 1)] if count else [0]
    return [(a, b - a) for a, b in zip(bounds, bounds[1:])]


def chunked(req: Request, match: re.Match[str]) -> Response:
    n = _int(match.group(1), "n")
    pieces = _pieces(n, _int(req.params.get("pieces", "4"), "pieces"))
    delay_s = _int(req.params.get("delay_ms", "0"), "delay_ms") / 1000

    def generate() -> Iterator[bytes]:
        for index, (offset, size) in enumerate(pieces):
            if index and delay_s:
                req.release.wait(delay_s)  # a paced body is the point of this route
            yield pattern_bytes(size, offset)

    return Response(200, [("Content-Type", "application/octet-stream")], generate(), None)


def gzip_route(req: Request, match: re.Match[str]) -> Response:
    headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
    return Response(200, headers, GZIP_BODY)


def cookies(req: Request, match: re.Match[str]) -> Response:
    return json_response({"ok": True}, headers=[("Set-Cookie", c) for c in SET_COOKIES])


def headers_route(req: Request, match: re.Match[str]) -> Response:
    extra = [CUSTOM_HEADER, ("X-Multi", "a"), ("X-Multi", "b")]
    extra += [(name, value) for name, value in parse_qsl(req.query, keep_blank_values=True)]
    return json_response({"ok": True}, headers=extra)


def slow_body(req: Request, match: re.Match[str]) -> Response:
    n = _int(match.group(1), "n")
    pieces = _pieces(n, _int(req.params.get("pieces", "4"), "pieces"))
    delay_s = _int(req.params.get("delay_ms", "50"), "delay_ms") / 1000

    def generate() -> Iterator[bytes]:
        for offset, size in pieces:
            req.release.wait(delay_s)  # a timed wait is the point of this route
            yield pattern_bytes(size, offset)

    return Response(200, [("Content-Type", "application/octet-stream")], generate(), n)


def delay(req: Request, match: re.Match[str]) -> Response:
    req.release.wait(_int(match.group(1), "ms") / 1000)
    return echo(req, match)


def gate(req: Request, match: re.Match[str]) -> Response:
    req.body()
    req.gates.pass_through(match.group(1))
    return echo(req, match)


def _redirect(code: int, location: str) -> Response:
    if not 300 <= code <= 399:
        raise BadRequest("redirect code must be 3xx")
    headers = [("Location", location), ("Content-Type", "text/plain")]
    return Response(code, headers, f"redirecting to {location}".encode())


def _absolute(req: Request, path: str) -> str:
    return f"{req.scheme}://{req.host}{path}"


def redirect(req: Request, match: re.Match[str]) -> Response:
    return _redirect(_int(match.group(1), "code"), req.params.get("to", "/echo"))


def redirect_chain(req: Request, match: re.Match[str]) -> Response:
    hops = _int(match.group(1), "n")
    if hops <= 0:
        return echo(req, match)
    params = req.params
    query = f"?{req.query}" if req.query else ""
    path = f"/redirect-chain/{hops - 1}{query}" if hops > 1 else f"/echo{query}"
    location = _absolute(req, path) if params.get("absolute") else path
    return _redirect(_int(params.get("code", "302"), "code"), location)


def redirect_loop(req: Request, match: re.Match[str]) -> Response:
    query = f"?{req.query}" if req.query else ""
    return _redirect(_int(req.params.get("code", "302"), "code"), f"/redirect-loop{query}")


def _utf8(value: str) -> str:
    """Undo the email parser's surrogateescape of raw UTF-8 header bytes."""
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeError:
        return value


def upload(req: Request, match: re.Match[str]) -> Response:
    content_type = req.header("Content-Type") or ""
    declared = req.header("Content-Length")
    body = req.body()
    if not content_type.lower().startswith("multipart/form-data"):
        return json_response({"error": f"not multipart/form-data: {content_type!r}"}, 400)
    raw = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    fields: Dict[str, str] = {}
    files: Dict[str, Dict[str, object]] = {}
    order: List[str] = []
    for part in message.iter_parts():
        raw_name = part.get_param("name", header="content-disposition") or ""
        name = _utf8(email.utils.collapse_rfc2231_value(raw_name))
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        filename = part.get_filename()
        order.append(name)
        if filename is None:
            fields[name] = payload.decode("utf-8", "replace")
        else:
            files[name] = {
                "filename": _utf8(filename),
                "content_type": part.get_content_type(),
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
    return json_response(
        {
            "fields": fields,
            "files": files,
            "order": order,
            "content_length": int(declared) if declared is not None else None,
            "received": len(body),
        }
    )


def sink(req: Request, match: re.Match[str]) -> Response:
    digest = hashlib.sha256()
    while True:
        piece = req.reader.read(65536)
        if not piece:
            break
        digest.update(piece)
    declared = req.header("Content-Length")
    return json_response(
        {
            "method": req.method,
            "content_length": int(declared) if declared is not None else None,
            "received": req.reader.received,
            "sha256": digest.hexdigest(),
        }
    )


def big(req: Request, match: re.Match[str]) -> Response:
    n = _int(match.group(1), "n")

    def generate() -> Iterator[bytes]:
        block = len(BIG_BLOCK)
        full, rest = divmod(n, block)
        for _ in range(full):
            yield BIG_BLOCK  # type: ignore[misc]  # memoryview: written without a copy
        if rest:
            yield BIG_BLOCK[:rest]  # type: ignore[misc]

    return Response(200, [("Content-Type", "application/octet-stream")], generate(), n)


Route = Callable[[Request, "re.Match[str]"], Response]

ROUTES: List[Tuple[re.Pattern[str], Route]] = [
    (re.compile(pattern), handler)
    for pattern, handler in [
        (r"/echo", echo),
        (r"/status/(\d+)", status),
        (r"/json", json_route),
        (r"/json-bom", json_bom),
        (r"/text", text),
        (r"/not-json", not_json),
        (r"/bytes/(\d+)", bytes_route),
        (r"/chunked/(\d+)", chunked),
        (r"/gzip", gzip_route),
        (r"/cookies", cookies),
        (r"/headers", headers_route),
        (r"/slow-body/(\d+)", slow_body),
        (r"/delay/(\d+)", delay),
        (r"/gate/([\w.-]+)", gate),
        (r"/redirect/(\d+)", redirect),
        (r"/redirect-chain/(\d+)", redirect_chain),
        (r"/redirect-loop", redirect_loop),
        (r"/upload", upload),
        (r"/sink", sink),
        (r"/big/(\d+)", big),
    ]
]


def dispatch(req: Request) -> Response:
    """Run the route matching ``req.path`` (whole-path match); 404 otherwise."""
    for pattern, handler in ROUTES:
        match = pattern.fullmatch(req.path)
        if match:
            try:
                return handler(req, match)
            except BadRequest as exc:
                return text_response(str(exc), 400)
    return text_response(f"no route for {req.path}", 404)


def redirect_target(to: str) -> str:
    """Helper for tests: the query value for ``/redirect/<code>?to=``."""
    return quote(to, safe="")
