"""A scripted raw-socket TCP server for misbehaving-peer tests.

Why: a real HTTP server is too polite to test timeouts, resets and lies about
lengths. Like urllib3's dummyserver, a test hands over a *script*
``script(conn, release)`` that plays one accepted connection byte by byte.
A script that stalls must wait on ``release`` (set at teardown), never sleep.

Ready-made scripts: ``never_answer``, ``hold_open``, ``stall_mid_body``,
``reset_mid_body``, ``short_body``, ``huge_headers``, ``close_without_response``,
``garbage_status_line``, ``bad_chunk_size``, ``ws_bad_accept``; factories:
``redirect_to(url)``, ``respond(raw)``, ``make_huge_headers(...)``,
``ws_handshake_then(frames)`` (with ``ws_frame`` to build frames).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import threading
from typing import Callable, List, Optional, Sequence, Tuple

from tests.peers.http_app import pattern_bytes
from tests.peers.lifecycle import SelectLoop, Tracker, reset_close

Script = Callable[[socket.socket, threading.Event], None]

MAX_HEAD = 1 << 20
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# --- helpers for scripts -------------------------------------------------------------


def read_request(conn: socket.socket) -> bytes:
    """Read one request head (and a Content-Length body); return the head, b"" on EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return b""
        data += piece
        if len(data) > MAX_HEAD:
            return data
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or b"0")
    while len(rest) < length:
        piece = conn.recv(65536)
        if not piece:
            break
        rest += piece
    return head + b"\r\n\r\n"


def request_header(head: bytes, name: str) -> Optional[str]:
    """Value of a header in a raw request head, case-insensitively."""
    wanted = name.lower().encode("latin-1")
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == wanted:
            return value.strip().decode("latin-1")
    return None


def response_head(
    status: int = 200, reason: str = "OK", headers: Sequence[Tuple[str, str]] = ()
) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def close_cleanly(conn: socket.socket) -> None:
    """FIN, not RST: the request was read in full, so nothing unread is left behind."""
    try:
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    conn.close()


# --- ready-made scripts ------------------------------------------------------------------


def never_answer(conn: socket.socket, release: threading.Event) -> None:
    """Read the request, then say nothing until released (response timeout)."""
    read_request(conn)
    release.wait()


def hold_open(conn: socket.socket, release: threading.Event) -> None:
    """Accept and read nothing at all (TLS or WebSocket handshake timeout)."""
    release.wait()


def stall_mid_body(conn: socket.socket, release: threading.Event) -> None:
    """Promise 1000 bytes, send 100, then stall until released."""
    read_request(conn)
    conn.sendall(response_head(headers=[("Content-Length", "1000")]) + pattern_bytes(100))
    release.wait()


def reset_mid_body(conn: socket.socket, release: threading.Event) -> None:
    """Promise 1000 bytes, send 100, then close with RST (SO_LINGER 0)."""
    read_request(conn)
    conn.sendall(response_head(headers=[("Content-Length", "1000")]) + pattern_bytes(100))
    reset_close(conn)


def short_body(conn: socket.socket, release: threading.Event) -> None:
    """Promise 1000 bytes, send 10, close cleanly: the body is truncated."""
    read_request(conn)
    conn.sendall(response_head(headers=[("Content-Length", "1000")]) + pattern_bytes(10))
    close_cleanly(conn)


def make_huge_headers(total: int = 1 << 20, finish: bool = False) -> Script:
    """A script sending ``total`` bytes of header lines; ``finish`` ends the block
    (with Content-Length 0), otherwise it then stalls with the block still open."""

    def huge_headers(conn: socket.socket, release: threading.Event) -> None:
        read_request(conn)
        line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        block = b"HTTP/1.1 200 OK\r\n" + line * (total // len(line) + 1)
        conn.sendall(block)
        if finish:
            conn.sendall(b"Content-Length: 0\r\n\r\n")
            close_cleanly(conn)
        else:
            release.wait()

    return huge_headers


huge_headers = make_huge_headers()


def close_without_response(conn: socket.socket, release: threading.Event) -> None:
    """Read the request and close cleanly without a byte of response."""
    read_request(conn)
    close_cleanly(conn)


def garbage_status_line(conn: socket.socket, release: threading.Event) -> None:
    """Answer with a status line that is not HTTP, then close."""
    read_request(conn)
    conn.sendall(b"HTPT/1.1 banana split\r\nContent-Length: 0\r\n\r\n")
    close_cleanly(conn)


def respond(raw: bytes, then: str = "close") -> Script:
    """A script that reads the request, sends ``raw`` verbatim, then ``then``:
    "close" (FIN), "reset" (RST) or "wait" (stall until released)."""

    def script(conn: socket.socket, release: threading.Event) -> None:
        read_request(conn)
        conn.sendall(raw)
        if then == "reset":
            reset_close(conn)
        elif then == "wait":
            release.wait()
        else:
            close_cleanly(conn)

    return script


bad_chunk_size = respond(
    response_head(headers=[("Transfer-Encoding", "chunked")]) + b"zz\r\nhello\r\n0\r\n\r\n"
)
bad_chunk_size.__doc__ = "Chunked body whose first chunk size is not hex."


def redirect_to(url: str, code: int = 302) -> Script:
    """Answer every request with a ``code`` redirect to ``url`` and close."""
    head = response_head(
        code, "Redirect", [("Location", url), ("Content-Length", "0"), ("Connection", "close")]
    )
    return respond(head)


# --- WebSocket-level hostility ------------------------------------------------------------


def ws_accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value RFC 6455 requires for ``key``."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode("ascii")).digest()).decode()


def ws_frame(
    opcode: int, payload: bytes = b"", fin: bool = True, rsv1: bool = False, mask: bool = False
) -> bytes:
    """One raw frame; servers must not mask, so ``mask=True`` is itself an error."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    size = len(payload)
    mask_bit = 0x80 if mask else 0
    if size < 126:
        header = struct.pack("!BB", first, mask_bit | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not mask:
        return header + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + masked


def ws_handshake_then(
    frames: bytes = b"",
    then: str = "wait",
    accept: Optional[str] = None,
    extra_headers: Sequence[Tuple[str, str]] = (),
) -> Script:
    """Complete a WebSocket handshake by hand, send raw ``frames``, then ``then``
    ("wait", "close" or "reset"). ``accept`` overrides the computed accept key."""

    def script(conn: socket.socket, release: threading.Event) -> None:
        head = read_request(conn)
        key = request_header(head, "Sec-WebSocket-Key") or ""
        headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept if accept is not None else ws_accept_key(key)),
        ] + list(extra_headers)
        conn.sendall(response_head(101, "Switching Protocols", headers) + frames)
        if then == "reset":
            reset_close(conn)
        elif then == "close":
            close_cleanly(conn)
        else:
            release.wait()

    return script


ws_bad_accept = ws_handshake_then(accept="d3JvbmcgYWNjZXB0IGtleQ==")
ws_bad_accept.__doc__ = "Answer the upgrade with a wrong Sec-WebSocket-Accept."


# --- the server -------------------------------------------------------------------------


class ServerURL(str):
    """The URL of a hostile server; a plain ``str`` that also carries ``.server``."""

    server: HostileServer

    def __new__(cls, url: str, server: HostileServer) -> ServerURL:
        self = super().__new__(cls, url)
        self.server = server
        return self

    @property
    def url(self) -> str:
        return str.__str__(self)


class HostileServer:
    """Runs ``script`` on each accepted connection, in its own thread.

    ``url`` ("http://127.0.0.1:PORT", a ``ServerURL``), ``ws_url`` (the same
    server as "ws://..."), ``accepted`` counts connections, ``errors`` collects
    exceptions a script raised other than socket errors (``close`` re-raises
    the first one).
    """

    def __init__(self, script: Script, host: str = "127.0.0.1", scheme: str = "http") -> None:
        self.script = script
        self.release = threading.Event()
        self.errors: List[BaseException] = []
        self.accepted = 0
        self._cond = threading.Condition()
        self._tracker = Tracker("hostile")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.bind((host, 0))
        listener.listen(64)
        listener.setblocking(False)
        self.host = host
        self.port: int = listener.getsockname()[1]
        authority = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.url = ServerURL(f"{scheme}://{authority}", self)
        self.ws_url = f"ws://{authority}"
        self._listener = listener
        self._loop: Optional[SelectLoop] = SelectLoop(
            listener, self._accept, self._tracker, "accept"
        )

    def wait_accepted(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` connections were accepted; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.accepted >= count, timeout)

    def close(self) -> None:
        if self._loop is None:
            return
        self.release.set()
        self._loop.stop()
        self._loop = None
        alive = self._tracker.close()
        if alive:
            raise RuntimeError(f"hostile script threads did not stop: {alive}")
        if self.errors:
            raise self.errors[0]

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        conn, _ = self._listener.accept()
        with self._cond:
            self.accepted += 1
            self._cond.notify_all()
        if self._tracker.add_socket(conn):
            self._tracker.spawn("script", self._run, conn)
        else:
            conn.close()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.script(conn, self.release)
        except OSError:
            pass
        except Exception as exc:  # noqa: BLE001  (a broken script: surfaced at close)
            self.errors.append(exc)
        finally:
            conn.close()
            self._tracker.discard_socket(conn)
