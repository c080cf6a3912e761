"""HTTP/1.1 for the client side, sans-IO: request heads out, response events in.

The transport drives it from its selectors loop: it sends `request_head(...)`, feeds whatever
`recv_into` returned to a `ResponseParser` and pulls events until `next_event()` returns None
(more bytes needed). Nothing here touches a socket, a clock or a thread, so tests can feed a
response whole, byte by byte or cut anywhere.

Hostile servers meet bounds that are checked while bytes arrive (a head, any single line, the
number of header fields, the trailers), so an endless header fails when it crosses the bound,
not when it stops. Body bytes are never copied: a `Data` event holds what was fed, or a
memoryview slice of it, valid until the next `feed()`. Only framing bytes that straddle two
feeds (part of a head or of a chunk-size line) are copied, because the caller reuses its
receive buffer.

Framing follows RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304; a Transfer-Encoding
ending in chunked; else Content-Length; else the body runs to EOF. Interim 1xx heads (100
Continue, 102, 103) are read, bounded and skipped; 101 ends the exchange.
"""

from __future__ import annotations

import re
from typing import Any, Callable, List, Optional, Tuple, Union

from ftcore.errors import Errno

__all__ = [
    "MAX_HEAD_BYTES",
    "MAX_LINE_BYTES",
    "MAX_HEADERS",
    "H1ProtocolError",
    "Head",
    "Data",
    "End",
    "Event",
    "request_head",
    "ResponseParser",
]

MAX_HEAD_BYTES = 256 * 1024  # status line + all header lines of one response
MAX_LINE_BYTES = 64 * 1024  # any single line (status, header, chunk-size line, trailer)
MAX_HEADERS = 100  # header fields in one head (like http.client)

MAX_CHUNK_SIZE_DIGITS = 16  # hex digits of a chunk size: 2**64 bytes is plenty
MAX_CONTENT_LENGTH_DIGITS = 19  # keeps int() far from its digit limit; 10**19 bytes is plenty

Buffer = Union[bytes, bytearray, memoryview]


class H1ProtocolError(Exception):
    """The server broke HTTP/1.1, crossed a bound, or closed the connection mid-response.

    The codec's own error, as h11's `RemoteProtocolError` is: it carries the hints the adapter
    turns into the user's error (`errno_hint`, an `Errno` number, and `reason`, the errMsg
    text), so the codec never builds the application's `FtError`. Every fault is the peer's:
    the request side takes validated input and raises nothing.
    """

    def __init__(self, errno_hint: Errno, reason: str) -> None:
        super().__init__(reason)
        self.errno_hint = errno_hint
        self.reason = reason


class Head:
    """The final response head: status, reason, header fields as sent, version ("1.1")."""

    __slots__ = ("status", "reason", "headers", "version")

    def __init__(
        self, status: int, reason: str, headers: List[Tuple[str, str]], version: str
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.version = version

    def _fields(self) -> Tuple[int, str, List[Tuple[str, str]], str]:
        return self.status, self.reason, self.headers, self.version

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Head) and self._fields() == other._fields()

    def __repr__(self) -> str:
        return "Head(%r, %r, %r, %r)" % self._fields()


class Data:
    """Body bytes, never empty: what was fed or a memoryview slice of it (no copy)."""

    __slots__ = ("data",)

    def __init__(self, data: Buffer) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Data) and self.data == other.data

    def __repr__(self) -> str:
        return "Data(%r)" % (bytes(self.data),)


class End:
    """The body is complete; `ResponseParser.keep_alive` now tells whether to reuse."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, End)

    def __repr__(self) -> str:
        return "End()"


Event = Union[Head, Data, End]


# -- the request side -----------------------------------------------------------------------

_METHODS_WITH_BODY = frozenset(("POST", "PUT", "PATCH"))


def request_head(
    method: str,
    target: str,
    host_header: str,
    headers: List[Tuple[str, str]],
    body_length: Optional[int],
    user_agent: str,
) -> bytes:
    """The request line and header block, with the defaults http.client and urllib3 add.

    `Host` comes first unless the caller gave one; `Accept-Encoding: identity` and the
    `User-Agent` are added unless given; `Content-Length` is added for a body (and as 0 for a
    POST, PUT or PATCH without one, which some servers demand) unless the caller set a
    Content-Length or a Transfer-Encoding. Names and values were validated by the caller.
    """
    pieces = [method, " ", target, " HTTP/1.1\r\n"]
    has_host = has_agent = has_encoding = has_framing = False
    for name, _value in headers:
        lowered = name.lower()
        if lowered == "host":
            has_host = True
        elif lowered == "user-agent":
            has_agent = True
        elif lowered == "accept-encoding":
            has_encoding = True
        elif lowered == "content-length" or lowered == "transfer-encoding":
            has_framing = True
    if not has_host:
        pieces += ("Host: ", host_header, "\r\n")
    for name, value in headers:
        pieces += (name, ": ", value, "\r\n")
    if not has_encoding:
        pieces.append("Accept-Encoding: identity\r\n")
    if not has_agent:
        pieces += ("User-Agent: ", user_agent, "\r\n")
    if not has_framing:
        if body_length:
            pieces += ("Content-Length: ", str(body_length), "\r\n")
        elif method.upper() in _METHODS_WITH_BODY:
            pieces.append("Content-Length: 0\r\n")
    pieces.append("\r\n")
    try:
        return "".join(pieces).encode("latin-1")
    except UnicodeEncodeError:
        return b"".join(_encode_value(piece) for piece in pieces)


def _encode_value(text: str) -> bytes:
    """Latin-1 as http.client sends it, UTF-8 for text latin-1 cannot carry (what browsers do)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


# -- the response side ----------------------------------------------------------------------

_TOO_LARGE = "response header too large"
_MALFORMED = "bad response: malformed status line or headers"
_BAD_LENGTH = "bad response: invalid Content-Length"
_BAD_CHUNK = "bad response: invalid chunked encoding"
_NO_RESPONSE = "connection closed without response"
_HEAD_CUT = "connection closed early: incomplete header"
_BODY_CUT = "connection closed early: short body"

_HEAD_END = b"\r\n\r\n"
_HEAD_END_RE = re.compile(re.escape(_HEAD_END))  # memoryview has no find(); re searches it
_CRLF = b"\r\n"
_CRLF_RE = re.compile(re.escape(_CRLF))
_STATUS_LINE_RE = re.compile(r"HTTP/1\.[0-9] [0-9]{3}(?: |\Z)")  # then the reason phrase
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_OWS = " \t"
_EMPTY = b""
_END_EVENT = End()
_AGAIN: Any = object()  # a step's answer: the state changed, run the next one


def _too_large() -> H1ProtocolError:
    return H1ProtocolError(Errno.RESPONSE_TOO_LARGE, _TOO_LARGE)


def _malformed() -> H1ProtocolError:
    return H1ProtocolError(Errno.BAD_RESPONSE, _MALFORMED)


def _bad_chunk() -> H1ProtocolError:
    return H1ProtocolError(Errno.BAD_RESPONSE, _BAD_CHUNK)


def _body_cut() -> H1ProtocolError:
    return H1ProtocolError(Errno.CONNECTION_RESET, _BODY_CUT)


def _find(data: Buffer, needle: bytes, pattern: "re.Pattern[bytes]", start: int, end: int) -> int:
    """`data.find(needle, start, end)` that also works on a memoryview, without copying it."""
    if type(data) is memoryview:
        found = pattern.search(data, start, end)
        return found.start() if found else -1
    return data.find(needle, start, end)  # type: ignore[union-attr]


class ResponseParser:
    """One response on one connection: `feed()` bytes, then `next_event()` until it is None.

    States are the `_read_*` functions; `_step` holds the current one (a plain function, not
    a bound method, so the parser holds no reference cycle). A step returns an event, None when
    it needs more bytes, or `_AGAIN` after a state change that consumed no event. Errors are
    raised from `next_event()` as `H1ProtocolError` and are sticky.
    """

    __slots__ = (
        "_step",
        "_in",
        "_pos",
        "_buf",
        "_line_start",
        "_eof",
        "_error",
        "_no_body",
        "_interim_heads",
        "_keep_alive",
        "_reusable",
        "_remaining",
        "_trailer_bytes",
    )

    def __init__(self, method: str) -> None:
        self._step: Callable[[ResponseParser], Any] = ResponseParser._read_head
        self._in: Buffer = _EMPTY  # the current feed; bytes before `_pos` are consumed
        self._pos = 0
        self._buf = bytearray()  # framing bytes carried over from earlier feeds
        self._line_start = 0  # in `_buf`: where the unfinished line of a partial head starts
        self._eof = False
        self._error: Optional[H1ProtocolError] = None
        self._no_body = method.upper() == "HEAD"
        self._interim_heads = 0
        self._keep_alive = False  # what the head allows once the body is complete
        self._reusable = False  # End was reached with the head allowing reuse
        self._remaining = 0  # bytes left of a Content-Length body or of the current chunk
        self._trailer_bytes = 0

    def feed(self, data: Buffer) -> None:
        """Take bytes from the peer; only `next_event()` looks at them.

        `data` may be a view of a buffer the caller reuses once `next_event()` returned None:
        whatever must outlive that is copied first.
        """
        if self._pos < len(self._in):  # fed twice without draining: keep both (rare)
            self._in = bytes(self._in[self._pos :]) + bytes(data)
        else:
            self._in = data
        self._pos = 0

    def feed_eof(self) -> None:
        """The peer closed the connection (a read returned 0 bytes)."""
        self._eof = True

    def next_event(self) -> Optional[Event]:
        """The next Head, Data or End; None while more bytes are needed (or after End)."""
        try:
            while True:
                event = self._step(self)
                if event is not _AGAIN:
                    return event
        except H1ProtocolError as exc:
            self._error = exc
            self._step = ResponseParser._raise_error
            raise

    @property
    def keep_alive(self) -> bool:
        """After End: whether the connection can carry another request."""
        return self._reusable and not self._eof and self._pos >= len(self._in)

    # -- states -----------------------------------------------------------------------------

    def _raise_error(self) -> None:
        assert self._error is not None
        raise self._error

    def _need_more(self) -> None:
        """Everything fed is consumed: drop the reference to the caller's buffer."""
        self._in = _EMPTY
        self._pos = 0

    def _read_head(self) -> Any:
        data, pos = self._in, self._pos
        size = len(data)
        buf = self._buf
        if buf:  # the blank line may straddle the carried bytes and this feed
            probe = bytes(buf[-3:]) + bytes(data[pos : pos + 3])
            found = probe.find(_HEAD_END)
            stop = pos + found + 4 - min(len(buf), 3) if found >= 0 else -1
        else:
            stop = -1
        if stop < 0:
            found = _find(data, _HEAD_END, _HEAD_END_RE, pos, pos + MAX_HEAD_BYTES - len(buf))
            stop = found + 4 if found >= 0 else -1
        if stop < 0:
            if pos >= size:
                if self._eof:
                    if buf or self._interim_heads:
                        raise H1ProtocolError(Errno.CONNECTION_RESET, _HEAD_CUT)
                    raise H1ProtocolError(Errno.CONNECTION_RESET, _NO_RESPONSE)
                self._need_more()
                return None
            self._carry_head_bytes(data, pos, size)
            return _AGAIN  # checks EOF, which may already have been fed
        if buf:
            text = (bytes(buf) + bytes(data[pos:stop])).decode("latin-1")[:-4]
            if len(text) + 4 > MAX_HEAD_BYTES:
                raise _too_large()
            buf.clear()
            self._line_start = 0
        else:
            text = str(data[pos : stop - 4], "latin-1")
        self._pos = stop
        return self._parse_head(text)

    def _carry_head_bytes(self, data: Buffer, pos: int, size: int) -> None:
        """Copy an unfinished head, failing as soon as it can no longer fit its bounds."""
        buf = self._buf
        start = len(buf)
        if start + size - pos >= MAX_HEAD_BYTES:  # the blank line can no longer fit
            raise _too_large()
        buf += data[pos:size]
        self._pos = size
        if not b"HTTP/".startswith(buf[:5]):
            raise _malformed()
        last_crlf = buf.rfind(_CRLF, max(start - 1, self._line_start))
        if last_crlf >= 0:
            self._line_start = last_crlf + 2
        if len(buf) - self._line_start - (buf[-1] == 13) > MAX_LINE_BYTES:
            raise _too_large()

    def _parse_head(self, text: str) -> Any:
        lines = text.split("\r\n")
        status_line = lines[0]
        if _STATUS_LINE_RE.match(status_line) is None:
            raise _malformed()
        if len(text) > MAX_LINE_BYTES and max(map(len, lines)) > MAX_LINE_BYTES:
            raise _too_large()
        breaks = len(lines) - 1
        if text.count("\n") != breaks or text.count("\r") != breaks or "\0" in text:
            # A CR or LF outside CRLF, or a NUL: RFC 9110 §5.5 says reject, since a parser
            # that takes a bare LF as a line end reads other fields (and framing) here.
            raise _malformed()
        status = int(status_line[9:12])
        if status < 100:  # not a status (RFC 9110 §15), least of all an interim one to skip
            raise _malformed()
        headers: List[Tuple[str, str]] = []
        append = headers.append
        for line in lines[1:]:
            if line[0] in _OWS:  # obsolete line folding: continues the previous value
                if not headers:
                    raise _malformed()
                name, value = headers.pop()
                append((name, (value + " " + line.strip(_OWS)).strip(_OWS)))
                continue
            name, colon, value = line.partition(":")
            if not colon or not name or name[-1] in _OWS:
                raise _malformed()
            append((name, value.strip(_OWS)))
        if len(headers) > MAX_HEADERS:
            raise _too_large()
        if status < 200 and status != 101:
            self._interim_heads += 1
            return _AGAIN
        connection, length, coding = _framing_fields(headers)
        if status_line[7] == "0":
            self._keep_alive = connection is not None and _has_token(connection, "keep-alive")
        else:
            self._keep_alive = connection is None or not _has_token(connection, "close")
        self._choose_framing(status, length, coding)
        return Head(status, status_line[13:].strip(_OWS), headers, status_line[5:8])

    def _choose_framing(self, status: int, length: Optional[str], coding: Optional[str]) -> None:
        if status == 101:
            self._keep_alive = False
            self._step = ResponseParser._read_end
        elif self._no_body or status == 204 or status == 304:
            self._step = ResponseParser._read_end
        elif coding is not None:
            if coding.rpartition(",")[2].strip(_OWS).lower() == "chunked":
                if length is not None:  # a request smuggling shape: do not reuse
                    self._keep_alive = False
                self._step = ResponseParser._read_chunk_size
            else:
                self._keep_alive = False
                self._step = ResponseParser._read_until_eof
        elif length is not None:
            self._remaining = _content_length(length)
            if self._remaining:
                self._step = ResponseParser._read_length_body
            else:
                self._step = ResponseParser._read_end
        else:
            self._keep_alive = False
            self._step = ResponseParser._read_until_eof

    def _read_length_body(self) -> Any:
        return self._read_counted(ResponseParser._read_end, 0)

    def _read_counted(self, then: Any, framing_after: int) -> Any:
        """Data of up to `_remaining` body bytes; once all arrived, `then` reads what follows
        (`framing_after` bytes of it: the CRLF that ends chunk data)."""
        data, pos = self._in, self._pos
        size = len(data)
        if pos >= size:
            if self._eof:
                raise _body_cut()
            self._need_more()
            return None
        remaining = self._remaining
        stop = pos + remaining if size - pos > remaining else size
        self._pos = stop
        self._remaining = remaining = remaining - (stop - pos)
        if not remaining:
            self._remaining = framing_after
            self._step = then
        return Data(self._slice(data, pos, stop))

    def _read_chunk_size(self) -> Any:
        line = self._take_line()
        if line is None:
            return None
        digits, _, extensions = line.partition(b";")
        digits = digits.strip(b" \t")
        if not digits or len(digits) > MAX_CHUNK_SIZE_DIGITS or digits.translate(None, _HEX_DIGITS):
            raise _bad_chunk()
        if b"\r" in extensions or b"\n" in extensions:  # a bare CR or LF, as in a head
            raise _bad_chunk()
        self._remaining = int(digits, 16)
        if self._remaining:
            self._step = ResponseParser._read_chunk_data
            return self._read_chunk_data()
        self._step = ResponseParser._read_trailer
        return self._read_trailer()

    def _read_chunk_data(self) -> Any:
        return self._read_counted(ResponseParser._read_chunk_end, 2)

    def _read_chunk_end(self) -> Any:
        """The CRLF after chunk data; `_remaining` counts its bytes not yet seen."""
        data, pos = self._in, self._pos
        size = len(data)
        remaining = self._remaining
        while remaining:
            if pos >= size:
                self._remaining = remaining
                if self._eof:
                    raise _body_cut()
                self._need_more()
                return None
            if data[pos] != _CRLF[2 - remaining]:
                raise _bad_chunk()
            pos += 1
            remaining -= 1
        self._pos = pos
        self._step = ResponseParser._read_chunk_size
        return self._read_chunk_size()

    def _read_trailer(self) -> Any:
        """Trailer fields up to the blank line, bounded like a head and discarded."""
        while True:
            line = self._take_line()
            if line is None:
                return None
            if not line:
                return self._read_end()
            self._trailer_bytes += len(line) + 2
            if self._trailer_bytes > MAX_HEAD_BYTES:
                raise _too_large()

    def _take_line(self) -> Optional[bytes]:
        """The next CRLF-ended line without its CRLF; None (the start carried) until complete."""
        data, pos = self._in, self._pos
        size = len(data)
        buf = self._buf
        if buf and buf[-1] == 13 and data[pos : pos + 1] == b"\n":
            self._pos = pos + 1
            line = bytes(buf[:-1])
            buf.clear()
            return line
        limit = pos + MAX_LINE_BYTES + 2 - len(buf)
        found = _find(data, _CRLF, _CRLF_RE, pos, limit)
        if found >= 0:
            line = bytes(data[pos:found])
            if buf:
                line = bytes(buf) + line
                buf.clear()
            self._pos = found + 2
            return line
        if pos >= size:
            if self._eof:
                raise _body_cut()
            self._need_more()
            return None
        if size >= limit:
            raise _too_large()
        buf += data[pos:size]
        if self._eof:
            raise _body_cut()
        self._need_more()
        return None

    def _read_until_eof(self) -> Any:
        data, pos = self._in, self._pos
        size = len(data)
        if pos < size:
            self._pos = size
            return Data(self._slice(data, pos, size))
        if self._eof:
            return self._read_end()
        self._need_more()
        return None

    def _read_end(self) -> Any:
        self._reusable = self._keep_alive
        self._step = ResponseParser._read_nothing
        return _END_EVENT

    def _read_nothing(self) -> None:
        """After End: bytes the server should not have sent make the connection unusable."""
        if self._pos < len(self._in):
            self._reusable = False
        self._need_more()

    def _slice(self, data: Buffer, start: int, stop: int) -> Buffer:
        """Body bytes without a copy: all that was fed, or a memoryview slice of it."""
        if type(data) is memoryview:
            return data[start:stop]
        if start == 0 and stop == len(data):
            return data
        view = self._in = memoryview(data)  # later slices of this feed reuse the view
        return view[start:stop]


def _framing_fields(
    headers: List[Tuple[str, str]],
) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """Connection, Content-Length and Transfer-Encoding, each repeat joined with a comma."""
    connection = length = coding = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-length":
            length = value if length is None else length + "," + value
        elif lowered == "transfer-encoding":
            coding = value if coding is None else coding + "," + value
        elif lowered == "connection":
            connection = value if connection is None else connection + "," + value
    return connection, length, coding


def _has_token(value: str, token: str) -> bool:
    """Whether the comma list `value` holds `token` (case-insensitive)."""
    value = value.lower()
    return token in value and token in (item.strip(_OWS) for item in value.split(","))


def _content_length(value: str) -> int:
    """The length from one or more Content-Length values; equal duplicates are tolerated."""
    if value.isdecimal() and len(value) <= MAX_CONTENT_LENGTH_DIGITS:
        return int(value)
    lengths = set()
    for item in value.split(","):
        item = item.strip(_OWS)
        if not item.isdecimal() or len(item) > MAX_CONTENT_LENGTH_DIGITS:
            raise H1ProtocolError(Errno.BAD_RESPONSE, _BAD_LENGTH)
        lengths.add(int(item))
    if len(lengths) != 1:
        raise H1ProtocolError(Errno.BAD_RESPONSE, _BAD_LENGTH)
    return lengths.pop()
