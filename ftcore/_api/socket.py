"""WebSocket semantics (API.md §4): `connectSocket`, `SocketTask` and the global socket API.

The core owns every rule; the transport (`ftcore.transports.WsTransport`) only moves frames.

Lifecycle (the `SOCKET` table of `ftcore._core.state` drives it; `readyState` is a view of
the state). `connectSocket` checks its options on the loop thread (scheme, headers, domain list,
the `maxConcurrent.socket` bound); a refusal calls `fail` and nothing is connected. Otherwise
the transport starts connecting and `success` runs at once with `socketTaskId` (CONNECT: the
task is *created*; the socket is open when `onOpen` fires). From then on the task lives until
it ends, and its end fires `onClose`, so onClose fires exactly once: with the code of the close
frame received, the code we sent when we failed the connection (1002, 1007, 1009), 1001 when
the runtime closed an open socket, or 1006 when no close frame was exchanged. The state ends
SUCCEEDED (a close handshake), FAILED (the connection failed or dropped) or ABORTED (runtime
close) before the onClose listeners run, so they see `readyState` 3.

Errors. `onError` fires for a connection that could not be made (refused, name, TLS, handshake
refused, handshake timeout) and for a protocol error we detected (then `onClose` reports our
close code). A peer that drops the TCP connection is not an error, as in browsers: `onClose`
alone, with 1006.

`send` success means the frame was written to the socket or accepted in the transport's write
buffer (no queueing before the socket opens: `send` then fails). Calls made on the loop thread
(from a listener) act at once; from another thread they are handed to the loop. Their
`success`/`fail`/`complete` always run on a later loop pass, never on the caller's stack.

Global API (`sendSocketMessage`, `closeSocket`, `onSocketX`): they act on, and hear, the oldest
SocketTask still alive, as WeChat's single global socket. Global listeners belong to the
runtime, so one registered before `connectSocket` hears the next socket too. An event nobody
listens to yet (neither the task nor, for the global socket, the runtime) is kept and replayed
to the first listener (`ftcore._core.listeners`), so listeners attached right after `connectSocket`
returns miss nothing.
"""

from __future__ import annotations

import threading
from threading import get_ident
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple, Union
from urllib.parse import urlsplit

from .._core.listeners import Listeners, event_methods
from .._core.options import merge_options, options_error
from .._core.stash import StashKey
from .._core.state import ENDED, SOCKET, Event, State
from .._core.task import Task, logger
from . import messages
from .messages import AsyncMessageIterator, MessageIterator
from ..errors import Errno, FtError, fail_msg, ok_msg
from ..transports import TlsSettings, WsConnectRequest

if TYPE_CHECKING:
    from .runtime import Runtime
    from ..transports import WsConnection

__all__ = ["SocketTask", "global_send", "global_close", "global_listen"]

CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3

SEND_API = "sendSocketMessage"
CLOSE_API = "closeSocket"
MAX_REASON_BYTES = 123
ABNORMAL = 1006
GOING_AWAY = 1001

_EVENTS = ("Open", "Message", "Error", "Close")

_READY_STATE = {
    State.CREATED: CONNECTING,
    State.RUNNING: CONNECTING,
    State.CONNECTING: CONNECTING,
    State.OPEN: OPEN,
    State.CLOSING: CLOSING,
    State.SUCCEEDED: CLOSED,
    State.FAILED: CLOSED,
    State.ABORTED: CLOSED,
}


class _Events:
    """What the transport calls (`WsEvents`): the task's handlers, bound once, no extra hop."""

    __slots__ = ("opened", "message", "failed", "closed")

    def __init__(self, task: "SocketTask") -> None:
        self.opened = task._on_opened
        self.message = task._on_message
        self.failed = task._on_failed
        self.closed = task._on_closed


class SocketTask(Task):
    """What `connectSocket` returns: one WebSocket, safe to use from any thread."""

    api = "connectSocket"
    _table = SOCKET
    CONNECTING = CONNECTING
    OPEN = OPEN
    CLOSING = CLOSING
    CLOSED = CLOSED

    onOpen, offOpen = event_methods("Open")  # noqa: N815
    onMessage, offMessage = event_methods("Message")  # noqa: N815
    onError, offError = event_methods("Error")  # noqa: N815
    onClose, offClose = event_methods("Close")  # noqa: N815

    def __init__(self, runtime: "Runtime", options: Dict[str, Any]) -> None:
        super().__init__(runtime, options)
        self._conn: Optional["WsConnection"] = None
        self._timer: Any = None
        self._globals = _globals_of(runtime)

    # -- the API (any thread) -----------------------------------------------------------------

    @property
    def readyState(self) -> int:  # noqa: N802 - the JS name is the contract
        """0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED: what `state` means to JS code."""
        return _READY_STATE[self._state]

    def launch(self, refusal: Optional[FtError] = None) -> "SocketTask":
        self._globals.add(self)
        try:
            super().launch(refusal)
        except BaseException:  # a closed runtime refuses it: it never lived
            self._globals.forget(self)
            raise
        return self

    def send(self, options: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        """Send `data` (str: a text frame; bytes-like: a binary frame); fails unless open.

        Options that are neither a dict nor None fail the call (errno 600012) rather than
        raise, as any bad argument does: the keyword callbacks hear it; a warning is logged.
        """
        if type(options) is not dict:  # the usual case skips the call
            error = options_error(options)
            if error is not None:
                refuse(self._runtime, SEND_API, error, kwargs)
                return
        if self._loop.thread_id == get_ident():
            if kwargs or type(options) is not dict:
                options = merge_options(options, kwargs)
            self._send_now(options)
        else:  # the caller may reuse its dict or buffer before the loop sends
            options = merge_options(options, kwargs)
            data = options.get("data")
            if isinstance(data, (bytearray, memoryview)):
                options["data"] = bytes(data)
            self._loop.run_or_post(self._send_now, options)

    def close(self, options: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        """Start the closing handshake with `code` (1000, 3000-4999) and `reason` (<= 123 B).

        Options that are neither a dict nor None fail the call as in `send`; the socket stays
        open.
        """
        error = options_error(options)
        if error is not None:
            refuse(self._runtime, CLOSE_API, error, kwargs)
            return
        options = merge_options(options, kwargs)
        if self._loop.in_loop_thread():
            self._close_now(options)
        else:
            self._loop.call_soon_threadsafe(self._close_now, options)

    def iter_messages(self, timeout: Optional[float] = None) -> MessageIterator:
        """Iterate over the onMessage dicts (`{"data"}`) from now on, in any thread but the
        loop's. It ends after a closing handshake and raises the `FtError` of a socket that
        failed or was aborted; `timeout` (seconds) bounds each wait (`TimeoutError`). Leaving
        early detaches it; the socket goes on. Rules and memory: `ftcore._api.messages`."""
        return messages.iterate(self, messages.WEBSOCKET, timeout)

    def aiter_messages(self) -> AsyncMessageIterator:
        """`async for` form of `iter_messages()`, inside asyncio."""
        return messages.aiterate(self, messages.WEBSOCKET)

    # -- starting (loop thread) ---------------------------------------------------------------

    def _start(self, options: Dict[str, Any]) -> None:
        runtime = self._runtime
        url = options.get("url")
        if not isinstance(url, str) or not _valid_url(url):
            raise FtError(Errno.INVALID_URL)
        runtime.check_url(self.api, url)
        protocols = options.get("protocols") or []
        if isinstance(protocols, str) or not all(isinstance(p, str) and p for p in protocols):
            raise FtError(Errno.INVALID_OPTION, "protocols must be a list of strings")
        limit = runtime.config["maxConcurrent"]["socket"]
        alive = sum(
            1
            for task in runtime.live_tasks()
            if isinstance(task, SocketTask)
            and task is not self
            and task._state is not State.CREATED
        )
        if alive >= limit:
            raise FtError(Errno.TOO_MANY_TASKS, "exceed max task count")
        timeout = runtime.timeout_for(self.api, options)
        tls = runtime.config["tls"]
        request = WsConnectRequest(
            url=url,
            headers=list((options.get("header") or {}).items()),
            protocols=list(protocols),
            deflate=bool(options.get("perMessageDeflate")),
            tcp_nodelay=bool(options.get("tcpNoDelay")),
            timeout=None if timeout == float("inf") else timeout,
            tls=TlsSettings(verify=bool(tls.get("verify", True)), cafile=tls.get("cafile")),
            max_message_bytes=int(runtime.config["limits"]["wsMaxMessageBytes"]),
        )
        transport = runtime.transport("websocket")
        self._conn = transport.connect(request, _Events(self))
        if request.timeout is not None:
            self._timer = self._loop.call_later(request.timeout, self._on_timeout)
        self._settle({"errMsg": ok_msg(self.api), "socketTaskId": self.id}, None, Event.CONNECT)

    # -- transport events (loop thread) -------------------------------------------------------

    def _on_opened(self, headers: Dict[str, str], protocol: Optional[str]) -> None:
        if self._state is not State.CONNECTING:
            return
        self._cancel_timer()
        self._fire(Event.OPEN)
        self._emit("Open", {"header": dict(headers), "protocol": protocol or ""})

    def _on_message(self, data: Union[str, bytes]) -> None:
        # The hot path: when only the task listens (no backlog, no global listener), call its
        # listeners directly; anything else goes through `_deliver`.
        res = {"data": data}
        listeners = self._listeners.ready("Message")
        if listeners and not self._globals.listeners.has("Message"):
            for listener in listeners:
                try:
                    listener(res)
                except Exception:
                    logger.exception("ftcore: listener %r raised", listener)
            return
        self._deliver("Message", res)

    def _on_failed(self, error: Exception) -> None:
        if self._state in ENDED:
            return
        if not isinstance(error, FtError):
            error = FtError(Errno.NETWORK, str(error) or type(error).__name__)
        self._emit("Error", error.for_api(self.api).to_res())

    def _on_closed(self, code: int, reason: str) -> None:
        end = Event.SUCCEED if code not in (ABNORMAL, 1002, 1007, 1009, 1011) else Event.FAIL
        self._fire_close(code, reason, end)

    def _on_timeout(self) -> None:
        self._timer = None
        if self._state is not State.CONNECTING:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()
        self._emit("Error", FtError(Errno.TIMEOUT).for_api(self.api).to_res())
        self._fire_close(ABNORMAL, "", Event.FAIL)

    # -- helpers (loop thread) ----------------------------------------------------------------

    def _fire_close(self, code: int, reason: str, end: Event) -> None:
        """End a created socket with `end` (SUCCEED, FAIL or ABORT) and fire onClose. An ended
        socket has no moves left, so this runs once: onClose fires once."""
        if self._state in ENDED:
            return
        self._fire(end)
        self._cancel_timer()
        self._conn = None
        was_global = self._is_global()  # still listed: its Close reaches the global listeners
        self._emit("Close", {"code": code, "reason": reason})
        self._forget()
        if was_global:  # what nobody heard of this socket must not reach the next one
            self._globals.listeners.drop_backlog()

    def _forget(self) -> None:
        super()._forget()
        self._globals.forget(self)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _is_global(self) -> bool:
        return self._globals.oldest() is self

    def _emit(self, name: str, res: Dict[str, Any]) -> None:
        if name != "Message":
            self._runtime._observe(self, name.lower(), res)
        self._deliver(name, res)

    def _deliver(self, name: str, res: Dict[str, Any]) -> None:
        """Deliver to the task's and (for the global socket) the runtime's listeners. A task
        listener added late still hears Open, Error and Close (one each, kept by the task);
        a message the global listeners heard is not also kept for the task (a socket used
        only through the global API would hold up to 64 messages)."""
        own = self._listeners
        glob = self._globals.listeners if self._is_global() else None
        if glob is None:
            own.emit(name, res)
            return
        own_has, glob_has = own.has(name), glob.has(name)
        if own_has or not glob_has or name != "Message":
            own.emit(name, res)
        if glob_has or not own_has:
            glob.emit(name, res)

    def _send_now(self, options: Dict[str, Any]) -> None:
        data: Any = options.get("data")
        conn = self._conn
        try:
            kind = type(data)
            if kind is not str and kind is not bytes:
                if isinstance(data, (bytearray, memoryview, bytes)):
                    data = bytes(data)
                elif isinstance(data, str):
                    data = str(data)
                else:
                    raise FtError(Errno.INVALID_DATA, "data must be str or bytes")
            if conn is None or self._state is not State.OPEN:
                raise FtError(Errno.WS_NOT_CONNECTED)
            conn.send(data)
        except FtError as error:
            _report(self._runtime, SEND_API, options, error)
            return
        except Exception as error:  # a transport bug: report, never crash the caller's listener
            logger.exception("ftcore: send failed on %r", self)
            _report(self._runtime, SEND_API, options, FtError(Errno.WS_SEND_FAILED, str(error)))
            return
        # The echo fast path: no result at all when nobody can see it (no callback, no
        # interceptor), which saves a loop pass and a hook call per message.
        if self._runtime.interceptors or len(options) > 1 or "data" not in options:
            _report(self._runtime, SEND_API, options, None)

    def _close_now(self, options: Dict[str, Any]) -> None:
        try:
            code, reason = _close_args(options)
            state = self._state
            if state is State.CONNECTING:
                # Closing before the handshake ends abandons it: no close frame was exchanged.
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.abort()
                self._fire_close(ABNORMAL, "", Event.SUCCEED)
            elif state is not State.OPEN or self._conn is None:
                raise FtError(Errno.WS_NOT_CONNECTED)
            else:
                self._fire(Event.CLOSE)
                self._conn.close(code, reason)
        except FtError as error:
            _report(self._runtime, CLOSE_API, options, error)
            return
        _report(self._runtime, CLOSE_API, options, None)

    def _abort_now(self) -> None:
        """`abort()` and runtime close: drop the socket now; onClose fires before returning
        (a socket not created yet fails with `connectSocket:fail abort` instead)."""
        state = self._state
        if state in ENDED:
            return
        if state is State.CREATED or state is State.RUNNING:
            super()._abort_now()
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.abort(GOING_AWAY if state is State.OPEN else None)
            except Exception:
                logger.exception("ftcore: dropping %r raised", self)
        was_open = state is State.OPEN or state is State.CLOSING
        self._fire_close(GOING_AWAY if was_open else ABNORMAL, "", Event.ABORT)

    _shutdown = _abort_now


# -- options ----------------------------------------------------------------------------------


def _valid_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    if "\\" in parts.netloc:  # hosts disagree across parsers: refuse, never guess
        return False
    return parts.scheme.lower() in ("ws", "wss") and bool(parts.hostname)


def _close_args(options: Dict[str, Any]) -> Tuple[int, str]:
    code = options.get("code", 1000)
    reason = options.get("reason", "")
    if code is None:
        code = 1000
    if reason is None:
        reason = ""
    if (
        isinstance(code, bool)
        or not isinstance(code, int)
        or not (code == 1000 or 3000 <= code <= 4999)
    ):
        raise FtError(Errno.WS_INVALID_CLOSE, "invalid close code %r" % (code,))
    if not isinstance(reason, str):
        raise FtError(Errno.WS_INVALID_CLOSE, "close reason must be a string")
    if len(reason.encode("utf-8", "surrogatepass")) > MAX_REASON_BYTES:
        raise FtError(Errno.WS_INVALID_CLOSE, "close reason longer than 123 bytes")
    return code, reason


def refuse(runtime: "Runtime", api: str, error: FtError, kwargs: Dict[str, Any]) -> None:
    """Fail a send/close whose options are not a dict (`options_error`): API.md wants a
    `fail`, not an exception. Only keyword callbacks can hear it and a stray value usually
    comes without any, so the mistake is also logged."""
    logger.warning("ftcore: %s", fail_msg(api, error.reason))
    _on_loop(runtime, _report, runtime, api, kwargs, error)


def _report(
    runtime: "Runtime", api: str, options: Dict[str, Any], error: Optional[FtError]
) -> None:
    """Run success/fail then complete of a send/close call on a later loop pass."""
    if error is None:
        res: Dict[str, Any] = {"errMsg": ok_msg(api)}
    else:
        res = {"errMsg": fail_msg(api, error.reason), "errno": error.errno}
    runtime.loop.call_soon(_deliver, runtime, api, options, res, error is None)


def _deliver(
    runtime: "Runtime", api: str, options: Dict[str, Any], res: Dict[str, Any], ok: bool
) -> None:
    res = runtime._rewrite_result(api, res, ok)
    Task._call_option(options.get("success" if ok else "fail"), res)
    Task._call_option(options.get("complete"), res)


# -- the global API ---------------------------------------------------------------------------


class _Globals:
    """The runtime's global socket listeners (`onSocketOpen` ...) and its live sockets in
    launch order, so "the oldest live socket" costs O(1) on every event; kept in the runtime's
    stash."""

    def __init__(self, runtime: "Runtime") -> None:
        self.listeners = Listeners(runtime.loop.call_soon_threadsafe)
        self._lock = threading.Lock()
        self._sockets: Dict[int, SocketTask] = {}  # insertion-ordered: oldest first

    def add(self, task: SocketTask) -> None:
        with self._lock:
            self._sockets[task.id] = task

    def forget(self, task: SocketTask) -> None:
        with self._lock:
            self._sockets.pop(task.id, None)

    def oldest(self) -> Optional[SocketTask]:
        with self._lock:
            return next(iter(self._sockets.values()), None)


_GLOBALS: "StashKey[_Globals]" = StashKey()


def _globals_of(runtime: "Runtime") -> _Globals:
    found = runtime.stash.get(_GLOBALS)
    if found is None:  # two threads may both make one: the first stored is everyone's
        found = runtime.stash.setdefault(_GLOBALS, _Globals(runtime))
    return found


def _global_task(runtime: "Runtime") -> Optional[SocketTask]:
    return _globals_of(runtime).oldest()


def _on_loop(runtime: "Runtime", fn: Callable[..., Any], *args: Any) -> None:
    if runtime.loop.in_loop_thread():
        fn(*args)
    else:
        runtime.loop.call_soon_threadsafe(fn, *args)


def global_send(runtime: "Runtime", options: Dict[str, Any]) -> None:
    """`sendSocketMessage`: `send` on the oldest live SocketTask."""

    def now() -> None:
        task = _global_task(runtime)
        if task is None:
            _report(runtime, SEND_API, options, FtError(Errno.WS_NOT_CONNECTED))
        else:
            task._send_now(options)

    _on_loop(runtime, now)


def global_close(runtime: "Runtime", options: Dict[str, Any]) -> None:
    """`closeSocket`: `close` on the oldest live SocketTask."""

    def now() -> None:
        task = _global_task(runtime)
        if task is None:
            _report(runtime, CLOSE_API, options, FtError(Errno.WS_NOT_CONNECTED))
        else:
            task._close_now(options)

    _on_loop(runtime, now)


def global_listen(runtime: "Runtime", name: str, callback: Callable[[Dict[str, Any]], Any]) -> None:
    """`onSocketOpen/Message/Error/Close`: hear the events of the global socket."""
    if name not in _EVENTS:
        raise ValueError("unknown socket event %r" % name)
    _globals_of(runtime).listeners.add(name, callback)
