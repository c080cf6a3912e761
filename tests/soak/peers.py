"""The loopback peers of the soak: the test peers of `tests/peers`, a few more hostile scripts,
run in a process of their own (`PeerProcess`; `python -m tests.soak.peers` is that process).

Why: the campaign needs fast peers and misbehaving ones running side by side for minutes.
Everything is a peer from `tests/peers` (HTTPPeer, HostileServer, WSPeer, UDPPeer); this module
only adds scripts and a handler those peers run, and `trim()`, which drops what the peers
record about each request. In the campaign's own process, the thousands of connection threads
the peers start and end would swamp its memory figure (glibc keeps per-thread arenas and
stacks), which is meant to be ftcore's.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, cast

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from tests.peers import hostile
from tests.peers.hostile import HostileServer, Script, read_request, response_head
from tests.peers.http_app import pattern_bytes
from tests.peers.http_server import HTTPPeer
from tests.peers.udp import UDPPeer
from tests.peers.ws import WSPeer

SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"
LIAR_DECLARED = 10  # what the short-length liar declares; it sends more
DRIP_BODY = pattern_bytes(32)
DRIP_FAST_S = 0.003  # per byte: the whole answer takes about 0.4 s
DRIP_SLOW_S = 0.05  # per byte: about 6 s, past every timeout the campaign uses
PING_BURST = 16
FLOOD_PAUSE_S = 0.005
STARTUP_S = 30.0


class _UntilHangup:
    """Stands in for a script's release event: `wait()` without a timeout returns when the
    client hangs up (or the peer closes, which shuts the socket), not only at teardown.

    Why: the stalling scripts of `tests.peers.hostile` hold their thread and socket until the
    peer closes; over thousands of tasks they would pile up and swamp the leak figures.
    """

    def __init__(self, conn: socket.socket, release: threading.Event) -> None:
        self._conn = conn
        self._release = release

    def wait(self, timeout: Optional[float] = None) -> bool:
        if timeout is not None:
            return self._release.wait(timeout)
        while True:
            try:
                if not self._conn.recv(65536):
                    return True
            except OSError:
                return True

    def is_set(self) -> bool:
        return self._release.is_set()


def until_hangup(script: Script) -> Script:
    """`script`, whose stalls end when the client goes away."""

    def run(conn: socket.socket, release: threading.Event) -> None:
        script(conn, cast(threading.Event, _UntilHangup(conn, release)))

    return run


def lie_short_length() -> Script:
    """Declare a Content-Length shorter than the body, and make the excess a whole response:
    a client that reuses the connection and reads it as the next answer has desynchronised."""
    head = response_head(headers=[("Content-Length", str(LIAR_DECLARED))])
    return until_hangup(
        hostile.respond(head + pattern_bytes(LIAR_DECLARED) + SMUGGLED, then="wait")
    )


def drip(delay_s: float) -> Script:
    """Slowloris: read the request, then send a valid response one byte every `delay_s`."""
    headers = [("Content-Length", str(len(DRIP_BODY))), ("Connection", "close")]
    raw = response_head(headers=headers) + DRIP_BODY

    def script(conn: socket.socket, release: threading.Event) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not read_request(conn):
            return
        for index in range(len(raw)):
            if release.wait(delay_s):  # the pacing is the point of this peer
                return
            conn.sendall(raw[index : index + 1])  # OSError once the client gave up: ends us
        hostile.close_cleanly(conn)

    return script


def ping_flood(conn: ServerConnection, peer: WSPeer) -> None:
    """Send pings in bursts while echoing every message, until the client closes."""
    while True:
        try:
            for _ in range(PING_BURST):
                conn.ping()
            data = conn.recv(timeout=FLOOD_PAUSE_S)
        except TimeoutError:
            continue
        except ConnectionClosed:
            return
        try:
            conn.send(data)
        except ConnectionClosed:
            return


HTTP_SCRIPTS: Dict[str, Script] = {
    "stall": until_hangup(hostile.never_answer),
    "stall-mid-body": until_hangup(hostile.stall_mid_body),
    "reset-mid-body": hostile.reset_mid_body,
    "length-too-long": hostile.short_body,  # declares 1000, sends 10, closes
    "length-too-short": lie_short_length(),
    "no-response": hostile.close_without_response,
    "garbage-status": hostile.garbage_status_line,
    "bad-chunk": hostile.bad_chunk_size,
    "slowloris-ok": drip(DRIP_FAST_S),
    "slowloris-slow": drip(DRIP_SLOW_S),
}

WS_SCRIPTS: Dict[str, Script] = {
    "ws-stall": until_hangup(hostile.hold_open),
    "ws-bad-accept": until_hangup(hostile.ws_bad_accept),
    "ws-open-then-reset": hostile.ws_handshake_then(then="reset"),
    "ws-bad-utf8": until_hangup(hostile.ws_handshake_then(hostile.ws_frame(0x1, b"\xff\xfe"))),
}


class Peers:
    """Every peer of the campaign, started together (in the peer process).

    `http` (fast HTTP), `hostile[name]` (one HostileServer per script), `ws_echo`,
    `ws_flood`, `udp_echo`, and `udp_dead_port` (a UDP port nobody listens on).
    """

    def __init__(self) -> None:
        self._all: List[Any] = []
        self.http = self._add(HTTPPeer(name="soak-http"))
        self.hostile = {
            name: self._add(HostileServer(script))
            for name, script in {**HTTP_SCRIPTS, **WS_SCRIPTS}.items()
        }
        self.ws_echo = self._add(WSPeer("echo", compression=True))
        self.ws_flood = self._add(WSPeer(ping_flood, compression=False))
        self.udp_echo = self._add(UDPPeer("udp4", echo=True))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            self.udp_dead_port: int = probe.getsockname()[1]

    def _add(self, peer: Any) -> Any:
        self._all.append(peer)
        return peer

    def addresses(self) -> Dict[str, Any]:
        return {
            "http": self.http.url,
            "hostile": {name: [s.url.url, s.ws_url] for name, s in self.hostile.items()},
            "ws_echo": self.ws_echo.url,
            "ws_flood": self.ws_flood.url,
            "udp_echo_port": self.udp_echo.port,
            "udp_dead_port": self.udp_dead_port,
        }

    def trim(self) -> None:
        """Forget what the peers recorded so far (only their counters stay)."""
        self.http.clear_requests()
        for peer in (self.ws_echo, self.ws_flood):
            peer.handshakes.clear()
            _drain(peer.messages)
            _drain(peer.closes)
        self.udp_echo.datagrams.clear()
        _drain(self.udp_echo.received)

    def close(self) -> List[str]:
        """Stop every peer; return the failures (a peer thread that would not stop, a hostile
        script that raised) instead of raising the first one."""
        problems = []
        for peer in self._all:
            try:
                peer.close()
            except Exception as error:  # noqa: BLE001  (reported with the others)
                problems.append("%s: %r" % (type(peer).__name__, error))
        return problems


def _drain(items: "queue.Queue[Any]") -> None:
    while True:
        try:
            items.get_nowait()
        except queue.Empty:
            return


def serve() -> None:
    """The peer process: print the addresses as one JSON line, trim every second, and on
    "close" (or EOF) on stdin stop the peers and print their problems as one JSON line."""
    logging.getLogger("websockets").setLevel(logging.CRITICAL)  # a client hanging up mid-echo
    peers = Peers()
    print(json.dumps(peers.addresses()), flush=True)
    while not select.select([sys.stdin], [], [], 1.0)[0]:
        peers.trim()
    print(json.dumps(peers.close()), flush=True)


@dataclass
class Addresses:
    """Where the peers listen, as the campaign process sees them."""

    http: str
    hostile: Dict[str, List[str]]  # name -> [http URL, ws URL]
    ws_echo: str
    ws_flood: str
    udp_echo_port: int
    udp_dead_port: int

    def hostile_url(self, name: str, scheme: str = "http") -> str:
        return self.hostile[name][1 if scheme == "ws" else 0]


class PeerProcess:
    """Runs `serve()` in a child process, so the peers' threads, sockets and memory stay out
    of the figures of the campaign's process (whose RSS, fds and threads are ftcore's)."""

    def __init__(self) -> None:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self._child = subprocess.Popen(
            [sys.executable, "-m", "tests.soak.peers"],
            cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        try:
            self.addresses = Addresses(**json.loads(self._read_line()))
        except BaseException:
            self._child.kill()
            self._child.wait()
            self._release()
            raise

    def _read_line(self) -> str:
        stdout = self._child.stdout
        assert stdout is not None
        if not select.select([stdout], [], [], STARTUP_S)[0]:
            raise RuntimeError("the peer process did not start within %ds" % STARTUP_S)
        line = stdout.readline()
        if not line:
            raise RuntimeError("the peer process died (exit code %s)" % self._child.wait())
        return line

    def close(self) -> List[str]:
        """Stop the peers; return what went wrong there (empty: nothing)."""
        try:
            assert self._child.stdin is not None
            self._child.stdin.write("close\n")
            self._child.stdin.flush()
            problems: List[str] = json.loads(self._read_line())
            code = self._child.wait(STARTUP_S)
        except (OSError, ValueError, RuntimeError, subprocess.TimeoutExpired) as error:
            self._child.kill()
            self._child.wait()
            problems, code = ["the peer process failed to stop: %r" % error], 0
        finally:
            self._release()
        return problems + (["the peer process exited with %s" % code] if code else [])

    def _release(self) -> None:
        for pipe in (self._child.stdin, self._child.stdout):
            if pipe is not None:
                pipe.close()


if __name__ == "__main__":
    serve()
