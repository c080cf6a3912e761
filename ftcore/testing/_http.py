"""The HTTP half of the mock: scripted replies, the routes that hold them, and the transport.

Everything runs on the runtime's loop: delays are `call_later` timers, never a sleeping
thread, so a task's timeout or `abort()` meets a scripted reply exactly as it would meet a
slow server. The core applies every rule of the API around it (encoding, redirects, dataType,
progress, domain lists); the mock only answers.
"""

from __future__ import annotations

import gzip
import json as _json
import math
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import parse_qsl, urlsplit

from ..errors import Errno, FtError
from ._errors import ERROR_KINDS, transport_error
from ._match import UrlMatcher, UrlSpec
from ._script import LoopTransport

if TYPE_CHECKING:
    from ..loop import Handle
    from ..transports import HttpRequest, HttpSink

__all__ = ["Reply", "MockRequest", "HttpRoute", "HttpMock", "transport_error", "ERROR_KINDS"]


HeadersSpec = Union[Mapping[str, Any], Iterable[Tuple[str, Any]], None]
Piece = Union[bytes, str, Exception]
Handler = Callable[["MockRequest"], "Reply"]
ReplySpec = Union["Reply", Sequence["Reply"], Handler]

_NOTHING: Any = object()


@dataclass
class Reply:
    """One scripted HTTP answer.

    `body` (bytes, or str sent as UTF-8), `json` (any JSON-able value; sets
    ``Content-Type: application/json``) and `chunks` (pieces delivered one `sink.body` call
    each) are mutually exclusive. A piece of `chunks` may be an exception: the body stops
    there and the exchange fails with it, as a connection cut mid-body does.

    `delay` is the seconds between the request body being read and the headers
    (``math.inf``: the server never answers); `chunk_delay` the seconds between two pieces.
    `error` fails the exchange as the transport would report it: ``"refused"``, ``"tls"``,
    ``"dns"`` and ``"network"`` (or an exception instance) instead of a response; ``"reset"``
    after the headers and the pieces given, cutting the body short.

    A Content-Length header is added (the total of the pieces) unless `headers` has one or
    `content_length` is False (a response of unknown length, as with chunked encoding).
    """

    status: int = 200
    headers: HeadersSpec = None
    body: Union[bytes, str, None] = None
    json: Any = _NOTHING
    chunks: Optional[Sequence[Piece]] = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    error: Union[str, Exception, None] = None
    content_length: bool = True

    def __post_init__(self) -> None:
        given = [self.body is not None, self.json is not _NOTHING, self.chunks is not None]
        if sum(given) > 1:
            raise ValueError("Reply takes at most one of body, json and chunks")
        if not isinstance(self.status, int) or not 100 <= self.status <= 999:
            raise ValueError("status must be an int in 100..999, not %r" % (self.status,))
        if self.delay < 0 or self.chunk_delay < 0:
            raise ValueError("delays must not be negative")
        if self.error is not None:
            transport_error(self.error)  # validates the kind

    @classmethod
    def redirect(cls, location: str, status: int = 302, headers: HeadersSpec = None) -> "Reply":
        """A 3xx pointing at `location` (the core follows it, or not, per `redirect`)."""
        return cls(status=status, headers=[("Location", location), *_header_list(headers)])

    def _pieces(self) -> List[Piece]:
        if self.chunks is not None:
            return [_bytes(p) if isinstance(p, str) else p for p in self.chunks]
        if self.json is not _NOTHING:
            return [_json.dumps(self.json, ensure_ascii=False).encode("utf-8")]
        if self.body is not None:
            return [_bytes(self.body)]
        return []

    def _plan(self, method: str, decode: bool) -> "_Plan":
        headers = _header_list(self.headers)
        names = {name.lower() for name, _ in headers}
        pieces = self._pieces()
        if "content-type" not in names:
            if self.json is not _NOTHING:
                headers.append(("Content-Type", "application/json; charset=utf-8"))
            elif isinstance(self.body, str):
                headers.append(("Content-Type", "text/plain; charset=utf-8"))
        data = [p for p in pieces if isinstance(p, (bytes, bytearray, memoryview))]
        if (
            self.content_length
            and "content-length" not in names
            and "transfer-encoding" not in names
            and self.status not in (204, 304)
            and not 100 <= self.status < 200
        ):
            headers.append(("Content-Length", str(sum(len(p) for p in data))))
        encoding = next((v.lower() for n, v in headers if n.lower() == "content-encoding"), "")
        if decode and encoding in ("gzip", "deflate") and len(data) == len(pieces) and data:
            raw = b"".join(data)
            pieces = [gzip.decompress(raw) if encoding == "gzip" else zlib.decompress(raw)]
        if method == "HEAD":
            pieces = [p for p in pieces if isinstance(p, Exception)]
        before, after = None, None
        if self.error is not None:
            if self.error == "reset":
                after = transport_error("reset")
            else:
                before = transport_error(self.error)
        return _Plan(self.status, headers, pieces, before, after)


@dataclass
class _Plan:
    status: int
    headers: List[Tuple[str, str]]
    pieces: List[Piece]
    error_before: Optional[Exception]
    error_after: Optional[Exception]


@dataclass
class MockRequest:
    """What the mock server saw of one HTTP exchange (one hop of a redirect chain)."""

    method: str
    url: str
    headers: List[Tuple[str, str]]
    body: bytes = b""
    timeout: Optional[float] = None
    route: Optional["HttpRoute"] = field(default=None, repr=False)
    aborted: bool = False

    def header(self, name: str) -> Optional[str]:
        """The first value of header `name` (case-insensitive), or None."""
        lower = name.lower()
        return next((v for n, v in self.headers if n.lower() == lower), None)

    @property
    def params(self) -> Dict[str, str]:
        """The query string as a dict (the last value of a repeated name wins)."""
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return _json.loads(self.body.decode("utf-8"))


class HttpRoute:
    """A method + URL rule and what it answers; `calls` lists the requests it served."""

    def __init__(
        self,
        method: Optional[str],
        url: UrlSpec,
        reply: ReplySpec,
        prefix: bool = False,
        times: Optional[int] = None,
    ) -> None:
        self.method = None if method in (None, "*") else str(method).upper()
        self.matcher = UrlMatcher(url, prefix)
        self._queue: Optional[Deque[Reply]] = None
        self._reply: Union[Reply, Handler, None] = None
        if isinstance(reply, Reply) or callable(reply):
            self._reply = reply
        elif (
            isinstance(reply, (list, tuple)) and reply and all(isinstance(r, Reply) for r in reply)
        ):
            self._queue = deque(reply)
        else:
            raise TypeError("reply must be a Reply, a non-empty list of Reply, or a callable")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        self.times = times
        self.calls: List[MockRequest] = []

    def __repr__(self) -> str:
        return "<HttpRoute %s %r, %d call(s)>" % (self.method or "*", self.matcher, len(self.calls))

    @property
    def called(self) -> bool:
        return bool(self.calls)

    @property
    def exhausted(self) -> bool:
        """True when the route answers no more (its queue is empty or `times` is reached)."""
        if self.times is not None and len(self.calls) >= self.times:
            return True
        return self._queue is not None and not self._queue

    def matches(self, method: str, url: str) -> bool:
        return (self.method is None or self.method == method) and self.matcher.matches(url)

    def _take(self, request: MockRequest) -> Union[Reply, Handler]:
        self.calls.append(request)
        if self._queue is not None:
            return self._queue.popleft()
        assert self._reply is not None
        return self._reply


class HttpMock:
    """The scripted HTTP server of a `MockTransport` (``mock.http``).

    Routes are tried in the order they were added; the first that matches and is not
    exhausted answers. A request no route answers fails like a closed port (errno 600014,
    ``connection refused``), naming the method and URL.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.routes: List[HttpRoute] = []
        self.requests: List[MockRequest] = []

    def add(
        self,
        method: Optional[str],
        url: UrlSpec,
        reply: Optional[ReplySpec] = None,
        *,
        prefix: bool = False,
        times: Optional[int] = None,
        **reply_fields: Any,
    ) -> HttpRoute:
        """Script an answer for `method` (``"*"`` or None: any) and `url`.

        Give the answer as keywords of `Reply` (``status=``, ``headers=``, ``json=`` ...), or
        as `reply`: a `Reply` (answers every time), a list of `Reply` (a queue: each is used
        once, in order, then the route is exhausted and later routes get their turn), or a
        callable ``handler(MockRequest) -> Reply`` called once the request body is read.
        `times` limits how many requests the route answers.
        """
        if reply is not None and reply_fields:
            raise TypeError("give either a reply or Reply keywords, not both")
        route = HttpRoute(
            method, url, reply if reply is not None else Reply(**reply_fields), prefix, times
        )
        with self._lock:
            self.routes.append(route)
        return route

    def reset(self) -> None:
        """Forget every route and every recorded request."""
        with self._lock:
            self.routes.clear()
            self.requests.clear()

    def _route_for(self, request: MockRequest) -> Union[Reply, Handler, None]:
        with self._lock:
            self.requests.append(request)
            for route in self.routes:
                if not route.exhausted and route.matches(request.method, request.url):
                    request.route = route
                    return route._take(request)
        return None


class _Transport(LoopTransport[HttpMock, "_Exchange"]):
    """`HttpTransport` over an `HttpMock`, bound to one runtime's loop."""

    def start(self, request: "HttpRequest", sink: "HttpSink") -> "_Exchange":
        exchange = self._track(_Exchange(self, request, sink))
        self._loop.call_soon_threadsafe(exchange._begin)
        return exchange


class _Exchange:
    """One request/response, stepped by loop callbacks; `abort()` stops it dead."""

    def __init__(self, transport: _Transport, request: "HttpRequest", sink: "HttpSink") -> None:
        self._transport = transport
        self._loop = transport._loop
        self._request = request
        self._sink = sink
        self._handle: Optional["Handle"] = None
        self._over = False
        self._body: Optional[Iterator[Any]] = None
        self._parts: List[bytes] = []
        self._sent = 0
        self._received = 0
        self._plan: Optional[_Plan] = None
        self._chunk_delay = 0.0
        self._reply: Union[Reply, Handler, None] = None
        self.record = MockRequest(
            request.method.upper(), request.url, list(request.headers), timeout=request.timeout
        )
        self._info = _connection_info(request.url)

    def abort(self) -> None:
        if self._over:
            return
        self.record.aborted = True
        self._finish()

    def _finish(self) -> None:
        self._over = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._transport._forget(self)

    def _later(self, delay: float, step: Callable[[], None]) -> None:
        if math.isinf(delay):
            return  # never: the task's timeout or abort() ends it
        self._handle = (
            self._loop.call_later(delay, self._run, step)
            if delay
            else self._loop.call_soon(self._run, step)
        )

    def _run(self, step: Callable[[], None]) -> None:
        self._handle = None
        if self._over:
            return
        try:
            step()
        except Exception as error:  # a scripted handler raised, or a request body did
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        self._finish()
        self._sink.error(error)

    # -- steps --------------------------------------------------------------------------------

    def _begin(self) -> None:
        if self._over:
            return
        self._reply = self._transport._mock._route_for(self.record)
        body = self._request.body
        if body is None or isinstance(body, (bytes, bytearray, memoryview)):
            self._parts.append(bytes(body or b""))
            self._run(self._body_read)
        else:
            self._body = iter(body)
            self._run(self._pull)

    def _pull(self) -> None:
        """Read one piece of a streamed body per loop pass, reporting it as sent."""
        assert self._body is not None
        try:
            piece = next(self._body)
        except StopIteration:
            self._body_read()
            return
        piece = bytes(piece)
        self._parts.append(piece)
        self._sent += len(piece)
        if piece:
            self._sink.sent(len(piece))
        self._later(0, self._pull)

    def _body_read(self) -> None:
        body = b"".join(self._parts)
        self.record.body = body
        if self._body is None and body:
            self._sent = len(body)
            self._sink.sent(len(body))
        self._info["requestEnd"] = _now_ms()
        reply = self._reply
        if reply is None:
            self._fail(
                FtError(
                    Errno.CONNECTION_REFUSED,
                    "connection refused (ftcore.testing: no mock route for %s %s)"
                    % (self.record.method, self.record.url),
                )
            )
            return
        if not isinstance(reply, Reply):
            reply = reply(self.record)
            if not isinstance(reply, Reply):
                raise TypeError("a mock handler must return a Reply, not %r" % (reply,))
        self._plan = reply._plan(self.record.method, self._request.decode_content)
        self._chunk_delay = reply.chunk_delay
        self._later(reply.delay, self._headers)

    def _headers(self) -> None:
        plan = self._plan
        assert plan is not None
        if plan.error_before is not None:
            self._fail(plan.error_before)
            return
        self._info["responseStart"] = _now_ms()
        self._sink.headers(plan.status, list(plan.headers), dict(self._info))
        self._later(0, self._piece)

    def _piece(self) -> None:
        plan = self._plan
        assert plan is not None
        if not plan.pieces:
            if plan.error_after is not None:
                self._fail(plan.error_after)
                return
            self._finish()
            info = dict(
                self._info,
                responseEnd=_now_ms(),
                sendBytesCount=self._sent,
                receivedBytedCount=self._received,
            )
            self._sink.end(info)
            return
        piece = plan.pieces.pop(0)
        if isinstance(piece, Exception):
            self._fail(piece)
            return
        self._received += len(piece)
        try:
            self._sink.body(piece)
        except Exception:  # the sink refused the body (the task failed): drop the connection
            self._finish()
            return
        if plan.pieces:
            self._later(self._chunk_delay, self._piece)
        else:
            self._later(0, self._piece)


def _connection_info(url: str) -> Dict[str, Any]:
    parts = urlsplit(url)
    tls = parts.scheme.lower() == "https"
    now = _now_ms()
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        port = 0
    return {
        "peerIP": "127.0.0.1",
        "port": port,
        "socketReused": False,
        "protocol": "http/1.1",
        "connectStart": now,
        "connectEnd": now,
        "SSLconnectionStart": now if tls else 0,
        "SSLconnectionEnd": now if tls else 0,
        "requestStart": now,
        "requestEnd": now,
    }


def _now_ms() -> float:
    return time.time() * 1000.0


def _bytes(value: Union[bytes, str]) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _header_list(headers: HeadersSpec) -> List[Tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), str(value)) for name, value in items]
