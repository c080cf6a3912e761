"""One request/response on a pooled urllib3 connection, driven by the runtime's loop.

urllib3 opens the connection (DNS, TCP, TLS, on a worker: those calls block); from then on the
exchange runs on the loop thread with the socket non-blocking: the request head and body are
written as the kernel takes them, the response is parsed by `h1.ResponseParser` as it arrives,
and the sink hears each event at once, without a thread hop. A keep-alive connection goes back
to its pool before the sink hears `end`, so the next request of a sequence reuses it.

A server may answer before it has read the whole body (RFC 9112 section 9.5; curl does the
same): after an early error status (400 and up), or a response announcing that the server
closes the connection, the rest of the body is not sent, the exchange settles with that
response and the connection is never reused; after any other early answer the body is sent in
full first, and the exchange settles only then (it fails if the server goes away before).
`sink.sent` hears the body bytes the kernel took, as they leave.

Flow control (`ftcore.transports.PausableHttpExchange`): `pause_reading()` takes the socket's
reader off the loop while a streaming consumer lags, `resume_reading()` puts it back.

Abort (loop thread) closes the connection at once; a connection whose exchange did not end
cleanly (abort, error, a body the server refused) is never reused. A failure reports what
the core's stale-connection retry needs: whether the connection was reused and how many
response bytes arrived (`ftcore.transports.HttpSink.error`); a request the core marks
`fresh_connection` never takes a pooled connection.
"""

from __future__ import annotations

import ssl
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, Iterator, Optional

from ftcore.errors import Errno, FtError
from ftcore.transports import HttpRequest, HttpSink

from .decoding import Decoder, make_decoder
from .errors import map_error
from .h1 import Data, End, H1ProtocolError, Head, ResponseParser, request_head

if TYPE_CHECKING:
    from .transport import Urllib3Transport

__all__ = ["Exchange", "now_ms"]

TLS_CHUNK = 16 * 1024  # one TLS record: a retried SSL write must offer the same bytes again
SMALL_BODY = 64 * 1024  # a body this small goes out in the same send as the head
BODY_NOT_SENT = "connection reset: closed by the server before the request body was sent"


def now_ms() -> float:
    return time.time() * 1000.0


class Exchange:
    """`HttpExchange` of the urllib3 transport; every method runs on the loop thread except
    `dial`, which runs on a worker."""

    __slots__ = (
        "transport",
        "request",
        "sink",
        "pool",
        "conn",
        "sock",
        "info",
        "aborted",
        "done",
        "dialing",
        "dial_handle",
        "route",
        "_target",
        "_host",
        "_tls",
        "_out",
        "_body",
        "_head_left",
        "_written",
        "_body_done",
        "_body_stopped",
        "_write_failed",
        "_answered",
        "_reading",
        "_paused",
        "_writing",
        "_parser",
        "_decoder",
        "_received",
    )

    def __init__(
        self,
        transport: "Urllib3Transport",
        request: HttpRequest,
        sink: HttpSink,
        pool: Any,
        target: str,
        host: str,
    ) -> None:
        self.transport = transport
        self.request = request
        self.sink = sink
        self.pool = pool
        self.conn: Any = None
        self.sock: Any = None
        self.info: Dict[str, Any] = {}
        self.aborted = False
        self.done = False
        self.dialing = False
        self.dial_handle: Any = None  # a dup of the socket being dialled (for abort)
        self.route: Any = None  # the transport's key of the pool (TLS settings, pool key)
        self._target = target
        self._host = host
        self._tls = False
        self._out: Deque[Any] = deque()
        self._body: Optional[Iterator[bytes]] = None
        self._head_left = 0  # bytes of the request head not yet written
        self._written = 0  # bytes of the request (head and body) the kernel took
        self._body_done = False  # every byte of the request was written
        self._body_stopped = False  # an early error answer: the rest of the body is not sent
        self._write_failed = False  # a write failed: the read side tells what happened
        self._answered = False  # the response is complete, the body is still being written
        self._reading = False
        self._paused = False  # pause_reading(): the reader is off the loop until resumed
        self._writing = False
        self._parser = ResponseParser(request.method)
        self._decoder: Optional[Decoder] = None
        self._received = 0

    # -- start ----------------------------------------------------------------------------------

    def start(self, conn: Any = None) -> None:
        """Run on `conn` (one the transport kept from the last exchange), or on one from the
        pool."""
        if conn is None:
            conn = self.pool._get_conn()
        self.conn = conn
        if conn.sock is not None and self.request.fresh_connection:
            conn.close()  # the core retries after a stale connection: never another pooled one
        if conn.sock is None:
            self.dialing = True
            self.transport.dial(self)
        else:
            self.info["socketReused"] = True
            self._send()

    def dial(self) -> Optional[BaseException]:
        """Worker thread: open the connection (the timing hooks of `transport._ConnMixin` fill
        in `info`); the error, if any, for `dialed`."""
        conn = self.conn
        seconds = self.request.timeout
        conn.timeout = None if seconds is None else seconds + self.transport.timeout_margin
        try:
            conn.connect()
        except BaseException as error:  # noqa: BLE001 - reported to the sink on the loop
            return error
        return None

    def dialed(self, error: Optional[BaseException]) -> None:
        """Loop thread: the worker finished `dial`."""
        self.dialing = False
        if self.aborted:
            self.release(reuse=False)
            return
        if error is not None:
            self._fail(map_error(error))
            return
        self.info["socketReused"] = False
        self.conn.sock.setblocking(False)  # for the connection's whole life in the pool
        self._send()

    # -- writing --------------------------------------------------------------------------------

    def _send(self) -> None:
        conn, request, info = self.conn, self.request, self.info
        sock = self.sock = conn.sock
        self._tls = isinstance(sock, ssl.SSLSocket)
        self.transport.note_peer(conn, sock, info)
        body: Any = request.body
        length = request.body_length
        if body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
            if length is None:  # a stream of unknown length: sent with its length, as bytes
                body = b"".join(body)
            else:
                self._body = iter(body)
                body = None
        if body is not None:
            length = len(body)
        head = request_head(
            request.method,
            self._target,
            self._host,
            request.headers,
            length,
            self.transport.user_agent,
        )
        self._head_left = len(head)
        if not body:
            self._out.append(head)
        elif len(body) <= SMALL_BODY:
            self._out.append(head + bytes(body))
        else:
            self._out.append(head)
            self._out.append(memoryview(body))
        info["requestStart"] = now_ms()
        self._reading = True
        self.transport.loop.add_reader(sock, self._readable)  # replaces an idle watcher in place
        self.transport.taken(conn)
        self._write()

    def _write(self) -> None:
        """Send what the kernel takes; pull the next body chunk once the last one left."""
        try:
            self._write_some()
        except _Stopped:
            pass

    def _write_some(self) -> None:
        out, sock = self._out, self.sock
        while True:
            while out:
                chunk = out[0]
                try:
                    sent = sock.send(chunk[:TLS_CHUNK] if self._tls else chunk)
                except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                    sent = 0
                except ssl.SSLWantReadError:
                    sent = 0
                except OSError:  # the response, or the read error, will tell what happened
                    self._write_failed = True
                    out.clear()
                    self._body = None
                    self._stop_writing()
                    if self._answered:  # nothing more will come to tell it
                        self._fail(FtError(Errno.CONNECTION_RESET, BODY_NOT_SENT))
                    return
                if not sent:
                    if not self._writing:
                        self._writing = True
                        self.transport.loop.add_writer(sock, self._write)
                    return
                if sent < len(chunk):
                    out[0] = (chunk if isinstance(chunk, memoryview) else memoryview(chunk))[sent:]
                else:
                    out.popleft()
                self._count_written(sent)
            if not self._pull():
                break
        self._stop_writing()
        self._body_done = True
        self.info["requestEnd"] = now_ms()
        if self._answered:  # the early answer waited for the rest of the body
            self._finish()

    def _pull(self) -> bool:
        """Queue the next chunk of a streamed body; False when the body is complete."""
        body = self._body
        if body is None:
            return False
        try:
            chunk = next(body)
        except StopIteration:
            self._body = None
            return False
        except FtError as error:  # the file changed or went away meanwhile
            self._fail(error)
            raise _Stopped() from None
        except Exception as error:  # noqa: BLE001 - e.g. a read error of the file
            self._fail(FtError(Errno.NETWORK, "network error: request body: %s" % error))
            raise _Stopped() from None
        if chunk:
            self._out.append(chunk)
        return True

    def _count_written(self, nbytes: int) -> None:
        """`nbytes` of the request left: the body's share goes to `sink.sent` at once, so
        upload progress is the bytes actually written."""
        self._written += nbytes
        head = self._head_left
        if head:
            if nbytes <= head:
                self._head_left = head - nbytes
                return
            self._head_left = 0
            nbytes -= head
        self.sink.sent(nbytes)
        if self.done:  # a progress listener aborted the task
            raise _Stopped()

    def _stop_body(self) -> None:
        """The server refused the rest of the body (an early error status, or it closes the
        connection): stop sending it (RFC 9112 section 9.5); the connection is never reused."""
        self._body_stopped = True
        self._out.clear()
        self._body = None
        self._stop_writing()
        self.info["requestEnd"] = now_ms()

    def _stop_writing(self) -> None:
        if self._writing:
            self._writing = False
            self.transport.loop.remove_writer(self.sock)

    # -- reading --------------------------------------------------------------------------------

    def _readable(self) -> None:
        transport, sock, parser = self.transport, self.sock, self._parser
        buffer, view = transport.buffer, transport.view
        while True:
            try:
                n = sock.recv_into(buffer)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                return
            except ssl.SSLWantWriteError:
                return  # a renegotiation wants to write: the next read retries
            except ssl.SSLZeroReturnError:
                n = 0
            except OSError as error:
                self._fail(map_error(error))
                return
            if n:
                self._received += n
                parser.feed(view[:n])
            else:
                parser.feed_eof()
            try:
                self._process(parser)
            except _Stopped:
                return
            if not n and self._answered:  # the server went away before taking the whole body
                self._fail(FtError(Errno.CONNECTION_RESET, BODY_NOT_SENT))
                return
            if self.done or self._paused or not n or not (self._tls and sock.pending()):
                return

    def pause_reading(self) -> None:
        """Loop thread: take the socket's reader off the loop (the kernel's receive buffer
        fills, then the server's sends block) until `resume_reading()`. Bytes already read are
        still delivered."""
        if self.done or self._paused:
            return
        self._paused = True
        if self._reading:
            self._reading = False
            self.transport.loop.remove_reader(self.sock)

    def resume_reading(self) -> None:
        """Loop thread: watch the socket again; bytes TLS already decrypted are read on the
        next pass (the selector would never report them)."""
        if self.done or not self._paused:
            return
        self._paused = False
        self._reading = True
        loop = self.transport.loop
        loop.add_reader(self.sock, self._readable)
        if self._tls and self.sock.pending():
            loop.call_soon(self._read_pending)

    def _read_pending(self) -> None:
        if not self.done and not self._paused:
            self._readable()

    def _process(self, parser: ResponseParser) -> None:
        sink, info = self.sink, self.info
        while True:
            try:
                event = parser.next_event()
            except H1ProtocolError as error:  # the codec's hint becomes the user's error
                self._fail(FtError(error.errno_hint, error.reason))
                raise _Stopped() from None
            if event is None:
                return
            if type(event) is Data:
                data = event.data
                if self._decoder is None:
                    self._deliver(data)
                else:
                    self._deliver_decoded(self._decoder.decode(data))
            elif type(event) is Head:
                info["responseStart"] = now_ms()
                if not self._body_done and (event.status >= 400 or _closing(event)):
                    self._stop_body()
                if self.request.decode_content:
                    encoding = _header(event.headers, "content-encoding")
                    if encoding:
                        self._decoder = make_decoder(encoding)
                sink.headers(event.status, event.headers, dict(info))
                if self.done:
                    raise _Stopped()
            elif type(event) is End:
                if self._decoder is not None:
                    self._deliver_decoded(self._decoder.flush())
                info["responseEnd"] = now_ms()
                if self._body_done or self._body_stopped:
                    self._finish()
                elif self._write_failed:
                    self._fail(FtError(Errno.CONNECTION_RESET, BODY_NOT_SENT))
                else:  # an early answer that expects the body: send the rest, then settle
                    self._answered = True
                raise _Stopped()

    def _deliver_decoded(self, pieces: Iterator[bytes]) -> None:
        """Hand decoded pieces over as the decoder makes them; a corrupt body fails the task."""
        try:
            for piece in pieces:
                self._deliver(piece)
        except FtError as error:
            self._fail(error)
            raise _Stopped() from None

    def _deliver(self, data: Any) -> None:
        try:
            self.sink.body(data)
        except Exception:  # noqa: BLE001 - the sink refused the body (limit, abort): stop
            self._drop()
            raise _Stopped() from None
        if self.done:
            raise _Stopped()

    # -- ends -----------------------------------------------------------------------------------

    def _finish(self) -> None:
        """The response is complete and the body sent (or refused): settle."""
        info = self._counts(self.info)
        # a body the server refused leaves the connection out of step: never reused
        self.release(reuse=self._body_done and self._parser.keep_alive)
        self.sink.end(info)

    def _fail(self, error: FtError) -> None:
        if self.done:
            return
        self.release(reuse=False)
        # the facts the core's stale-connection retry rule needs (ftcore.transports.HttpSink)
        facts = {"socketReused": bool(self.info.get("socketReused"))}
        self.sink.error(error, self._counts(facts))

    def _counts(self, info: Dict[str, Any]) -> Dict[str, Any]:
        """`info` with the bytes of the request written and of the response read, on the
        wire (heads and framing included, before content decoding)."""
        info["sendBytesCount"] = self._written
        info["receivedBytedCount"] = self._received
        return info

    def _drop(self) -> None:
        if not self.done:
            self.release(reuse=False)

    def abort(self) -> None:
        """Loop thread: close the connection now; a dial in progress is closed when it ends."""
        if self.done or self.aborted:
            return
        self.aborted = True
        if self.dialing:
            self.transport.interrupt_dial(self)
            return
        self.release(reuse=False)

    def release(self, reuse: bool) -> None:
        """Give the connection back: closed and unwatched unless `reuse`; a reused one stays
        in the selector with the transport's idle watcher (`Urllib3Transport.watch_idle`)."""
        if self.done:
            return
        self.done = True
        self._body = None
        self._out.clear()
        loop, sock = self.transport.loop, self.sock
        if sock is not None:
            if self._writing:
                loop.remove_writer(sock)
            if self._reading and not reuse:  # a reused socket stays watched while idle
                loop.remove_reader(sock)
        self.transport.give_back(self, reuse)


class _Stopped(Exception):
    """The exchange ended while handling an event: stop reading."""


def _closing(head: Head) -> bool:
    """Whether the server closes the connection after this response: it says so, or the
    response has no framing but the close itself (RFC 9112 section 6.3)."""
    connection, length, coding = [], False, ""
    for name, value in head.headers:
        lowered = name.lower()
        if lowered == "connection":
            connection += [token.strip(" \t") for token in value.lower().split(",")]
        elif lowered == "content-length":
            length = True
        elif lowered == "transfer-encoding":
            coding = value.lower()
    if "close" in connection or (head.version == "1.0" and "keep-alive" not in connection):
        return True
    framed = coding.rstrip(" \t").endswith("chunked") or (length and not coding)
    return not framed and head.status not in (204, 304)


def _header(headers: Any, name: str) -> str:
    for key, value in headers:
        if key.lower() == name:
            return str(value)
    return ""

