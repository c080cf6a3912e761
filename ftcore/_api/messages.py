"""`iter_messages()` of the socket kinds (`SocketTask`, `UDPSocket`, `TCPSocket`): a blocking
iterator (and its `async for` form) over the dicts their `onMessage` listeners get.

Rules, the same for the three kinds:

* An iterator is a listener of the socket from the moment it is made: it yields what an
  `onMessage` listener attached then would hear (the messages kept for a first listener
  included), the same dicts, in order. It runs no user code on the loop thread: the loop only
  queues (`streaming.channel.Channel`, the queue of the streamed bodies), and the consumer
  takes what is queued in one lock round trip.
* It ends when the socket ends: `StopIteration` after a clean end, the socket's `FtError` after
  an error (`_Kind.outcome` says which is which, per kind). `timeout` (seconds) bounds each wait
  for the next message: past it, `TimeoutError`, and the iterator stays usable.
* Leaving it (`close()`, `with`, the iterator dropped) removes its listeners, on the loop
  thread; the socket goes on. An unfinished iterator keeps the socket's listeners, not the
  socket: a socket nobody closes is the caller's to close, as always.
* Memory: what the consumer has not taken is bounded by `limits.streamBufferBytes`, counting
  each message as its payload plus `_Kind.cost` (the dicts around it). WebSocket and TCP push
  back: past the bound the socket stops reading (`pause_reading`), so the peer's sends block,
  and it reads again once every lagging iterator is down to a quarter of it. A connection
  that cannot pause ends the lagging iterator with errno 600022 (`STREAM_BUFFER_FULL`) instead;
  the socket goes on. UDP cannot push back: past the bound the oldest queued datagrams are
  dropped (the iterator's `dropped` counts them), as the kernel drops what a full receive
  buffer cannot take.
* Waiting: on a host-driven runtime that no thread is running, the wait runs the loop on the
  caller's thread (`ftcore._core.drive`); otherwise the loop's delivery wakes the consumer.

Loop thread only, except `iterate`, which any thread may call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Set, Union

from .._core.endpoint import EndpointState
from .._core.stash import StashKey
from .._core.state import ENDED, State
from ..errors import Errno, FtError
from .streaming.channel import AsyncStreamIterator, Channel, StreamIterator

if TYPE_CHECKING:
    from .socket import SocketTask
    from .tcp import TCPSocket
    from .udp import UDPSocket

    Socket = Union[SocketTask, UDPSocket, TCPSocket]

__all__ = [
    "MessageIterator",
    "AsyncMessageIterator",
    "iterate",
    "aiterate",
    "WEBSOCKET",
    "UDP",
    "TCP",
]

Res = Dict[str, Any]


class _Kind:
    """What differs between the socket kinds: the payload's key, its estimated cost in
    memory, whether the kind pushes back or sheds, and how its end reads."""

    def __init__(self, payload: str, cost: int, sheds: bool, hears_errors: bool) -> None:
        self.payload = payload
        self.cost = cost  # bytes a message's dicts take beside its payload (measured)
        self.sheds = sheds
        self.hears_errors = hears_errors  # an onError carries the reason of a failed end

    def size_of(self, res: Res) -> int:
        return len(res[self.payload]) + self.cost

    def ended(self, sock: Any) -> bool:
        return bool(sock._ended)

    def outcome(self, sock: Any, error: Optional[Res], close: Optional[Res]) -> Optional[FtError]:
        """None for a clean end: the socket is CLOSED (close(), the peer's EOF, the runtime
        closing). FAILED (a lost connection, a failed connect, a socket that could not be
        made): its last onError, as an `FtError` whose `res` is that event."""
        if sock.state is not EndpointState.FAILED:
            return None
        if error is None:  # heard by a listener before this iterator was made
            return FtError(Errno.NETWORK, "socket failed")
        method, _, reason = str(error.get("errMsg", "")).partition(":fail ")
        errno = Errno.CONNECTION_RESET if method == "read" else Errno.NETWORK
        return FtError(errno, reason or "socket failed", api=method, res=error)

    def watch_end(self, sock: Any, check: Callable[[], None]) -> None:
        """Have `check` run on the loop thread, after what is queued there: a socket that
        ended before the iterator was made hears no onClose for it."""
        _on_loop(sock._loop, check)


class _WebSocketKind(_Kind):
    def ended(self, sock: Any) -> bool:
        return sock.state in ENDED

    def outcome(self, sock: Any, error: Optional[Res], close: Optional[Res]) -> Optional[FtError]:
        """None after a closing handshake (whoever began it, with any code but the failure
        ones, see `SocketTask._on_closed`) or a close() before the handshake; abort() and the
        runtime closing: errno 600003; a failure: its onError, else the close code (1006: the
        connection dropped without a close frame). A task that failed before the socket was
        created (bad options, refused): the `FtError` that `result()` raises."""
        state = sock.state
        if state is State.SUCCEEDED:
            return None
        if sock._error is not None:
            return sock._error  # type: ignore[no-any-return]
        if state is State.ABORTED:
            return FtError(Errno.ABORT, api=sock.api)
        if error is not None:
            prefix = sock.api + ":fail "
            message = str(error.get("errMsg", ""))
            reason = message[len(prefix):] if message.startswith(prefix) else message
            errno = int(error.get("errno", Errno.NETWORK))
        elif close is not None and close["code"] != 1006:
            errno, reason = Errno.NETWORK, "closed with code %d" % close["code"]
            if close["reason"]:
                reason += ": " + close["reason"]
        else:
            errno, reason = Errno.CONNECTION_RESET, "connection lost without a close frame"
        return FtError(errno, reason, api=sock.api, res=dict(close or {}, **(error or {})))

    def watch_end(self, sock: Any, check: Callable[[], None]) -> None:
        # A task that fails before the socket is created (bad options, refused) settles with
        # `fail` and fires no onClose: its settling is watched too (now if it has settled).
        loop = sock._loop
        sock._on_done(lambda: _on_loop(loop, check))


WEBSOCKET: _Kind = _WebSocketKind("data", 160, sheds=False, hears_errors=True)
UDP = _Kind("message", 512, sheds=True, hears_errors=False)
TCP = _Kind("message", 512, sheds=False, hears_errors=True)

# per runtime (loop thread only): socket id -> the channels that throttled since it paused
_PAUSED: "StashKey[Dict[int, Set[Channel]]]" = StashKey()


class _Feed:
    """One iterator's listeners on one socket: its messages into the channel, its end into
    the channel's end, and the socket paused while the channel lags."""

    __slots__ = ("_sock", "_kind", "_loop", "_error", "_close_res", "channel", "_done")

    def __init__(self, sock: "Socket", kind: _Kind) -> None:
        self._sock: Any = sock
        self._kind = kind
        self._loop = sock._loop
        self._error: Optional[Res] = None  # the last onError
        self._close_res: Optional[Res] = None
        self._done = False
        runtime = sock._runtime
        self.channel = Channel(
            runtime.config["limits"]["streamBufferBytes"],
            self._want_resume,
            runtime.loop,
            shed=kind.size_of if kind.sheds else None,
        )

    # -- any thread -----------------------------------------------------------------------------

    def attach(self) -> None:
        listeners = self._sock._listeners
        listeners.add("Message", self._message)
        if self._kind.hears_errors:
            listeners.add("Error", self._heard_error)
        listeners.add("Close", self._closed)
        self._kind.watch_end(self._sock, self._check_ended)

    def leave(self, channel: Channel) -> None:
        """The iterator was closed or dropped (any thread, `__del__` included: no lock here)."""
        _on_loop(self._loop, self._finish, None)

    def _want_resume(self, channel: Channel) -> None:
        self._loop.call_soon_threadsafe(self._maybe_resume)

    # -- loop thread ----------------------------------------------------------------------------

    def _message(self, res: Res) -> None:
        if self.channel.put([res], self._kind.size_of(res)):
            self._throttle()

    def _heard_error(self, res: Res) -> None:
        self._error = res

    def _closed(self, res: Res) -> None:
        self._close_res = res
        self._finish(self._kind.outcome(self._sock, self._error, res))

    def _check_ended(self) -> None:
        if not self._done and self._kind.ended(self._sock):
            self._finish(self._kind.outcome(self._sock, self._error, self._close_res))

    def _finish(self, error: Optional[BaseException]) -> None:
        """End the channel (after what it holds) and stop listening; once."""
        if self._done:
            return
        self._done = True
        self.channel.end(error)
        listeners = self._sock._listeners
        listeners.remove("Message", self._message)
        if self._kind.hears_errors:
            listeners.remove("Error", self._heard_error)
        listeners.remove("Close", self._closed)
        self._maybe_resume()

    def _throttle(self) -> None:
        """The consumer lags past the limit: stop reading, or end it if the socket cannot."""
        conn = getattr(self._sock, "_conn", None)
        if conn is None or self._done:  # not connected, or ended: nothing more is read
            return
        pause = getattr(conn, "pause_reading", None)
        if pause is None:
            reason = "the consumer lags more than %d bytes behind and the socket cannot pause"
            self._finish(FtError(Errno.STREAM_BUFFER_FULL, reason % self.channel.limit))
            return
        paused = self._sock._runtime.stash.setdefault(_PAUSED, {})
        channels = paused.get(self._sock.id)
        if channels is None:
            channels = paused[self._sock.id] = set()
            pause()
        channels.add(self.channel)

    def _maybe_resume(self) -> None:
        """Read again once no channel that throttled the socket is throttled any more."""
        paused = self._sock._runtime.stash.get(_PAUSED)
        channels = paused.get(self._sock.id) if paused is not None else None
        if paused is None or channels is None:
            return
        if self._done:
            channels.discard(self.channel)
        if any(channel.throttled for channel in channels):
            return
        del paused[self._sock.id]
        conn = getattr(self._sock, "_conn", None)
        resume = getattr(conn, "resume_reading", None)
        if resume is not None and not self._kind.ended(self._sock):
            resume()


def _on_loop(loop: Any, fn: Callable[..., None], *args: Any) -> None:
    """Run `fn(*args)` on the loop thread, or here once the loop is closed (the runtime is:
    nothing will run there any more, and nothing else runs now). `fn` is idempotent."""
    loop.call_soon_threadsafe(fn, *args)
    if loop.closed:  # closed after its thread ended: that thread cannot be running `fn`
        fn(*args)


class MessageIterator(StreamIterator):
    """`for res in sock.iter_messages(timeout=None):` the socket's onMessage dicts, in any
    thread but the loop's (see `ftcore._api.messages`)."""

    @property
    def dropped(self) -> int:
        """Datagrams dropped because the consumer lagged (UDP; always 0 for the others)."""
        return self._channel.dropped


class AsyncMessageIterator(AsyncStreamIterator):
    """`async for res in sock.aiter_messages():` as `MessageIterator`, inside asyncio."""

    @property
    def dropped(self) -> int:
        return self._channel.dropped


def iterate(sock: "Socket", kind: _Kind, timeout: Optional[float]) -> MessageIterator:
    feed = _Feed(sock, kind)
    iterator = MessageIterator(feed.channel, feed.leave, timeout)
    feed.attach()
    return iterator


def aiterate(sock: "Socket", kind: _Kind) -> AsyncMessageIterator:
    feed = _Feed(sock, kind)
    iterator = AsyncMessageIterator(feed.channel, feed.leave)
    feed.attach()
    return iterator
