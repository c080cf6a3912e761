"""HTTP semantics shared by request, downloadFile and uploadFile (API.md §3).

`HttpTaskBase` owns everything a mini-program relies on around a transport: URL checks, the
domain list at every hop, one deadline for the whole task, the `maxConcurrent.http` queue,
redirects, abort, `onHeadersReceived` and `profile`. `_request.RequestTask` adds `request`'s
options, data encoding and response decoding. The transport (any `ftcore.transports.HttpTransport`)
only moves bytes.

Threads. Everything touching task state, listeners or callbacks runs on the loop thread. A
transport may report from the loop itself (then events are handled at once, no hop) or from its
own threads through `_HopSink`; the sink forwards `headers`, `end` and `error` to the loop
through one ordered inbox per task (`_call_on_loop`), so that a burst of events (headers,
chunks, end of a small response) costs one loop wake-up. Anything arriving for a hop that is no
longer current, or after the task ended (abort, timeout), is dropped.

Timeout. The deadline counts from the moment the loop starts the task (the call, in practice),
so time spent queued for a `maxConcurrent.http` slot and every redirect hop count, as in WeChat.

Stale keep-alive connections (API.md §11). A server may close an idle keep-alive connection
just as a request goes out on it. The core owns the rule, so every transport gets it: when the
transport reports a failure with errno 600015 (EOF or reset) on a reused connection before any
byte of the response arrived (the facts of `HttpSink.error`), the same request is sent again,
once per task, on a new connection (`HttpRequest.fresh_connection`), for every method: a bytes
body is sent again, a streamed one (uploadFile's file) is read again from its first byte. A
body that cannot be replayed (a one-shot iterator) is never retried. The success result then
carries `exception: {"retryCount": 1, "reasons": [{"errno", "errMsg"}]}` and `profile`
describes the new connection. Upload progress never goes backwards: the retried attempt's
bytes are reported only once they pass the furthest point already reported (`_HopSink.sent`).
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urljoin, urlsplit, urlunsplit

from .._core.listeners import event_methods
from .._core.slots import Claim
from .._core.stash import StashKey
from .._core.state import ENDED, Event
from .._core.task import Task, logger
from ..errors import Errno, FtError
from ..transports import HttpRequest, TlsSettings

if TYPE_CHECKING:
    from .runtime import Runtime
    from ..transports import Header, HttpExchange, HttpTransport

__all__ = ["HttpTaskBase", "MAX_REDIRECTS", "BODY_HEADERS", "header_dict"]

MAX_REDIRECTS = 10
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
BODY_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _now_ms() -> float:
    return time.time() * 1000.0


def header_dict(headers: List["Header"]) -> Tuple[Dict[str, str], List[str]]:
    """The response `header` dict and `cookies` list of a header list.

    One entry per name as the server spelled it first; repeated names are joined with ", ",
    except Set-Cookie, whose values all go to `cookies` (and the last one to `header`, as
    WeChat shows it).
    """
    result: Dict[str, str] = {}
    cookies: List[str] = []
    spelling: Dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower == "set-cookie":
            cookies.append(value)
            key = spelling.setdefault(lower, name)
            result[key] = value
            continue
        known = spelling.get(lower)
        if known is None:
            spelling[lower] = name
            result[name] = value
        else:
            result[known] = result[known] + ", " + value
    return result, cookies


# The common shape, checked with one regex: scheme, a plain host name or IPv4 address, an
# optional port of at most 5 digits, then anything without control characters or spaces.
_SIMPLE_URL = re.compile(
    r"[hH][tT][tT][pP][sS]?://[A-Za-z0-9.-]+(?::([0-9]{1,5}))?(?:[/?#][^\x00-\x20\x7f]*)?\Z"
)


# URLs that passed the check: a host asks for the same few again and again (a dict lookup
# instead of the regex, 0.05 against 0.5 µs). Bounded in count, as a crawler's URLs are all new,
# and in length, as a redirect's Location is the server's to choose: 512 KiB at most.
_CHECKED_URLS: Dict[str, None] = {}
_CHECKED_URLS_MAX = 256
_CHECKED_URL_MAX_LENGTH = 2048


def check_http_url(url: Any) -> str:
    """`url` if it is an absolute http(s) URL with a host, else FtError 600009."""
    if type(url) is str and url in _CHECKED_URLS:
        return url
    if not isinstance(url, str) or not url:
        raise FtError(Errno.INVALID_URL)
    simple = _SIMPLE_URL.match(url)
    if simple is not None and (simple.group(1) is None or int(simple.group(1)) <= 65535):
        if len(url) <= _CHECKED_URL_MAX_LENGTH and len(_CHECKED_URLS) < _CHECKED_URLS_MAX:
            _CHECKED_URLS[url] = None
        return url
    if _CONTROL.search(url):
        raise FtError(Errno.INVALID_URL)
    try:
        parts = urlsplit(url)
        if "\\" in parts.netloc:  # urllib3 would end the host at the backslash, urlsplit not:
            raise ValueError(url)  # the domain list would judge a host we never connect to
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise FtError(Errno.INVALID_URL) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FtError(Errno.INVALID_URL)
    return url


def _origin(url: str) -> Tuple[str, str, Optional[int]]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


class _HopSink:
    """The `HttpSink` of one exchange (one hop); called on the transport's thread.

    Tolerant by design: calls that race an abort, or come after `end`/`error`, are dropped, so
    a transport need not synchronise with `abort()`.
    """

    __slots__ = ("task", "final", "closed", "heard", "written", "acked", "body_lock", "__weakref__")

    def __init__(self, task: "HttpTaskBase") -> None:
        self.task = task
        self.final = True
        self.closed = False
        self.heard = False  # the transport reported the response head
        self.written = 0  # request body bytes this exchange wrote
        # Set by the loop once `_headers_received` ran (or the hop ended): gated bodies wait.
        self.acked = threading.Event() if task._gate_body else None
        self.body_lock = threading.Lock()  # a transport thread's body() against close()

    def sent(self, nbytes: int) -> None:
        """Only bytes past what the hop already reported reach the task: the exchange retried
        after a stale connection sends the body again from its start."""
        if self.closed:
            return
        self.written += nbytes
        task = self.task
        beyond = self.written - task._body_reported
        if beyond > 0:
            task._body_reported += beyond
            task._sent(beyond)

    def headers(self, status: int, headers: List["Header"], info: Dict[str, Any]) -> None:
        self.heard = True
        self.final = not self.task._is_redirect(status, headers)
        self.task._post(self, self.task._on_headers, status, headers, info)

    def body(self, chunk: Any) -> None:
        if not self.final:
            if self.closed:
                raise _SinkClosed()
            return  # a redirect's body: nobody reads it
        acked = self.acked
        if acked is not None and not acked.is_set():
            if self.task._loop.in_loop_thread():  # called inside start(): the headers wait
                self.task._post(self, self.task._receive_body, bytes(chunk))  # for the next
                return  # loop pass, and so does this piece, after them
            acked.wait()
        if self.task._loop.in_loop_thread():
            # No lock here: close() runs on this thread too, so nothing races it, and the
            # piece may run listeners at once (progress) that abort the task, closing the sink.
            self._receive(chunk)
            return
        with self.body_lock:
            self._receive(chunk)

    def _receive(self, chunk: Any) -> None:
        if self.closed:
            raise _SinkClosed()
        try:
            self.task._receive_body(chunk)
        except FtError as error:
            self.closed = True
            self.task._post(self, self.task._on_error, error, force=True)
            raise _SinkClosed() from None

    def end(self, info: Dict[str, Any]) -> None:
        self.task._post(self, self.task._on_end, info)

    def error(self, error: Exception, info: Optional[Dict[str, Any]] = None) -> None:
        self.task._post(self, self.task._on_error, error, info)

    def close(self) -> None:
        """Loop thread: nothing more from this hop reaches the task."""
        with self.body_lock:
            self.closed = True
        if self.acked is not None:
            self.acked.set()


class _SinkClosed(Exception):
    """Raised into the transport from `HttpSink.body`: stop, drop the connection."""


class HttpTaskBase(Task):
    """Shared by request/downloadFile/uploadFile.

    The base validates the URL (errno 600009 "invalid url" for a missing or non-http(s) url),
    checks the domain list on every hop (`runtime.check_url(api, url)`), keeps one deadline for
    the whole task (`runtime.timeout_for(api, options)`, counted from the start, queueing and
    redirects included; a timer on the loop fails the task with "<api>:fail timeout"), queues for
    a `maxConcurrent.http` slot (`runtime.http_slots`; released exactly once on any end; a task
    aborted while queued is withdrawn), follows redirects (at most 10 hops, then errno 600008
    "too many redirects"; 301/302/303 become GET without a body and without content-type/length,
    307/308 keep method and body; a relative Location is resolved; credentials are dropped when
    the origin changes) or, in manual mode, ends on the 3xx, runs the transport exchange, and
    handles abort, `onHeadersReceived` and `profile`.

    Subclasses implement (thread in brackets):

    * `_first_request(options) -> HttpRequest` [loop]: method, url, headers, body. Also called
      again for a 307/308 hop when the first body was not bytes (a stream cannot be replayed).
    * `_redirect_mode(options) -> "follow" | "manual"` [loop]: default "follow".
    * `_headers_received(status, headers)` [loop]: final hop only, before any body chunk reaches
      `_receive_body`; may raise `FtError` to fail the task.
    * `_receive_body(chunk)` [transport]: final hop only; `chunk` may be a reused memoryview
      (copy what you keep); may raise `FtError`: the exchange is dropped and the task fails.
      Use `_call_on_loop(fn, *args)` to run anything on the loop, in order with the hop's events.
    * `_sent(nbytes)` [transport]: request body bytes that left (upload progress); never
      more than the body in total per hop, even when the exchange was retried.
    * `_completed(status, headers, profile) -> dict` [loop]: the success dict without errMsg,
      or None when a listener it ran (download's last progress) ended the task meanwhile.
    * `_discard()` [loop]: the task failed (error, abort, timeout): drop partial state. Runs
      after the exchange was dropped and before fail/complete are called.

    `_gate_body` (class attribute, default True) makes the transport thread wait until the loop
    ran `_headers_received` before the first `_receive_body`; a subclass whose
    `_receive_body` does not depend on it may turn it off to save a thread round trip.
    """

    _gate_body = True

    onHeadersReceived, offHeadersReceived = event_methods("HeadersReceived")  # noqa: N815

    # Until a task sets its own: the immutable starting values live on the class, so a task
    # is made with the few assignments that differ (a request's task is made for every call).
    _prepared: Dict[str, Any] = {}  # replaced, never changed in place
    _request: Optional[HttpRequest] = None
    _transport: Optional["HttpTransport"] = None
    _exchange: Optional["HttpExchange"] = None
    _sink: Optional[_HopSink] = None
    _timer: Any = None
    _deadline = math.inf
    _slot: Optional[Claim] = None  # from the start until released
    _mode = "follow"
    _hops = 0
    _fetch_start = 0.0
    _redirect_start = 0.0
    _redirect_end = 0.0
    _status = 0
    _headers: List["Header"] = []  # replaced, never changed in place
    _header_info: Dict[str, Any] = {}  # replaced, never changed in place
    _header_dict: Optional[Tuple[Dict[str, str], List[str]]] = None
    _inbox_scheduled = False
    _starting = False
    _body_reported = 0  # request body bytes of this hop reported to `_sent`

    def __init__(self, runtime: "Runtime", options: Dict[str, Any]) -> None:
        super().__init__(runtime, options)
        # the ordered inbox from transport threads to the loop
        self._inbox: List[Tuple[Any, ...]] = []
        self._inbox_lock = threading.Lock()
        self._retried: List[FtError] = []  # why the request was sent again (at most once)

    # -- subclass interface ---------------------------------------------------------------------

    def _first_request(self, options: Dict[str, Any]) -> HttpRequest:
        raise NotImplementedError

    def _redirect_mode(self, options: Dict[str, Any]) -> str:
        return "follow"

    def _headers_received(self, status: int, headers: List["Header"]) -> None:
        pass

    def _receive_body(self, chunk: Any) -> None:
        pass

    def _sent(self, nbytes: int) -> None:
        pass

    def _completed(
        self, status: int, headers: List["Header"], profile: Dict[str, Any]
    ) -> Optional[Dict[str, Any]]:
        raise NotImplementedError

    def _discard(self) -> None:
        pass

    def _call_on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        """From the transport thread: run `fn(*args)` on the loop after the events already
        reported for the current hop; dropped if the hop or the task ended meanwhile."""
        sink = self._sink
        if sink is not None:
            self._post(sink, fn, *args)

    # -- start ----------------------------------------------------------------------------------

    def _start(self, options: Dict[str, Any]) -> None:
        self._fetch_start = _now_ms()
        self._prepared = options
        runtime = self._runtime
        timeout = runtime.timeout_for(self.api, options)
        url = check_http_url(options.get("url"))
        self._mode = self._redirect_mode(options)
        request = self._first_request(options)
        if request.url is not url:
            check_http_url(request.url)
        runtime.check_url(self.api, request.url)
        self._transport = runtime.transport("http")
        if request.tls is None:
            request.tls = _tls_of(runtime)
        self._request = request
        if timeout != math.inf:
            self._deadline = self._loop.time() + timeout
            self._timer = self._loop.call_later(timeout, self._on_timeout)
        self._runtime._observe(self, "started", options)
        self._slot = Claim(runtime.http_slots, self._slot_acquired)
        self._slot.take()

    def _slot_acquired(self) -> None:
        if self._state in ENDED:  # an observer of "started" aborted it: give the slot back
            self._settle_timers()
            return
        assert self._request is not None
        self._send(self._request)

    def _send(self, request: HttpRequest) -> None:
        """Start a hop (the first request, or a redirect's)."""
        self._body_reported = 0
        self._dispatch(request)

    def _dispatch(self, request: HttpRequest) -> None:
        """Hand `request` to the transport with a new sink (a hop, or its retry)."""
        if self._deadline != math.inf:
            request.timeout = max(0.0, self._deadline - self._loop.time())
        self._request = request
        sink = _HopSink(self)
        self._sink = sink
        assert self._transport is not None
        self._starting = True  # a sink call from inside start() waits for the next loop pass
        try:
            self._exchange = self._transport.start(request, sink)
        except FtError as error:
            self._fail(error)
        except Exception as error:  # a transport bug: fail, never crash the loop
            logger.exception("ftcore: %r failed to start %s", self._transport, self)
            self._fail(FtError(Errno.NETWORK, "transport error: %s" % error))
        finally:
            self._starting = False

    # -- transport thread → loop ----------------------------------------------------------------

    def _post(
        self, sink: _HopSink, fn: Callable[..., Any], *args: Any, force: bool = False
    ) -> None:
        if sink.closed and not force:
            return
        if self._loop.thread_id == threading.get_ident() and not self._starting:
            if self._inbox:  # after what a transport thread posted before
                self._drain_inbox()
            self._handle(sink, fn, args)
            return
        with self._inbox_lock:
            self._inbox.append((sink, fn, args))
            if self._inbox_scheduled:
                return
            self._inbox_scheduled = True
        self._loop.call_soon_threadsafe(self._drain_inbox)

    def _drain_inbox(self) -> None:
        with self._inbox_lock:
            events, self._inbox = self._inbox, []
            self._inbox_scheduled = False
        for sink, fn, args in events:
            self._handle(sink, fn, args)

    def _handle(self, sink: _HopSink, fn: Callable[..., Any], args: Tuple[Any, ...]) -> None:
        if sink is not self._sink or self._state in ENDED:
            return
        try:
            fn(*args)
        except FtError as error:
            self._fail(error)
        except Exception as error:
            logger.exception("ftcore: %s failed handling a transport event", self)
            self._fail(FtError(Errno.NETWORK, "internal error: %s" % error))

    def _is_redirect(self, status: int, headers: List["Header"]) -> bool:
        """Whether this response is a hop to follow (pure: called on the transport thread)."""
        if status not in REDIRECT_CODES or self._mode != "follow":
            return False
        return any(name.lower() == "location" for name, _ in headers)

    def _on_headers(self, status: int, headers: List["Header"], info: Dict[str, Any]) -> None:
        sink = self._sink
        assert sink is not None
        self._status, self._headers, self._header_info = status, headers, info
        if not sink.final:
            return  # a redirect: acted on at its end, once its body was drained
        header, cookies = self._header_dict = header_dict(headers)
        self._listeners.emit(
            "HeadersReceived",
            {"header": dict(header), "statusCode": status, "cookies": list(cookies)},
        )
        if self._state in ENDED:  # a listener aborted the task
            return
        try:
            self._headers_received(status, headers)
        finally:
            if sink.acked is not None:
                sink.acked.set()

    def _on_end(self, info: Dict[str, Any]) -> None:
        sink = self._sink
        assert sink is not None
        sink.closed = True
        if not sink.final:
            self._follow(info)
            return
        # The hop is over: nothing it reports counts any more, and the task stops referring to
        # it, which ends their reference cycle (the task is then freed by reference counting,
        # not by the cyclic collector: about 4 µs a request when left to it).
        self._sink = None
        self._exchange = None
        self._settle_timers()
        if self._header_info:
            info = dict(self._header_info, **info)
        profile = self._profile(info)
        res = self._completed(self._status, self._headers, profile)
        if res is None:  # a listener of the last event (download's 100) ended the task
            return
        if self._retried:
            res["exception"] = {
                "retryCount": len(self._retried),
                "reasons": [
                    {"errno": reason.errno, "errMsg": reason.for_api(self.api).errMsg}
                    for reason in self._retried
                ],
            }
        self._succeed(res)

    def _on_error(self, error: Exception, info: Optional[Dict[str, Any]] = None) -> None:
        if not isinstance(error, FtError):
            error = FtError(Errno.NETWORK, "network error: %s" % (error,))
        if info is not None and self._stale(error, info):
            self._retry(error)
            return
        self._fail(error)

    # -- stale keep-alive connections ---------------------------------------------------------

    def _stale(self, error: FtError, info: Dict[str, Any]) -> bool:
        """Whether the failed exchange hit a keep-alive connection the server had closed:
        reused, not a byte of the response (the transport's count, and no head reported),
        an EOF or a reset; retried once per task, and only with a body that can be replayed."""
        sink, request = self._sink, self._request
        return (
            not self._retried
            and error.errno == Errno.CONNECTION_RESET
            and info.get("socketReused") is True
            and info.get("receivedBytedCount") == 0
            and sink is not None
            and not sink.heard
            and request is not None
            and _replayable(request.body)
        )

    def _retry(self, error: FtError) -> None:
        """Send the request again on a new connection; the hop's progress carries on."""
        request, sink = self._request, self._sink
        assert request is not None and sink is not None
        self._retried.append(error)
        sink.close()
        self._exchange = None
        self._dispatch(replace(request, fresh_connection=True))

    def _on_timeout(self) -> None:
        self._timer = None
        if self._state not in ENDED:
            self._fail(FtError(Errno.TIMEOUT))

    # -- redirects ------------------------------------------------------------------------------

    def _follow(self, info: Dict[str, Any]) -> None:
        request = self._request
        assert request is not None
        if self._hops >= MAX_REDIRECTS:
            raise FtError(Errno.TOO_MANY_REDIRECTS)
        self._hops += 1
        if not self._redirect_start:
            self._redirect_start = self._fetch_start
        self._redirect_end = _now_ms()
        location = next(value for name, value in self._headers if name.lower() == "location")
        try:
            url = urljoin(request.url, location.strip())
        except ValueError:
            raise FtError(Errno.INVALID_URL, "invalid redirect url") from None
        url = urlunsplit(urlsplit(url)._replace(fragment=""))
        check_http_url(url)
        self._runtime.check_url(self.api, url)
        method, body, length = request.method, request.body, request.body_length
        headers = list(request.headers)
        if self._status in (301, 302, 303) and method != "HEAD":
            method, body, length = "GET", None, None
            headers = [h for h in headers if h[0].lower() not in BODY_HEADERS]
        elif body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
            fresh = self._first_request(self._prepared)  # a stream cannot be replayed
            body, length, headers = fresh.body, fresh.body_length, list(fresh.headers)
        if _origin(url) != _origin(request.url):
            headers = [h for h in headers if h[0].lower() not in _CREDENTIAL_HEADERS]
        self._exchange = None
        self._send(
            HttpRequest(
                method=method,
                url=url,
                headers=headers,
                body=body,
                body_length=length,
                tls=request.tls,
                decode_content=request.decode_content,
            )
        )

    # -- ends -----------------------------------------------------------------------------------

    def _settle_timers(self) -> None:
        """Release the timer and the slot (once); loop thread."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.release()

    def _teardown(self) -> None:
        """Drop the exchange, the hop, the timer and the slot; then `_discard()`."""
        sink, self._sink = self._sink, None
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            try:
                exchange.abort()
            except Exception:
                logger.exception("ftcore: aborting %r raised", exchange)
        if sink is not None:
            sink.close()
        self._settle_timers()
        try:
            self._discard()
        except Exception:
            logger.exception("ftcore: %s failed to discard its state", self)

    def _cancel(self) -> None:
        self._teardown()

    def _fail(self, error: FtError, event: Event = Event.FAIL) -> None:
        if self._state not in ENDED:
            self._teardown()
        super()._fail(error, event)

    # -- profile --------------------------------------------------------------------------------

    def _profile(self, info: Dict[str, Any]) -> Dict[str, Any]:
        """API.md's profile (every key) from what the transport reported for the final hop."""
        get = info.get
        fetch = self._fetch_start
        request_start = get("requestStart") or fetch
        connect_start = get("connectStart") or request_start
        return {
            "redirectStart": self._redirect_start,
            "redirectEnd": self._redirect_end,
            "fetchStart": fetch,
            "domainLookUpStart": connect_start,
            "domainLookUpEnd": connect_start,
            "connectStart": connect_start,
            "connectEnd": get("connectEnd") or connect_start,
            "SSLconnectionStart": get("SSLconnectionStart", 0),
            "SSLconnectionEnd": get("SSLconnectionEnd", 0),
            "requestStart": request_start,
            "requestEnd": get("requestEnd") or request_start,
            "responseStart": get("responseStart") or request_start,
            "responseEnd": get("responseEnd") or _now_ms(),
            "socketReused": bool(get("socketReused", False)),
            "peerIP": get("peerIP", ""),
            "port": get("port", 0),
            "protocol": get("protocol", "http/1.1"),
            "sendBytesCount": get("sendBytesCount", 0),
            "receivedBytedCount": get("receivedBytedCount", 0),
        }


def _replayable(body: Any) -> bool:
    """Whether `body` can be sent again from its start: bytes, or an iterable that makes a new
    iterator each time (uploadFile's body re-reads its file), not a one-shot iterator."""
    if body is None or isinstance(body, (bytes, bytearray, memoryview)):
        return True
    return iter(body) is not body


_TLS: "StashKey[TlsSettings]" = StashKey()


def _tls_of(runtime: "Runtime") -> TlsSettings:
    """The runtime's `config["tls"]` as a TlsSettings, made once per runtime (in its stash)."""
    settings = runtime.stash.get(_TLS)
    if settings is None:
        tls = runtime.config["tls"]
        settings = TlsSettings(verify=tls.get("verify", True), cafile=tls.get("cafile"))
        settings = runtime.stash.setdefault(_TLS, settings)
    return settings
