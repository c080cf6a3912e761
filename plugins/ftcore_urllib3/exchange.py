"""One request/response on a pooled urllib3 connection, driven by the runtime's loop.

urllib3 opens the connection (DNS, TCP, TLS, on a worker: those calls block); from then on the
exchange runs on the loop thread with the socket non-blocking: the request head and body are
written as the kernel takes them, the response is parsed by `h1.ResponseParser` as it arrives,
and the sink hears each event at once, without a thread hop. A keep-alive connection goes back
to its pool before the sink hears `end`, so the next request of a sequence reuses it.

Abort (loop thread) closes the connection at once; a connection whose exchange did not end
cleanly (abort, error, a body the server did not wait for) is never reused.
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
from .h1 import Data, End, Head, ResponseParser, request_head

if TYPE_CHECKING:
    from .transport import Urllib3Transport

__all__ = ["Exchange", "now_ms"]

TLS_CHUNK = 16 * 1024  # one TLS record: a retried SSL write must offer the same bytes again
SMALL_BODY = 64 * 1024  # a body this small goes out in the same send as the head


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
        "_target",
        "_host",
        "_tls",
        "_out",
        "_body",
        "_sent",
        "_whole",
        "_in_flight",
        "_body_done",
        "_reading",
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
        self._target = target
        self._host = host
        self._tls = False
        self._out: Deque[Any] = deque()
        self._body: Optional[Iterator[bytes]] = None
        self._sent = 0
        self._whole = 0  # a bytes body, reported as sent once all of it left
        self._in_flight = 0  # the streamed body chunk being written
        self._body_done = False
        self._reading = False
        self._writing = False
        self._parser = ResponseParser(request.method)
        self._decoder: Optional[Decoder] = None
        self._received = 0

    # -- start ----------------------------------------------------------------------------------

    def start(self) -> None:
        conn = self.conn = self.pool._get_conn()
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
        if not body:
            self._out.append(head)
        elif len(body) <= SMALL_BODY:
            self._out.append(head + bytes(body))
            self._whole = len(body)
        else:
            self._out.append(head)
            self._out.append(memoryview(body))
            self._whole = len(body)
        info["requestStart"] = now_ms()
        self._reading = True
        self.transport.loop.add_reader(sock, self._readable)
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
                    out.clear()
                    self._body = None
                    self._stop_writing()
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
            if self._in_flight:  # a body chunk left whole
                self._report_sent(self._in_flight)
                self._in_flight = 0
            if not self._pull():
                break
        self._stop_writing()
        self._body_done = True
        if self._whole:
            self._report_sent(self._whole)
            self._whole = 0
        self.info["requestEnd"] = now_ms()

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
            self._in_flight = len(chunk)
        return True

    def _report_sent(self, nbytes: int) -> None:
        self._sent += nbytes
        self.sink.sent(nbytes)
        if self.done:  # a progress listener aborted the task
            raise _Stopped()

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
                parser.feed(view[:n])
            else:
                parser.feed_eof()
            try:
                self._process(parser)
            except _Stopped:
                return
            if self.done or not n or not (self._tls and sock.pending()):
                return

    def _process(self, parser: ResponseParser) -> None:
        sink, info = self.sink, self.info
        while True:
            try:
                event = parser.next_event()
            except FtError as error:
                self._fail(error)
                raise _Stopped() from None
            if event is None:
                return
            if type(event) is Data:
                data = event.data
                self._received += len(data)
                if self._decoder is None:
                    self._deliver(data)
                else:
                    self._deliver_decoded(self._decoder.decode(data))
            elif type(event) is Head:
                info["responseStart"] = now_ms()
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
                self._finish(parser.keep_alive)
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

    def _finish(self, keep_alive: bool) -> None:
        info = self.info
        info["responseEnd"] = now_ms()
        info["receivedBytedCount"] = self._received
        info["sendBytesCount"] = self._sent
        # a server that answered before taking the whole body: that connection is out of step
        self.release(reuse=keep_alive and self._body_done)
        self.sink.end(info)

    def _fail(self, error: FtError) -> None:
        if self.done:
            return
        self.release(reuse=False)
        self.sink.error(error)

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
        """Stop watching the socket and give the connection back (closed unless `reuse`)."""
        if self.done:
            return
        self.done = True
        self._body = None
        self._out.clear()
        loop, sock = self.transport.loop, self.sock
        if sock is not None:
            if self._reading:
                loop.remove_reader(sock)
            if self._writing:
                loop.remove_writer(sock)
        self.transport.give_back(self, reuse)


class _Stopped(Exception):
    """The exchange ended while handling an event: stop reading."""


def _header(headers: Any, name: str) -> str:
    for key, value in headers:
        if key.lower() == name:
            return str(value)
    return ""

