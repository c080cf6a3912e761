"""One request/response on a pooled urllib3 connection, driven by the runtime's loop.

urllib3 opens the connection (DNS, TCP, TLS, on a worker: those calls block); from then on
the connection is a stream of the runtime's stream layer (`ftcore._net.Stream`, made once per
connection and kept while it is pooled): the request head and body are written as the kernel
takes them, the response is parsed by `h1.ResponseParser` as it arrives, and the sink hears
each event at once, without a thread hop. The exchange is the stream's handler while it runs;
a keep-alive connection goes back to its pool (`transport.give_back`) before the sink hears
`end`, so the next request of a sequence reuses it.

A server may answer before it has read the whole body (RFC 9112 section 9.5; curl does the
same): after an early error status (400 and up), or a response announcing that the server
closes the connection, the rest of the body is not sent, the exchange settles with that
response and the connection is never reused; after any other early answer the body is sent in
full first, and the exchange settles only then (it fails if the server goes away before). A
write that fails ends only the sending side (the stream keeps reading), so the answer that
explains it still arrives. `sink.sent` hears the body bytes the kernel took, as they leave.

A body that offers `regions()` (uploadFile's multipart body) is iterated that way when the
stream sends files without copies (plain HTTP to another machine, `Stream.zero_copy`): its
file part goes out with `os.sendfile` (`Stream.write_file`), the rest as bytes. The exchange
keeps the iterator, which owns the regions' descriptor, until the stream can no longer send
from it (`release`); the file's failures fail the exchange as the byte route's do: a file that
ended under a region as a file that changed (600010), a read error as a network error naming
it.

Flow control (`ftcore.transports.PausableHttpExchange`): `pause_reading()` takes the socket's
reader off the loop while a streaming consumer lags, `resume_reading()` puts it back.

Abort (loop thread) closes the connection at once; a connection whose exchange did not end
cleanly (abort, error, a body the server refused) is never reused. A failure reports what
the core's stale-connection retry needs: whether the connection was reused and how many
response bytes arrived (`ftcore.transports.HttpSink.error`); a request the core marks
`fresh_connection` never takes a pooled connection.
"""

from __future__ import annotations

from time import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, Optional

from ftcore._net import FileEnded, FileError, FileRegion, Stream, StreamClosed
from ftcore.errors import Errno, FtError
from ftcore.transports import HttpRequest, HttpSink

from .decoding import Decoder, make_decoder
from .errors import map_error
from .h1 import Data, End, H1ProtocolError, Head, ResponseParser, request_head

if TYPE_CHECKING:
    from .transport import Urllib3Transport

__all__ = ["Exchange", "now_ms"]

SMALL_BODY = 64 * 1024  # a body this small goes out in the same send as the head
BODY_NOT_SENT = "connection reset: closed by the server before the request body was sent"


def _body_not_sent() -> FtError:
    return FtError(Errno.CONNECTION_RESET, BODY_NOT_SENT)


def _file_failed(error: FileError) -> FtError:
    """The error of an upload whose file failed under a region, as `_pull` reports it."""
    if isinstance(error, FileEnded):
        return FtError(Errno.INVALID_DATA, "file changed during upload")
    return FtError(Errno.NETWORK, "network error: request body: %s" % error)


def _pieces(body: Any, stream: Stream) -> Iterable[Any]:
    """A streamed body's pieces: with `FileRegion`s when the body offers them and the stream
    sends them without copies, else its bytes."""
    regions = getattr(body, "regions", None)
    if regions is not None and stream.zero_copy:
        return regions()
    return body


def now_ms() -> float:
    return time() * 1000.0


class Exchange:
    """`HttpExchange` of the urllib3 transport and, while it runs, the `StreamHandler` of its
    connection; every method runs on the loop thread except `dial`, which runs on a worker."""

    __slots__ = (
        "transport",
        "request",
        "sink",
        "pool",
        "conn",
        "stream",
        "info",
        "aborted",
        "done",
        "dialing",
        "dial_handle",
        "route",
        "_target",
        "_host",
        "_body",
        "_sent_before",
        "_head_size",
        "_written",
        "_body_done",
        "_body_stopped",
        "_answered",
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
        self.stream: Optional[Stream] = None
        self.info: Dict[str, Any] = {}
        self.aborted = False
        self.done = False
        self.dialing = False
        self.dial_handle: Any = None  # a dup of the socket being dialled (for abort)
        self.route: Any = None  # the transport's key of the pool (TLS settings, pool key)
        self._target = target
        self._host = host
        self._body: Optional[Iterator[Any]] = None  # a streamed body's pieces still to pull
        self._sent_before = 0  # `stream.sent` when this exchange began
        self._head_size = 0
        self._written = 0  # bytes of the request (head and body) the kernel took
        self._body_done = False  # every byte of the request was written
        self._body_stopped = False  # an early error answer: the rest of the body is not sent
        self._answered = False  # the response is complete, the body is still being written
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
            self._send(self.transport.take_stream(conn, self))

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
        self._send(self.transport.new_stream(self.conn, self))

    # -- writing --------------------------------------------------------------------------------

    def _send(self, stream: Stream) -> None:
        request, info = self.request, self.info
        self.stream = stream
        self._sent_before = stream.sent
        peer = self.conn._ft_peer  # asked of the kernel once per socket (`new_stream`)
        if peer is not None:
            info["peerIP"], info["port"] = peer
        body: Any = request.body
        length = request.body_length
        if body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
            if length is None:  # a stream of unknown length: sent with its length, as bytes
                body = b"".join(body)
            else:
                self._body = iter(_pieces(body, stream))
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
        self._head_size = len(head)
        info["requestStart"] = now_ms()
        try:
            if not body:
                stream.write(head)
            elif len(body) <= SMALL_BODY:
                stream.write(head + bytes(body))
            else:
                stream.write(head)
                stream.write(body)
        except StreamClosed:
            pass  # the read side tells what happened (`_write`)
        self._write()

    def resume_writing(self) -> None:
        """The stream's queue drained (or a write failed): go on with the body."""
        if not self.done:
            self._write()

    def pause_writing(self) -> None:
        """The stream holds bytes the kernel did not take: `_write` waits for them."""

    def _write(self) -> None:
        """Count what left; then pull and write body chunks while the kernel takes them."""
        stream = self.stream
        assert stream is not None
        while True:
            self._count_written(stream.sent - self._sent_before)
            if self.done:  # a progress listener aborted the task
                return
            if stream.write_error is not None:
                self._write_failed(stream.write_error)
                return
            if stream.closing:
                return  # lost: `connection_lost` settles
            if stream.buffered:
                return  # `resume_writing` comes once the kernel took it all
            if self._body_stopped:
                return  # `_process` settles once the answer is complete
            chunk = self._pull()
            if chunk is None:
                break
            try:
                if type(chunk) is FileRegion:
                    stream.write_file(chunk)
                else:
                    stream.write(chunk)
            except StreamClosed:
                pass  # `write_error` says why, on the next turn
        if self.done:
            return
        self._body_done = True
        self.info["requestEnd"] = now_ms()
        if self._answered:  # the early answer waited for the rest of the body
            self._finish()

    def _pull(self) -> Optional[Any]:
        """The next chunk of a streamed body; None when the body is complete."""
        body = self._body
        while body is not None:
            try:
                chunk = next(body)
            except StopIteration:
                self._body = None
                return None
            except FtError as error:  # the file changed or went away meanwhile
                self._fail(error)
                return None
            except Exception as error:  # noqa: BLE001 - e.g. a read error of the file
                self._fail(FtError(Errno.NETWORK, "network error: request body: %s" % error))
                return None
            if chunk:
                return chunk
        return None

    def _write_failed(self, error: OSError) -> None:
        """Sending ended with `error`: the response, or the read side's error, tells what
        happened, unless the response is complete already or the file under a region ended."""
        if isinstance(error, FileError):
            self._fail(_file_failed(error))
            return
        self._body = None
        if self._answered:  # nothing more will come to tell it
            self._fail(_body_not_sent())

    def _count_written(self, written: int) -> None:
        """The request has `written` bytes on the wire: the body's new share goes to
        `sink.sent` at once, so upload progress is the bytes actually written."""
        head_size = self._head_size
        body_before = self._written - head_size
        self._written = written
        body_now = written - head_size
        if body_now > 0 and body_now > body_before:  # body bytes left (the head is not counted)
            self.sink.sent(body_now - max(0, body_before))

    def _stop_body(self) -> None:
        """The server refused the rest of the body (an early error status, or it closes the
        connection): stop sending it (RFC 9112 section 9.5); the connection is never reused."""
        self._body_stopped = True  # `_body` is kept: the stream may still send a region of it
        self.info["requestEnd"] = now_ms()

    # -- reading --------------------------------------------------------------------------------

    def data_received(self, data: memoryview) -> None:
        self._received += len(data)
        parser = self._parser
        parser.feed(data)
        try:
            self._process(parser)
        except _Stopped:
            return

    def eof_received(self) -> None:
        parser = self._parser
        parser.feed_eof()
        try:
            self._process(parser)
        except _Stopped:
            pass
        if self._answered and not self.done:  # the server left before taking the whole body
            self._fail(_body_not_sent())

    def connection_lost(self, error: BaseException) -> None:
        self._fail(_file_failed(error) if isinstance(error, FileError) else map_error(error))

    def pause_reading(self) -> None:
        """Loop thread: take the socket's reader off the loop (the kernel's receive buffer
        fills, then the server's sends block) until `resume_reading()`. Bytes already read are
        still delivered."""
        if not self.done and self.stream is not None:
            self.stream.pause_reading()

    def resume_reading(self) -> None:
        """Loop thread: watch the socket again (bytes TLS already decrypted come too)."""
        if not self.done and self.stream is not None:
            self.stream.resume_reading()

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
                elif self.stream is not None and self.stream.write_error is not None:
                    self._fail(_body_not_sent())
                else:  # an early answer that expects the body: send the rest, then settle
                    self._answered = True
                return  # nothing follows End (a return: raising costs a traceback)

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
        # a body the server refused leaves the connection out of step: never reused
        self.release(reuse=self._body_done and self._parser.keep_alive)
        self.sink.end(self._counts(self.info))

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
        """Give the connection back: closed unless `reuse`; a reused one's stream goes on
        watching the socket for the pool (`transport.give_back`)."""
        if self.done:
            return
        self.done = True
        if self.stream is not None:
            self._written = self.stream.sent - self._sent_before
        self.transport.give_back(self, reuse)
        self._body = None  # closed or idle, the stream holds no region of it any more


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
    size = len(name)
    for key, value in headers:
        if len(key) == size and key.lower() == name:  # most names are not lowered at all
            return str(value)
    return ""

