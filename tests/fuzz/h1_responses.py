"""Valid HTTP/1.1 responses for the h1 fuzz tests, each with what a parser must find in it.

The grammar is the common ground of RFC 9112, `h1` and h11 (token names, visible-text values
with inner spaces, plain chunk extensions), so the differential test can feed the same bytes
to both. Framing is any of Content-Length, chunked (with extensions and trailers), none (the
body ends at EOF), or a response without a body (HEAD, 204, 304); 1xx heads may come first.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import List, Optional, Tuple

from hypothesis import strategies as st

from ftcore_urllib3.h1 import Data, End, Event, H1ProtocolError, Head, ResponseParser

from .support import pull

_TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
_VCHAR = "".join(map(chr, range(0x21, 0x7F))) + "".join(map(chr, range(0x80, 0x100)))
_FRAMING = ("content-length", "transfer-encoding")

token = st.text(_TCHAR, min_size=1, max_size=10)
text = st.lists(st.text(_VCHAR, min_size=1, max_size=8), max_size=3).map(" ".join)
field = st.tuples(token.filter(lambda name: name.lower() not in _FRAMING), text)

Headers = List[Tuple[str, str]]


@dataclass
class Response:
    """The bytes on the wire and what they hold."""

    raw: bytes
    method: str
    status: int
    reason: str
    headers: Headers  # as sent, framing fields included
    body: bytes
    needs_eof: bool  # the body runs until the connection closes


def _head(status_line: str, headers: Headers) -> bytes:
    lines = [status_line] + ["%s: %s" % pair for pair in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@st.composite
def _chunked(draw: st.DrawFn, body: bytes) -> bytes:
    out, pos = [], 0
    while pos < len(body):
        size = draw(st.integers(1, max(1, len(body) - pos)))
        digits = draw(st.sampled_from(["%x", "%X", "%04x"])) % size
        ext = draw(st.sampled_from(["", ";a", ";a=b", ';n="v"']))
        out.append(b"%s%s\r\n%s\r\n" % (digits.encode(), ext.encode(), body[pos : pos + size]))
        pos += size
    trailers = draw(st.lists(field, max_size=2))
    out.append(b"0\r\n" + b"".join(b"%s: %s\r\n" % (n.encode(), v.encode("latin-1"))
                                    for n, v in trailers) + b"\r\n")
    return b"".join(out)


@st.composite
def responses(draw: st.DrawFn, max_body: int = 300) -> Response:
    """A valid response (status 101 aside: it ends the exchange in `h1`, and h11 needs an
    Upgrade request to accept it)."""
    method = draw(st.sampled_from(["GET", "GET", "GET", "HEAD"]))
    version = draw(st.sampled_from(["1.1", "1.1", "1.0"]))
    status = draw(st.sampled_from([200, 201, 204, 206, 301, 304, 404, 500, 599, 999]))
    reason = draw(text)
    headers = draw(st.lists(field, max_size=5))
    body = draw(st.binary(max_size=max_body))
    framing = draw(st.sampled_from(["length", "chunked", "eof"]))
    no_body = method == "HEAD" or status in (204, 304)
    payload = b"" if no_body else body
    if framing == "length":
        headers.insert(draw(st.integers(0, len(headers))), ("Content-Length", str(len(body))))
    elif framing == "chunked":
        headers.insert(draw(st.integers(0, len(headers))), ("Transfer-Encoding", "chunked"))
        if not no_body:
            payload = draw(_chunked(body))
    status_line = "HTTP/%s %d" % (version, status)
    if draw(st.booleans()):
        status_line += " " + reason
    else:
        reason = ""
    interim = draw(st.lists(st.sampled_from([
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
    ]), max_size=2))
    raw = b"".join(interim) + _head(status_line, headers) + payload
    return Response(
        raw=raw,
        method=method,
        status=status,
        reason=reason,
        headers=headers,
        body=b"" if no_body else body,
        needs_eof=framing == "eof" and not no_body,
    )


@dataclass
class Outcome:
    """What a parser made of a stream: the final head and body, or its error."""

    head: Optional[Head]
    body: bytes
    ended: bool
    error: Optional[Tuple[int, str]] = None  # (errno hint, reason)


def parse(pieces: List[bytes], method: str, eof: bool) -> Outcome:
    """Feed `pieces` as the transport does (views of one reused, then scribbled-over receive
    buffer), then EOF if asked; any exception but H1ProtocolError escapes."""
    parser = ResponseParser(method)
    recv = bytearray(max([len(piece) for piece in pieces] + [1]))
    fed = 0
    outcome = Outcome(None, b"", False)
    body = bytearray()
    events: List[Event] = []
    try:
        for piece in pieces:
            recv[: len(piece)] = piece
            parser.feed(memoryview(recv)[: len(piece)])
            fed += len(piece)
            try:  # Data events are views of `recv`: copy them before it is overwritten
                pull(parser.next_event, events, fed + 1)  # all but End consume bytes
            finally:
                _collect(events, outcome, body)
                events.clear()
            recv[:] = b"\xff" * len(recv)  # a parser that kept a view of it now reads garbage
        if eof:
            parser.feed_eof()
            try:
                pull(parser.next_event, events, 1)  # End, or an error
            finally:
                _collect(events, outcome, body)
    except H1ProtocolError as error:
        outcome.error = (error.errno_hint, error.reason)
    outcome.body = bytes(body)
    return outcome


def _collect(events: List[Event], outcome: Outcome, body: bytearray) -> None:
    for event in events:
        assert not outcome.ended, "an event after End: %r" % (event,)
        if isinstance(event, Head):
            assert outcome.head is None, "a second head"
            outcome.head = event
        elif isinstance(event, Data):
            assert outcome.head is not None and len(event.data), "empty or headless Data"
            body += event.data
        else:
            assert isinstance(event, End) and outcome.head is not None
            outcome.ended = True
