"""A keep-alive HTTP/1.1 peer that counts every byte and whose every move is scripted.

Why: the transport's reliability rules (exact profile byte counts, the retry after a stale
keep-alive connection, early answers to a request body) are about what crosses the wire and
when a connection closes. This peer reads each request byte-exactly (the head, then a
Content-Length body), records how many bytes it received and sent, and lets the test decide
what happens to each request, with no sleep racing the client:

* ``answer(response)``: read the body, then answer (``response`` bytes, or a function of the
  ``Seen`` record); the connection stays open for the next request.
* ``early(response, then, gate)``: answer as soon as the head arrived, then (once ``gate`` is
  set, if given: the test knows the client has seen the answer) ``"read"`` the whole body and
  keep the connection (nginx's ``return 200``), ``"close"``: stop sending (FIN), read until the
  client goes away (a lingering close), close; or ``"reset"``: close at once with RST.
* ``drop(how)``: no answer at all: ``"eof"`` reads the whole request, then closes (FIN);
  ``"reset"`` closes at once with RST (SO_LINGER 0).
* ``cut(raw)``: read the body, send ``raw`` (e.g. only a status line), then RST.
* ``silent()``: read the request and never answer (until the peer closes).

``expire_idle(how)`` plays a keep-alive timeout firing: every connection open at that moment
closes as its next request arrives, unanswered, as when the server's close and the request
cross on the wire. ``keep_bodies`` keeps each request body in ``Seen.body``; ``tls`` (a server
``SSLContext``) serves https. Built on ``hostile.HostileServer``: one thread per connection,
all joined at close.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

from tests.peers.hostile import HostileServer, close_cleanly, request_header, response_head
from tests.peers.lifecycle import reset_close

MAX_HEAD = 1 << 20
READ_SIZE = 256 * 1024


@dataclass
class Seen:
    """One request as the peer saw it, and what the peer did with it."""

    connection: int  # 1 for the first connection accepted
    index: int  # 1 for the first request on its connection
    head: bytes  # the request line and headers, up to and including the blank line
    body_received: int = 0
    body_sha256: str = ""
    body: bytes = b""  # with ``keep_bodies``
    sent: int = 0  # response bytes written
    outcome: str = ""  # "answered", "eof", "reset", "cut", "silent"; "" while in progress

    @property
    def method(self) -> str:
        return self.head.split(b" ", 1)[0].decode("latin-1")

    @property
    def target(self) -> str:
        return self.head.split(b" ", 2)[1].decode("latin-1")

    @property
    def received(self) -> int:
        """Every request byte that arrived: head and body."""
        return len(self.head) + self.body_received

    def header(self, name: str) -> Optional[str]:
        return request_header(self.head, name)


Response = Union[bytes, Callable[[Seen], bytes]]


@dataclass
class Move:
    kind: str  # "answer", "early", "drop", "cut", "silent"
    response: Response = b""
    then: str = ""
    gate: Optional[threading.Event] = None


def answer(response: Optional[Response] = None) -> Move:
    return Move("answer", report if response is None else response)


def early(response: Response, then: str = "read", gate: Optional[threading.Event] = None) -> Move:
    assert then in ("read", "close", "reset")
    return Move("early", response, then, gate)


def drop(how: str = "eof") -> Move:
    assert how in ("eof", "reset")
    return Move("drop", then=how)


def cut(raw: bytes) -> Move:
    return Move("cut", raw)


def silent() -> Move:
    return Move("silent")


Plan = Callable[[Seen], Move]


# -- responses ----------------------------------------------------------------------------------


def response(
    status: int = 200,
    body: bytes = b"",
    headers: Sequence[Tuple[str, str]] = (),
    chunks: int = 0,
) -> bytes:
    """A whole response: Content-Length framing, or chunked in ``chunks`` pieces."""
    fields = list(headers)
    if chunks:
        fields.append(("Transfer-Encoding", "chunked"))
        size = -(-len(body) // chunks)
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        return response_head(status, _reason(status), fields) + framed
    fields.append(("Content-Length", str(len(body))))
    return response_head(status, _reason(status), fields) + body


def gzip_response(plain: bytes) -> bytes:
    """A 200 whose body is ``plain`` gzip-encoded (Content-Encoding: gzip)."""
    encoded = gzip.compress(plain, mtime=0)
    return response(200, encoded, [("Content-Encoding", "gzip")])


def report(seen: Seen) -> bytes:
    """The default answer: JSON of what arrived (connection, body size and digest); only its
    head for a HEAD request."""
    data = {
        "connection": seen.connection,
        "index": seen.index,
        "method": seen.method,
        "received": seen.body_received,
        "sha256": seen.body_sha256,
    }
    raw = response(200, json.dumps(data).encode(), [("Content-Type", "application/json")])
    if seen.method == "HEAD":
        return raw[: raw.index(b"\r\n\r\n") + 4]
    return raw


def _reason(status: int) -> str:
    return {200: "OK", 413: "Payload Too Large"}.get(status, "Status")


# -- the peer ---------------------------------------------------------------------------------


class ScriptedPeer:
    """``plan(seen) -> Move`` decides, at each request head, what the peer does.

    ``url``; ``seen`` every request (append-only; read under ``lock`` or with ``wait_done``);
    ``accepted`` connections so far.
    """

    def __init__(
        self,
        plan: Plan = lambda seen: answer(),
        keep_bodies: bool = False,
        tls: Optional[ssl.SSLContext] = None,
    ) -> None:
        self.plan = plan
        self.keep_bodies = keep_bodies
        self.tls = tls
        self.lock = threading.Condition()
        self.seen: List[Seen] = []
        self._connections = 0
        self._expired: Tuple[int, str] = (0, "")  # connections up to this number close
        self._server = HostileServer(self._serve, scheme="https" if tls else "http")
        self.url = self._server.url.url
        self.port = self._server.port

    @property
    def accepted(self) -> int:
        return self._server.accepted

    def expire_idle(self, how: str = "eof") -> None:
        """The keep-alive timeout fires now: each open connection closes (``how``: "eof"
        or "reset") as its next request arrives, unanswered."""
        assert how in ("eof", "reset")
        with self.lock:
            self._expired = (self._connections, how)

    def wait_done(self, count: int, timeout: float = 10.0) -> List[Seen]:
        """Block until ``count`` requests were fully handled; return every record."""

        def handled() -> bool:
            return sum(1 for seen in self.seen if seen.outcome) >= count

        with self.lock:
            assert self.lock.wait_for(handled, timeout), "the peer handled %s" % self.seen
            return list(self.seen)

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> ScriptedPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one connection -----------------------------------------------------------------------

    def _serve(self, conn: socket.socket, release: threading.Event) -> None:
        if self.tls is None:
            self._converse(conn, release)
            return
        # a second descriptor: `conn` stays the server's to shut down at close (waking a read)
        with self.tls.wrap_socket(
            conn.dup(), server_side=True, do_handshake_on_connect=False
        ) as wrapped:
            try:
                wrapped.do_handshake()
            except (OSError, ssl.SSLError):
                return
            self._converse(wrapped, release)

    def _converse(self, conn: socket.socket, release: threading.Event) -> None:
        with self.lock:
            self._connections += 1
            number = self._connections
        buffer = b""
        index = 0
        while True:
            head, buffer = _read_head(conn, buffer)
            if not head:
                return  # the client closed the connection (or never sent a whole head)
            index += 1
            seen = Seen(number, index, head)
            with self.lock:
                self.seen.append(seen)
                expired_upto, how = self._expired
            move = drop(how) if number <= expired_upto else self.plan(seen)
            if not self._play(conn, release, seen, move, buffer):
                return
            buffer = b""

    def _play(
        self, conn: socket.socket, release: threading.Event, seen: Seen, move: Move, rest: bytes
    ) -> bool:
        """Carry out ``move``; True when the connection stays open for another request."""
        length = int(seen.header("Content-Length") or 0)
        keep = self.keep_bodies
        if move.kind == "early":
            self._send(conn, seen, move.response)
            if move.gate is not None:
                _wait_either(move.gate, release)
            if move.then == "reset":
                reset_close(conn)
                self._done(seen, "reset")
                return False
            if move.then == "close":
                socket.socket.shutdown(conn, socket.SHUT_WR)  # a plain FIN, even under TLS
                _read_body(conn, seen, rest, None, keep)
                self._done(seen, "answered")
                return False
            _read_body(conn, seen, rest, length, keep)
            self._done(seen, "answered")
            return True
        if move.kind == "drop" and move.then == "reset":
            reset_close(conn)
            self._done(seen, "reset")
            return False
        _read_body(conn, seen, rest, length, keep)
        if move.kind == "answer":
            self._send(conn, seen, move.response)
            self._done(seen, "answered")
            return True
        if move.kind == "drop":
            close_cleanly(conn)
            self._done(seen, "eof")
        elif move.kind == "cut":
            self._send(conn, seen, move.response)
            reset_close(conn)
            self._done(seen, "cut")
        else:
            self._done(seen, "silent")
            release.wait()
        return False

    def _send(self, conn: socket.socket, seen: Seen, reply: Response) -> None:
        raw = reply(seen) if callable(reply) else reply
        conn.sendall(raw)
        seen.sent += len(raw)

    def _done(self, seen: Seen, outcome: str) -> None:
        with self.lock:
            seen.outcome = outcome
            self.lock.notify_all()


def _wait_either(gate: threading.Event, release: threading.Event) -> None:
    """Until the test opens ``gate`` or the peer closes (each wait bounded by the other)."""
    while not (gate.wait(0.05) or release.is_set()):
        pass


def _read_head(conn: socket.socket, buffer: bytes) -> Tuple[bytes, bytes]:
    """(head, bytes after it); (b"", ...) when the connection ends before a whole head."""
    while b"\r\n\r\n" not in buffer:
        try:
            piece = conn.recv(65536)
        except OSError:
            return b"", b""
        if not piece or len(buffer) > MAX_HEAD:
            return b"", b""
        buffer += piece
    end = buffer.index(b"\r\n\r\n") + 4
    return buffer[:end], buffer[end:]


def _read_body(
    conn: socket.socket, seen: Seen, rest: bytes, length: Optional[int], keep: bool
) -> None:
    """Read ``length`` body bytes (None: until EOF), counting and hashing them into ``seen``
    (and keeping them with ``keep``)."""
    first = rest[:length] if length is not None else rest
    digest = hashlib.sha256(first)
    pieces = [first]
    seen.body_received = len(first)
    while length is None or seen.body_received < length:
        want = READ_SIZE if length is None else min(READ_SIZE, length - seen.body_received)
        try:
            piece = conn.recv(want)
        except OSError:
            break
        if not piece:
            break
        digest.update(piece)
        if keep:
            pieces.append(piece)
        seen.body_received += len(piece)
    seen.body_sha256 = digest.hexdigest()
    if keep:
        seen.body = b"".join(pieces)

