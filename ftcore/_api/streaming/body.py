"""A chunked response body, fanned out to the text, line and SSE listeners and to iterators.

Every consumer (the listener view of a kind, or one iterator) has its own parser, so each
sees the body from its first byte whenever it was attached: the first `limit` bytes of the
body are retained for consumers that come late (an iterator started right after `request()`
returns while the loop already received data, or a small response that ended before it).
A consumer attached once the retained start is gone would parse from the middle: a listener
view then starts with what comes next (logged), an iterator fails at once.

Flow control: an iterator whose consumer lags past `limit` undelivered makes the stream call
the exchange's `pause_reading()` (the server's sends then block); when every lagging consumer
caught up, `resume_reading()`. An exchange that cannot pause fails the task with errno
`STREAM_BUFFER_FULL` instead of buffering without bound.

Loop thread only, except `want_view` and `iterator`, which any thread may call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, TypeVar

from ..._core.state import UNSETTLED
from ...errors import Errno, FtError
from .channel import AsyncStreamIterator, Channel, StreamIterator
from .errors import StreamLimitError
from .lines import LineSplitter
from .sse import SseParser
from .text import TextDecoder
from ..._log import logger

if TYPE_CHECKING:
    from ..request import RequestTask

__all__ = ["BodyStream", "LISTENER_OF"]


LISTENER_OF = {"text": "TextChunkReceived", "lines": "LineReceived", "events": "ServerSentEvent"}

Items = List[Any]
_It = TypeVar("_It", StreamIterator, AsyncStreamIterator)


def _parser(kind: str, charset: str) -> Tuple[Callable[[bytes], Items], Callable[[], Items]]:
    """(feed, flush) turning body bytes into the items of `kind`."""
    if kind == "chunks":
        return (lambda data: [data]), list
    if kind == "events":
        sse = SseParser()

        def end_events() -> Items:
            sse.close()  # an event the body ended inside is dropped
            return []

        return sse.feed, end_events
    decoder = TextDecoder(charset)
    if kind == "text":

        def text(data: bytes) -> Items:
            piece = decoder.decode(data)
            return [piece] if piece else []

        def end_text() -> Items:
            piece = decoder.close()
            return [piece] if piece else []

        return text, end_text
    splitter = LineSplitter()

    def lines(data: bytes) -> Items:
        return splitter.feed(decoder.decode(data))

    def end_lines() -> Items:
        found = splitter.feed(decoder.close())
        last = splitter.close()
        return found + [last] if last is not None else found

    return lines, end_lines


def _settled(task: Any) -> bool:
    """success/fail and complete have run (or are running)."""
    return task.state not in UNSETTLED


class _Consumer:
    """One parser and where its items go: a listener name, or a channel."""

    __slots__ = ("kind", "name", "channel", "feed", "flush")

    def __init__(self, kind: str, name: str = "", channel: Optional[Channel] = None) -> None:
        self.kind = kind
        self.name = name
        self.channel = channel
        self.feed: Optional[Callable[[bytes], Items]] = None  # made with the first bytes
        self.flush: Callable[[], Items] = list


class BodyStream:
    """The streamed views of one `RequestTask` (made when it has `enableChunked`)."""

    def __init__(self, task: "RequestTask", limit: int, charset: Callable[[], str]) -> None:
        self._task = task
        self._loop = task._loop
        self.limit = limit
        self._charset = charset  # the response charset, once the headers are in
        self._retained: Optional[List[bytes]] = []  # None: past `limit`, dropped
        self._retained_size = 0
        self._consumers: List[_Consumer] = []
        self._views: Dict[str, _Consumer] = {}
        self._wanted: Dict[str, None] = {}  # view kinds asked for (any thread), in order
        self.consumed = False  # a view or an iterator was asked for (any thread)
        self._flushed = False  # the body ended well: consumers were flushed
        self._paused = False

    # -- any thread ------------------------------------------------------------------------------

    def want_view(self, kind: str) -> None:
        """A listener of `kind` was added: make sure its view runs (once per kind), before
        the next chunk is delivered and before success at the latest."""
        self.consumed = True
        self._wanted[kind] = None
        # a later pass, never now: a listener added inside `feed` must not see a chunk twice
        self._loop.call_soon_threadsafe(self._open_wanted)

    def iterator(self, kind: str) -> StreamIterator:
        """A new iterator over the body as `kind` items, from the body's first byte."""
        return self._attach(kind, StreamIterator)

    def aiterator(self, kind: str) -> AsyncStreamIterator:
        return self._attach(kind, AsyncStreamIterator)

    def _attach(self, kind: str, make: Callable[..., _It]) -> _It:
        self.consumed = True
        channel = Channel(self.limit, self._want_resume, self._task._loop)
        consumer = _Consumer(kind, channel=channel)
        iterator = make(channel, self._leave)
        if self._task.done():  # the loop feeds nothing more: replay here, at once
            self._open(consumer)
        else:
            self._loop.call_soon_threadsafe(self._open, consumer)
        return iterator

    def _want_resume(self, channel: Channel) -> None:
        self._loop.call_soon_threadsafe(self._maybe_resume)

    def _leave(self, channel: Channel) -> None:
        """An iterator was closed or dropped: forget its channel; a running task is aborted."""
        self._loop.call_soon_threadsafe(self._left, channel)

    # -- loop thread -----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """One chunk of the body, in order."""
        task = self._task
        if _settled(task):  # a chunk listener aborted it
            return
        if len(self._wanted) != len(self._views):
            self._open_wanted()  # asked for since the last chunk: replay first
        retained = self._retained
        if retained is not None:
            retained.append(data)
            self._retained_size += len(data)
            if self._retained_size > self.limit:
                self._retained = None
        for consumer in self._consumers:
            self._deliver(consumer, data)
            if _settled(task):  # a listener aborted it, or a limit failed it
                return

    def finish(self) -> None:
        """The body ended well: the last text, the last line without its terminator."""
        self._open_wanted()  # a listener added right after the call hears all before success
        self._flushed = True
        for consumer in self._consumers:
            self._end(consumer)
            if _settled(self._task):
                return

    def _open_wanted(self) -> None:
        for kind in list(self._wanted):
            if kind not in self._views:
                consumer = self._views[kind] = _Consumer(kind, name=LISTENER_OF[kind])
                self._open(consumer)

    def _open(self, consumer: _Consumer) -> None:
        task = self._task
        channel = consumer.channel
        if self._retained is None:
            what = "%s()" % ("iter_" + consumer.kind) if channel else "on" + consumer.name
            reason = "%s came after the first %d bytes of the body had gone by" % (
                what,
                self.limit,
            )
            if channel is not None:
                channel.end(RuntimeError(reason + ": start it right after request()"))
                return
            logger.warning("ftcore: %s; it starts from the middle", reason)
        self._consumers.append(consumer)
        settled = _settled(task)
        for data in list(self._retained or ()):
            self._deliver(consumer, data)
            if _settled(task) is not settled:
                return  # a listener aborted it, or a parser limit failed it
        if self._flushed:
            self._end(consumer)
        if channel is not None:  # it ends after success/fail and complete (now if they ran)
            task._on_done(lambda: channel.end(task._error))

    def _feed_of(self, consumer: _Consumer) -> Callable[[bytes], Items]:
        """The consumer's parser, made once the charset is known (the headers are in)."""
        feed = consumer.feed
        if feed is None:
            feed, consumer.flush = _parser(consumer.kind, self._charset())
            consumer.feed = feed
        return feed

    def _deliver(self, consumer: _Consumer, data: bytes) -> None:
        feed = self._feed_of(consumer)
        try:
            items = feed(data)
        except StreamLimitError as error:
            self._too_large(consumer, error)
            return
        if items:
            self._emit(consumer, items, len(data))

    def _end(self, consumer: _Consumer) -> None:
        self._feed_of(consumer)  # an empty body still ends its decoder
        try:
            items = consumer.flush()
        except StreamLimitError as error:
            self._too_large(consumer, error)
            return
        if items:  # text or the last line: what the decoder and the splitter held
            self._emit(consumer, items, sum(map(len, items)))

    def _too_large(self, consumer: _Consumer, error: StreamLimitError) -> None:
        failure = FtError(Errno.RESPONSE_TOO_LARGE, "response too large: %s" % error)
        task = self._task
        if _settled(task):  # a late consumer of an ended body: only it fails
            if consumer.channel is not None:
                consumer.channel.end(failure.for_api(task.api))
            return
        task._fail(failure)

    def _emit(self, consumer: _Consumer, items: Items, size: int) -> None:
        """`size`: the body bytes the items came from (what flow control counts)."""
        channel = consumer.channel
        if channel is not None:
            if channel.put(items, size):
                self._throttle()
            return
        task, name = self._task, consumer.name
        emit = task._listeners.emit
        wrap = consumer.kind != "events"  # an event is its own dict
        settled = _settled(task)
        for item in items:
            emit(name, {"data": item} if wrap else item)
            if _settled(task) is not settled:  # the listener aborted the task
                return

    def _throttle(self) -> None:
        """A consumer lags past the limit: stop reading, or fail if the transport cannot."""
        task = self._task
        if self._paused or self._flushed or _settled(task):  # (ended: nothing more comes)
            return
        pause = getattr(task._exchange, "pause_reading", None)
        if pause is None:
            task._fail(FtError(Errno.STREAM_BUFFER_FULL))
            return
        self._paused = True
        pause()

    def _maybe_resume(self) -> None:
        if not self._paused:
            return
        for consumer in self._consumers:
            if consumer.channel is not None and consumer.channel.throttled:
                return
        self._paused = False
        resume = getattr(self._task._exchange, "resume_reading", None)
        if resume is not None and not _settled(self._task):
            resume()

    def _left(self, channel: Channel) -> None:
        self._consumers = [c for c in self._consumers if c.channel is not channel]
        channel.end(None)
        self._task.abort()  # a no-op once it ended
        self._maybe_resume()


# -- the RequestTask methods -------------------------------------------------------------------


def view_methods(kind: str) -> Tuple[Callable[..., None], Callable[..., None]]:
    """The `onX` / `offX` pair of a streamed view (`text`, `lines`, `events`)."""
    name = LISTENER_OF[kind]

    def on(self: Any, callback: Callable[[Dict[str, Any]], Any]) -> None:
        self._listeners.add(name, callback)
        stream = self._stream
        if stream is not None:
            stream.want_view(kind)

    def off(self: Any, callback: Any = None) -> None:
        self._listeners.remove(name, callback)

    on.__name__, off.__name__ = "on" + name, "off" + name
    on.__doc__ = "With enableChunked: call `callback(res)` for each %s (on the loop thread)." % (
        _WHAT[kind],
    )
    off.__doc__ = "Stop calling `callback` on %s events; no argument removes every one." % name
    return on, off


def iterator_methods(kind: str) -> Tuple[Callable[..., Any], Callable[..., Any]]:
    """The `iter_<kind>()` / `aiter_<kind>()` pair."""

    def iterate(self: Any) -> StreamIterator:
        return _stream_of(self, "iter_" + kind).iterator(kind)

    def aiterate(self: Any) -> AsyncStreamIterator:
        return _stream_of(self, "aiter_" + kind).aiterator(kind)

    iterate.__name__, aiterate.__name__ = "iter_" + kind, "aiter_" + kind
    iterate.__doc__ = (
        "Iterate over the body as %s from its first byte, in any thread but the loop's: "
        "ends when the task succeeds, raises its FtError when it fails; leaving early "
        "(break, an exception, close()) aborts the task. On a host-driven runtime that no "
        "thread is running, waiting runs the loop on this thread." % _WHAT[kind]
    )
    aiterate.__doc__ = "`async for` form of iter_%s() inside asyncio." % kind
    return iterate, aiterate


_WHAT = {
    "chunks": "bytes chunks as they arrive",
    "text": "decoded text (str) pieces",
    "lines": "lines (str, without their terminator)",
    "events": "Server-Sent Event dicts",
}


def _stream_of(task: Any, method: str) -> BodyStream:
    stream: Optional[BodyStream] = task._stream
    if stream is None:
        raise ValueError("%s() needs request(enableChunked=True)" % method)
    return stream
