"""`connectEventSource`: the browser's EventSource for Python hosts (API.md §10).

One `request` per connection (GET, `enableChunked`, no deadline: a stream lives until it
ends), its chunks parsed by `streaming.SseParser` as the WHATWG rules say, and the rules of
the EventSource's own lifecycle:

* CONNECTING (readyState 0) until the response is a 200 with a `text/event-stream`
  Content-Type: then OPEN (1) and `onOpen`. Any other status (204 and errors included) or
  type *fails the connection*: CLOSED (2), `onError`, no reconnection (as browsers do).
* A stream that ends, or a network error (refused, reset, timeout, name, TLS), *reestablishes
  the connection*: CONNECTING, `onError`, and after the reconnection time (3 s, or the
  `retry` option, until the server's `retry:` field sets it) a new request carrying
  `Last-Event-ID` when an event ID was seen. Other failures (domain list, bad URL, refused by an
  interceptor) fail the connection.
* `close()` from any thread: CLOSED at once, no event after it returns, a pending
  reconnection cancelled. `rt.close()` closes it too.

The lifecycle is a table (`EVENT_SOURCE`) over the socket states: PEER_CLOSED is "the
stream was lost, reconnect", FAIL is "failed the connection". Events: `onOpen` →
``{"type": "open", "statusCode", "header"}``; `onMessage` and `addEventListener(type, cb)` →
``{"type", "data", "lastEventId", "origin"}`` (a browser MessageEvent); `onError` →
``{"type": "error", "errMsg", "readyState"}`` (plus `errno` when a request failure caused it).
A listener of a type other than "message" hears events from when it is added.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional
from urllib.parse import urlsplit

from .streaming import SseParser, StreamLimitError
from .._core.endpoint import Endpoint, EndpointEvent, EndpointState
from .._core.listeners import event_methods
from .._core.state import Table
from ..errors import Errno, FtError

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["EventSource", "EVENT_SOURCE", "RECONNECTION_TIME_MS"]

API = "connectEventSource"
RECONNECTION_TIME_MS = 3000  # the WHATWG spec's suggestion; `retry` option, then the server
# failures after which a browser reconnects (network errors); any other one is final
RETRIED = frozenset(
    {
        Errno.NETWORK,
        Errno.CONNECTION_REFUSED,
        Errno.CONNECTION_RESET,
        Errno.NAME_NOT_RESOLVED,
        Errno.TIMEOUT,
        Errno.TLS,
        Errno.BAD_RESPONSE,
    }
)

_S, _E = EndpointState, EndpointEvent
EVENT_SOURCE: Table[EndpointState, EndpointEvent] = Table(
    "EventSource",
    _S.CONNECTING,
    {
        _S.CONNECTING: {
            _E.CONNECTED: _S.OPEN,  # 200 + text/event-stream
            _E.PEER_CLOSED: _S.CONNECTING,  # a network error: try again later
            _E.FAIL: _S.FAILED,  # fail the connection
            _E.CLOSE: _S.CLOSED,
            _E.SHUTDOWN: _S.CLOSED,
        },
        _S.OPEN: {
            _E.PEER_CLOSED: _S.CONNECTING,  # the stream ended or broke: reconnect
            _E.FAIL: _S.FAILED,
            _E.CLOSE: _S.CLOSED,
            _E.SHUTDOWN: _S.CLOSED,
        },
        _S.CLOSED: {},
        _S.FAILED: {},
    },
)


class EventSource(Endpoint):
    """What `connectEventSource` returns; safe to use from any thread."""

    CONNECTING = 0
    OPEN = 1
    CLOSED = 2

    _table = EVENT_SOURCE

    onOpen, offOpen = event_methods("Open")  # noqa: N815
    onMessage, offMessage = event_methods("Message")  # noqa: N815
    onError, offError = event_methods("Error")  # noqa: N815

    def __init__(
        self, runtime: "Runtime", options: Dict[str, Any], refusal: Optional[FtError] = None
    ) -> None:
        super().__init__(runtime)  # tracked by the runtime from here
        self.url = options.get("url")
        self.withCredentials = bool(options.get("withCredentials", False))  # noqa: N815
        self._header = options.get("header")
        self._retry_ms = options.get("retry", RECONNECTION_TIME_MS)
        self._last_id = ""
        self._origin = _origin(self.url)
        self._generation = 0  # of the current request; events of an older one are dropped
        self._task: Any = None
        self._timer: Any = None
        self._parser: Optional[SseParser] = None
        self._loop.call_soon_threadsafe(self._start, refusal or _options_error(options))

    @property
    def readyState(self) -> int:  # noqa: N802
        """0 connecting, 1 open, 2 closed (at once after `close()`)."""
        if self._closed or self._ended:
            return self.CLOSED
        return self.OPEN if self._state is _S.OPEN else self.CONNECTING

    @property
    def lastEventId(self) -> str:  # noqa: N802
        """The last event ID seen: what a reconnection sends as `Last-Event-ID`."""
        return self._last_id

    def addEventListener(self, type: str, callback: Callable[..., Any]) -> None:  # noqa: N802,A002
        """`callback(res)` for each event of `type` ("message", "open", "error", or any
        type the server names in an `event:` field)."""
        self._listeners.add(_listener_name(type), callback)

    def removeEventListener(self, type: str, callback: Any = None) -> None:  # noqa: N802,A002
        self._listeners.remove(_listener_name(type), callback)

    # -- loop thread ----------------------------------------------------------------------------

    def _start(self, refusal: Optional[FtError]) -> None:
        if refusal is not None:
            self._fail_connection(refusal.reason, refusal.errno)
        else:
            self._connect()

    def _connect(self) -> None:
        self._timer = None
        if self._closed or self._ended:
            return
        header = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        header.update(self._header or {})
        if self._last_id:
            header["Last-Event-ID"] = self._last_id
        self._generation += 1
        generation = self._generation
        self._parser = SseParser(last_event_id=self._last_id)

        def mine(handler: Callable[..., None]) -> Callable[[Dict[str, Any]], None]:
            def call(res: Dict[str, Any]) -> None:
                if generation == self._generation and not self._closed:
                    handler(res)

            return call

        task = self._task = self._runtime.request(
            url=self.url,
            header=header,
            method="GET",
            enableChunked=True,
            responseType="arraybuffer",
            timeout=math.inf,  # a stream has no deadline; close() ends it
            success=mine(self._on_end),
            fail=mine(self._on_fail),
        )
        task.onHeadersReceived(mine(self._on_headers))
        task.onChunkReceived(mine(self._on_chunk))

    def _on_headers(self, res: Dict[str, Any]) -> None:
        status = res["statusCode"]
        content_type = next(
            (v for k, v in res["header"].items() if k.lower() == "content-type"), ""
        )
        if status != 200:
            self._fail_connection("HTTP status %d" % status)
        elif content_type.split(";", 1)[0].strip().lower() != "text/event-stream":
            self._fail_connection("content-type %r is not text/event-stream" % content_type)
        else:
            self._fire(_E.CONNECTED)
            self._listeners.emit(
                "Open", {"type": "open", "statusCode": status, "header": res["header"]}
            )

    def _on_chunk(self, res: Dict[str, Any]) -> None:
        parser = self._parser
        assert parser is not None
        try:
            events = parser.feed(res["data"])
        except StreamLimitError as error:
            self._fail_connection("response too large: %s" % error, Errno.RESPONSE_TOO_LARGE)
            return
        self._last_id = parser.last_event_id
        if parser.retry is not None:
            self._retry_ms = parser.retry
        generation = self._generation
        for event in events:
            if self._closed or generation != self._generation:
                return  # a listener closed it
            kind = event["event"]
            name = _listener_name(kind)
            if name == "Message" or self._listeners.has(name):
                self._listeners.emit(
                    name,
                    {
                        "type": kind,
                        "data": event["data"],
                        "lastEventId": event["id"],
                        "origin": self._origin,
                    },
                )

    def _on_end(self, res: Dict[str, Any]) -> None:
        if self._state is _S.OPEN:
            self._reestablish("the stream ended", None)

    def _on_fail(self, res: Dict[str, Any]) -> None:
        errno = res.get("errno")
        reason = str(res.get("errMsg", "")).partition(":fail ")[2] or "network error"
        if errno in RETRIED:
            self._reestablish(reason, errno)
        else:
            self._fail_connection(reason, errno)

    def _reestablish(self, reason: str, errno: Optional[int]) -> None:
        """The stream was lost: CONNECTING, onError, then a new request after the delay."""
        if self._closed or self._ended:
            return
        self._fire(_E.PEER_CLOSED)
        self._drop_request()
        self._emit_error(reason, errno)
        if not self._closed and not self._ended:  # an onError listener may have closed it
            self._timer = self._loop.call_later(max(0, self._retry_ms) / 1000.0, self._connect)

    def _fail_connection(self, reason: str, errno: Optional[int] = None) -> None:
        if self._closed or self._ended:
            return
        self._end(_E.FAIL)
        self._emit_error(reason, errno)

    def _emit_error(self, reason: str, errno: Optional[int]) -> None:
        res: Dict[str, Any] = {
            "type": "error",
            "errMsg": "%s:fail %s" % (API, reason),
            "readyState": self.readyState,
        }
        if errno is not None:
            res["errno"] = int(errno)
        self._listeners.emit("Error", res)

    def _drop_request(self) -> None:
        """Forget the current request (its late events are dropped) and abort it."""
        self._generation += 1
        task, self._task = self._task, None
        if task is not None:
            task.abort()  # a no-op once it ended

    def _end(self, event: EndpointEvent) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._drop_request()
        if not self._ended:
            self._fire(event)

    def _close_now(self) -> None:
        self._end(_E.CLOSE)

    def _shutdown(self) -> None:
        self._closed = True
        self._end(_E.SHUTDOWN)


def _listener_name(type_: str) -> str:
    """The `Listeners` name of an event type: the on… names for the three standard ones."""
    standard = {"message": "Message", "open": "Open", "error": "Error"}
    return standard.get(type_) or "event:%s" % (type_,)


def _origin(url: Any) -> str:
    try:
        parts = urlsplit(url)
        return "%s://%s" % (parts.scheme, parts.netloc) if parts.scheme else ""
    except (TypeError, ValueError):
        return ""


def _options_error(options: Dict[str, Any]) -> Optional[FtError]:
    retry = options.get("retry", RECONNECTION_TIME_MS)
    if isinstance(retry, bool) or not isinstance(retry, (int, float)) or not retry >= 0:
        return FtError(Errno.INVALID_OPTION, "invalid retry %r" % (retry,))
    header = options.get("header")
    if header is not None and not isinstance(header, dict):
        return FtError(Errno.INVALID_OPTION, "header must be an object")
    return None
