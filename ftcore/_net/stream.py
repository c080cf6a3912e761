"""A connected socket on the loop: the read pump, the buffered writer, and the ways to close.

Reading: one `recv_into` per readiness event, into the `Net`'s shared buffer (the loop reads
one socket at a time, so an idle connection costs no buffer), handed to
`handler.data_received(view)`: the view is valid only during the call, so the handler copies
what it keeps. A TLS socket also drains what OpenSSL has already decrypted, which the
selector cannot see. `pause_reading()` stops watching the socket, so the kernel's window
pushes back on the peer; `resume_reading()` watches it again.

Writing: `write(data)` sends at once when nothing waits; what the kernel does not take waits
in a queue of views of the caller's buffers (never concatenated), drained on writability:
several pieces per `sendmsg` on a plain socket, at most `TLS_CHUNK` bytes per TLS write (a
retried TLS write must offer the same bytes again, and slices of the same view do). Crossing
`high_water` calls `handler.pause_writing()`; falling back to `low_water` calls
`handler.resume_writing()`. The queue is not bounded here: producers stop when told. `sent`
counts the bytes the kernel took (upload progress, byte counts). A stream made with
`keep_reading_on_write_error` (HTTP: a server may refuse a body, answer, then reset) ends only
its sending side when a write fails: `write_error` says why, `write` raises `StreamClosed`, a
paused producer is woken (`resume_writing`) to find out, and reading goes on.

Files: `write_file(FileRegion(fd, offset, count))` queues a region of an open regular file in
order with the other writes. A plain socket to another machine sends it with `os.sendfile` (the
bytes never enter Python); a TLS socket, a socket to this machine (`_local_peer`), or one whose
kernel refuses sendfile (ENOSYS, EINVAL, EOPNOTSUPP: no error is reported), reads it one
`TLS_CHUNK` at a time into the queue (`os.preadv` into one reused buffer). The
file's failures are write errors of their own class: `FileError` (the read failed; a failed
sendfile is retried as read then send, to learn which side failed) and `FileEnded` (the file
ended before `count` bytes).

A connection that outlives one user (a pooled HTTP connection) hands `stream.handler` to the
next one; the loop keeps watching the socket in between.

Closing:
* `close(timeout, linger)`: nothing more is delivered; the queue is flushed (at most `timeout`
  seconds, then the connection is aborted), and the socket is closed, or with `linger` kept
  open, reading and discarding, until the peer closes or `linger` seconds pass (RFC 6455:
  the server closes TCP first; a TLS record cut across segments is waited for, not taken
  for the end). `on_closed()` then runs from a loop callback.
* `abort()`: the connection is reset (SO_LINGER 0) now; `close_now()` closes the socket now
  without flushing the queue (a FIN after what the kernel holds). Nothing is called after
  either.
* The peer's EOF calls `handler.eof_received()` (the handler decides when to close); a read or
  write error releases the socket, then calls `handler.connection_lost(error)`.
Handler calls come from loop callbacks, never from inside `write()` except the watermark ones.
"""

from __future__ import annotations

import errno
import os
import sys
from collections import deque
from itertools import islice, takewhile
from typing import TYPE_CHECKING, Any, Callable, Deque, Optional, Protocol

from . import sockopts

if TYPE_CHECKING:
    from .net import Net

__all__ = [
    "Stream",
    "StreamHandler",
    "StreamClosed",
    "FileRegion",
    "FileError",
    "FileEnded",
    "HIGH_WATER",
    "LOW_WATER",
    "TLS_CHUNK",
]

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
TLS_CHUNK = 256 * 1024
IOV_BATCH = 64  # pieces per sendmsg (far below any IOV_MAX)
FLUSH_TIMEOUT_S = 2.0
UNREAD_DISCARD_READS = 16  # before closing: unread input would make the kernel send RST

# Stream states (plain ints: compared on every read and write).
OPEN, CLOSING, LINGER, CLOSED = range(4)

_SENDFILE = hasattr(os, "sendfile")
_PREADV = hasattr(os, "preadv")
# sendfile cannot serve this socket or file (rather than: the connection failed)
_NO_SENDFILE = frozenset(
    getattr(errno, name, errno.EINVAL) for name in ("ENOSYS", "EINVAL", "EOPNOTSUPP", "ENOTSUP")
)


def _local_peer(sock: Any) -> bool:
    """Whether the peer is on this machine (a loopback address or a Unix socket). The reader's
    kernel then copies the file's page-cache pages itself, and sendfile loses to pread and
    send: over loopback, 256 MiB went at 2,416 MiB/s with 403 µs of sender CPU per MiB against
    3,573 MiB/s and 280 µs (Linux 6.18, medians of 5). Unknown (not connected): not local."""
    try:
        peer = sock.getpeername()
    except (OSError, AttributeError):
        return False
    if not isinstance(peer, tuple):
        return True  # a Unix socket's path (or b"", unnamed)
    host = str(peer[0])
    return host.startswith("127.") or host == "::1" or host.startswith("::ffff:127.")


class StreamClosed(Exception):
    """`write` on a stream that is closing, closed or lost."""


class FileRegion:
    """`count` bytes of the open regular file `fd` from `offset`, for `Stream.write_file`. The
    descriptor belongs to the writer: it must stay open until the stream no longer holds the
    region (its bytes left, a write failed, or the stream was closed)."""

    __slots__ = ("fd", "offset", "count")

    def __init__(self, fd: int, offset: int, count: int) -> None:
        self.fd = fd
        self.offset = offset
        self.count = count

    def __repr__(self) -> str:
        return "FileRegion(fd=%d, offset=%d, count=%d)" % (self.fd, self.offset, self.count)


class FileError(OSError):
    """Reading the file of a `FileRegion` failed (the read's errno and message)."""


class FileEnded(FileError):
    """The file of a `FileRegion` ended before `count` bytes: it shrank while being sent."""


def _not_region(piece: Any) -> bool:
    return type(piece) is not FileRegion


class StreamHandler(Protocol):
    """What a `Stream` tells its user, on the loop thread."""

    def data_received(self, data: memoryview) -> None: ...

    def eof_received(self) -> None: ...

    def connection_lost(self, error: BaseException) -> None: ...

    def pause_writing(self) -> None: ...

    def resume_writing(self) -> None: ...


class Stream:
    """One connection's socket, driven by the loop; made by `Net.stream`, loop thread only."""

    __slots__ = (
        "_net",
        "_loop",
        "sock",
        "handler",
        "sent",
        "write_error",
        "_keep_reading",
        "_ssl",
        "_state",
        "_reading",
        "_eof",
        "_queue",
        "_regions",
        "_sendfile",
        "_file_buffer",
        "buffered",
        "_writing",
        "_high",
        "_low",
        "_paused",
        "_timer",
        "_linger",
        "_on_closed",
        "__weakref__",
    )

    def __init__(
        self,
        net: "Net",
        sock: Any,
        handler: StreamHandler,
        high_water: int = HIGH_WATER,
        low_water: Optional[int] = None,
        keep_reading_on_write_error: bool = False,
    ) -> None:
        self._net = net
        self._loop = net.loop
        self.sock = sock
        self.handler: StreamHandler = handler  # a pooled connection's next user replaces it
        self.sent = 0  # bytes the kernel took, over the stream's life (read-only)
        self.write_error: Optional[OSError] = None  # why sending stopped (read-only)
        self._keep_reading = keep_reading_on_write_error
        ssl = sys.modules.get("ssl")  # loaded already if this is a TLS socket
        self._ssl: Any = ssl if ssl is not None and isinstance(sock, ssl.SSLSocket) else None
        self._state = OPEN
        self._reading = False
        self._eof = False
        self._queue: Deque[Any] = deque()
        self._regions = 0  # FileRegions in the queue (never batched into a sendmsg)
        # None: undecided until the first file (`zero_copy`), so a stream that never sends one
        # never asks the kernel for its peer
        self._sendfile: Optional[bool] = None if _SENDFILE and self._ssl is None else False
        self._file_buffer: Optional[bytearray] = None  # what regions are read into, reused
        self.buffered = 0  # bytes accepted by `write` that the kernel has not taken (read-only)
        self._writing = False
        self._high = high_water
        self._low = min(high_water, LOW_WATER if low_water is None else low_water)
        self._paused = False
        self._timer: Any = None
        self._linger = 0.0
        self._on_closed: Optional[Callable[[], None]] = None

    def __repr__(self) -> str:
        return "<Stream state=%d buffered=%d>" % (self._state, self.buffered)

    @property
    def closing(self) -> bool:
        """True once `close`, `abort` or a lost connection ended the stream for its user."""
        return self._state != OPEN

    @property
    def tls(self) -> bool:
        return self._ssl is not None

    @property
    def zero_copy(self) -> bool:
        """Whether `write_file` sends with `os.sendfile` (until the kernel refuses it)."""
        if self._sendfile is None:
            self._sendfile = not _local_peer(self.sock)
        return self._sendfile

    # -- reading ------------------------------------------------------------------------------

    def resume_reading(self) -> None:
        """Deliver data again (also how reading starts)."""
        if self._reading or self._state != OPEN or self._eof:
            return
        self._reading = True
        self._loop.add_reader(self.sock, self._readable_tls if self._ssl else self._readable)
        if self._ssl is not None and self.sock.pending():  # decrypted already: no readiness
            self._loop.call_soon(self._readable_tls)

    def pause_reading(self) -> None:
        """Stop delivering data; the peer's sends block once the kernel's buffers fill."""
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self.sock)

    def _readable(self) -> None:
        try:
            n = self.sock.recv_into(self._net.buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._lost(error)
            return
        if n:
            self.handler.data_received(self._net.view[:n])
        else:
            self._eof_received()

    def _readable_tls(self) -> None:
        ssl, sock, net = self._ssl, self.sock, self._net
        while self._reading:
            try:
                n = sock.recv_into(net.buffer)
            except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
                return
            except ssl.SSLWantWriteError:
                return  # a renegotiation wants to write; the next readiness retries
            except ssl.SSLZeroReturnError:
                n = 0
            except OSError as error:  # SSLError included (a ragged EOF among them)
                self._lost(error)
                return
            if not n:
                self._eof_received()
                return
            self.handler.data_received(net.view[:n])
            if not sock.pending():
                return

    def _eof_received(self) -> None:
        self.pause_reading()
        self._eof = True
        self.handler.eof_received()

    # -- writing ------------------------------------------------------------------------------

    def write(self, data: Any) -> None:
        """Send `data` (bytes-like, byte items) in order; it must not change afterwards.
        Raises `StreamClosed` once the stream is closing or lost."""
        if self._state != OPEN or self.write_error is not None:
            raise StreamClosed("the stream is closed")
        size = len(data)
        if not size:
            return
        if self._queue:
            self._queue.append(data)
            self.buffered += size
        else:
            try:
                if self._ssl is None:  # `_send` inlined: the common case, once per message
                    try:
                        sent = self.sock.send(data)
                    except (BlockingIOError, InterruptedError):
                        sent = 0
                else:
                    sent = self._send(data)
            except OSError as error:
                self._broken(error)
                raise StreamClosed("connection lost: %s" % (error,)) from None
            self.sent += sent
            if sent == size:
                return
            self._queue.append(memoryview(data)[sent:] if sent else data)
            self.buffered += size - sent
            self._watch_writable()
        self._pause_if_full()

    def write_file(self, region: FileRegion) -> None:
        """Send `region` in order after what was written before (see the module docstring).
        Raises `StreamClosed` as `write` does; a region that cannot be sent at once waits in
        the queue (`buffered`), where its descriptor must stay valid."""
        if self._state != OPEN or self.write_error is not None:
            raise StreamClosed("the stream is closed")
        if region.count <= 0:
            return
        queue = self._queue
        queue.append(region)
        self._regions += 1
        self.buffered += region.count
        if len(queue) == 1:  # nothing waited: send now, as `write` does
            try:
                self._drain()
            except OSError as error:
                self._broken(error)
                raise StreamClosed("connection lost: %s" % (error,)) from None
            if queue:
                self._watch_writable()
        self._pause_if_full()

    def _watch_writable(self) -> None:
        """The queue holds what the kernel did not take: send the rest as it frees room."""
        self._writing = True
        self._loop.add_writer(self.sock, self._writable)

    def _pause_if_full(self) -> None:
        if not self._paused and self.buffered > self._high:
            self._paused = True
            self.handler.pause_writing()

    def watch_drain(self) -> bool:
        """Have `handler.resume_writing()` called once `buffered` is back at the low
        watermark; False (and no call) if it is there already."""
        if self._state != OPEN or self.buffered <= self._low:
            return False
        self._paused = True
        return True

    def _send(self, data: Any) -> int:
        """One non-blocking send; 0 when the kernel (or OpenSSL) wants us to wait."""
        ssl = self._ssl
        try:
            if ssl is not None:
                return int(self.sock.send(data[:TLS_CHUNK]))
            return int(self.sock.send(data))
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as error:
            if ssl is not None and isinstance(error, (ssl.SSLWantWriteError, ssl.SSLWantReadError)):
                return 0
            raise

    def _writable(self) -> None:
        try:
            self._drain()
        except OSError as error:
            self._broken(error)
            if self.write_error is not None and self._paused:  # wake the producer to see
                self._paused = False
                self.handler.resume_writing()
            return
        if not self._queue:
            self._writing = False
            self._loop.remove_writer(self.sock)
            if self._state == CLOSING:
                self._flushed()
                return
        if self._paused and self.buffered <= self._low and self._state == OPEN:
            self._paused = False
            self.handler.resume_writing()

    def _drain(self) -> None:
        """Send queued pieces until the kernel takes no more or the queue is empty."""
        queue = self._queue
        multi = self._ssl is None and hasattr(self.sock, "sendmsg")
        while queue:
            head = queue[0]
            if type(head) is FileRegion:
                if self._send_region(head):
                    continue
                break
            if multi and len(queue) > 1:
                batch = islice(queue, IOV_BATCH)
                try:
                    sent = self.sock.sendmsg(
                        list(takewhile(_not_region, batch) if self._regions else batch)
                    )
                except (BlockingIOError, InterruptedError):
                    sent = 0
            else:
                sent = self._send(head)
            if not sent:
                break
            self.sent += sent
            self.buffered -= sent
            while sent:
                head = queue[0]
                length = len(head)
                if sent < length:
                    queue[0] = (head if isinstance(head, memoryview) else memoryview(head))[sent:]
                    break
                queue.popleft()
                sent -= length

    def _send_region(self, region: FileRegion) -> bool:
        """Send the region at the head of the queue with one sendfile, or, without sendfile,
        put its first `TLS_CHUNK` bytes, read, before it (sent as bytes next). False when the
        kernel takes no more now. Raises OSError (`FileError` for the file's failures)."""
        queue = self._queue
        if self.zero_copy:
            try:
                sent = os.sendfile(self.sock.fileno(), region.fd, region.offset, region.count)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as error:
                if error.errno in _NO_SENDFILE:
                    self._sendfile = False  # read it from now on
                # else the socket or the file failed: reading then sending tells which
            else:
                if not sent:
                    raise FileEnded("the file ended %d bytes short" % region.count)
                self.sent += sent
                self.buffered -= sent
                if sent < region.count:
                    queue[0] = FileRegion(region.fd, region.offset + sent, region.count - sent)
                    return False  # the kernel's buffer is full
                queue.popleft()
                self._regions -= 1
                return True
        try:
            data = self._read_region(region)
        except OSError as error:
            raise FileError(error.errno, error.strerror) from None
        size = len(data)
        if not size:
            raise FileEnded("the file ended %d bytes short" % region.count)
        if size < region.count:
            queue[0] = FileRegion(region.fd, region.offset + size, region.count - size)
        else:
            queue.popleft()
            self._regions -= 1
            if not self._regions:  # the buffer lives while files wait (the view keeps it)
                self._file_buffer = None
        queue.appendleft(data)
        return True

    def _read_region(self, region: FileRegion) -> Any:
        """The region's next bytes, at most `TLS_CHUNK`: a view of one reused buffer where
        `os.preadv` exists (the chunk leaves the queue before the region reads the next; a new
        256 KiB object per chunk cost 30 µs per MiB), else new bytes from `os.pread`."""
        count = min(region.count, TLS_CHUNK)
        if not _PREADV:
            return os.pread(region.fd, count, region.offset)
        buffer = self._file_buffer
        if buffer is None:
            buffer = self._file_buffer = bytearray(TLS_CHUNK)
        view = memoryview(buffer)[:count]
        return view[: os.preadv(region.fd, [view], region.offset)]

    def _broken(self, error: OSError) -> None:
        """A write failed: drop the queue. The handler hears of it from the next pass, unless
        the stream keeps reading: then only sending ends (`write_error`; `write` raises) and
        what the peer sent before the failure is still delivered (an HTTP server's 413)."""
        self._queue.clear()
        self._regions = 0
        self._file_buffer = None
        self.buffered = 0
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self.sock)
        if self._keep_reading and self._state == OPEN and not self._eof:
            self.write_error = error
            return
        self._loop.call_soon(self._lost, error)

    # -- ending -------------------------------------------------------------------------------

    def close(
        self,
        timeout: float = FLUSH_TIMEOUT_S,
        linger: float = 0.0,
        on_closed: Optional[Callable[[], None]] = None,
    ) -> None:
        """Flush, then close (or linger); `on_closed()` follows. No-op unless open."""
        if self._state != OPEN:
            return
        self._state = CLOSING
        self._linger = linger
        self._on_closed = on_closed
        self.pause_reading()
        if self._queue:
            self._timer = self._loop.call_later(timeout, self._flush_timed_out)
        else:
            self._loop.call_soon(self._flushed)

    def _flushed(self) -> None:
        if self._state != CLOSING:
            return
        self._cancel_timer()
        if self._linger > 0 and not self._eof:
            self._state = LINGER
            self._loop.add_reader(self.sock, self._linger_readable)
            self._timer = self._loop.call_later(self._linger, self._closed)
            return
        self._discard_unread()
        self._closed()

    def _flush_timed_out(self) -> None:
        self._timer = None
        sockopts.set_abortive(self.sock)  # what is still queued will never arrive: say so
        self._closed()

    def _linger_readable(self) -> None:
        try:
            n = self.sock.recv_into(self._net.buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:  # a reset (or a TLS error) ends the linger as EOF does
            ssl = self._ssl
            if ssl is not None and isinstance(error, ssl.SSLWantReadError):
                return  # part of a TLS record: wait for the rest
            n = 0
        if not n:
            self._closed()

    def _discard_unread(self) -> None:
        """Read what already arrived: closing with unread input would reset the connection,
        and the peer could lose the data just flushed."""
        try:
            for _ in range(UNREAD_DISCARD_READS):
                if not self.sock.recv_into(self._net.buffer):
                    return
        except (OSError, ValueError):
            return

    def _closed(self) -> None:
        on_closed, self._on_closed = self._on_closed, None
        self._release()
        if on_closed is not None:
            on_closed()

    def _lost(self, error: BaseException) -> None:
        state = self._state
        if state == CLOSED:
            return
        if state != OPEN:  # closing already: the close is over, if not gracefully
            self._closed()
            return
        self._release()
        self.handler.connection_lost(error)

    def abort(self) -> None:
        """Reset the connection now (RST); nothing is called afterwards. Idempotent."""
        if self._state == CLOSED:
            return
        self._on_closed = None
        sockopts.set_abortive(self.sock)
        self._release()

    def close_now(self) -> None:
        """Close the socket now, without flushing (the kernel still sends what it holds, then
        FIN); nothing is called afterwards. Idempotent."""
        self._on_closed = None
        self._release()

    def _release(self) -> None:
        """Forget the socket: timers, watchers, fd. Idempotent."""
        if self._state == CLOSED:
            return
        self._state = CLOSED
        self._cancel_timer()
        sock, loop = self.sock, self._loop
        if not loop.closed:
            loop.remove_reader(sock)
            loop.remove_writer(sock)
        self._reading = self._writing = False
        self._queue.clear()
        self._regions = 0
        self._file_buffer = None
        self.buffered = 0
        try:
            sock.close()
        except OSError:
            pass
        self._net._forget_stream(self)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
