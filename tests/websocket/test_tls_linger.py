"""wss:// closing when a TLS record reaches the client in two TCP segments.

The server here speaks TLS by hand (`ssl.SSLObject` over memory BIOs on a raw socket), so the
test chooses where the encrypted bytes are cut: the first half of a record, a pause, then the
rest. A client that took the half record for the end of the stream would hang up during the
pause. Two places read such a record: the TLS read path while our close waits for the
server's (CLOSING), and the linger after the close handshake, which waits for the server to
end TCP (here with its close_notify alert).
"""

from __future__ import annotations

import queue
import select
import socket
import ssl
import struct
import threading
from typing import Any, Dict, Iterator

import pytest

import ftcore
from tests.peers import hostile
from tests.peers.tls import TLSMaterial
from tests.websocket.support import SOCKET_EVENTS, Recorder

pytestmark = pytest.mark.timeout(30)

PAUSE_S = 0.05  # between the halves of a record: ages for a client reading at once
HANG_UP_S = 3.0  # well within the client's 5 s close timeout
CLOSE = 0x8


class HandTLS:
    """Server-side TLS over a plain socket: decrypted reads, encrypted bytes on demand."""

    def __init__(self, conn: socket.socket, context: ssl.SSLContext) -> None:
        self.conn = conn
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.buffered = b""

    def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
        self._flush()

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffered) < size:
            self._read_some()
        data, self.buffered = self.buffered[:size], self.buffered[size:]
        return data

    def read_until(self, end: bytes) -> bytes:
        while end not in self.buffered:
            self._read_some()
        data, _, self.buffered = self.buffered.partition(end)
        return data + end

    def send(self, data: bytes) -> None:
        self.conn.sendall(self.encrypt(data))

    def encrypt(self, data: bytes) -> bytes:
        """`data` as TLS records, not yet sent."""
        self.tls.write(data)
        return self.outgoing.read()

    def close_notify(self) -> bytes:
        """The close_notify alert record, not yet sent."""
        try:
            self.tls.unwrap()
        except ssl.SSLWantReadError:  # it would wait for the client's alert: we do not
            pass
        return self.outgoing.read()

    def _read_some(self) -> None:
        while True:
            try:
                self.buffered += self.tls.read(65536)
                return
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()

    def _fill(self) -> None:
        data = self.conn.recv(65536)
        if not data:
            raise ConnectionResetError("the client closed during the exchange")
        self.incoming.write(data)

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.conn.sendall(data)


def hung_up(conn: socket.socket, within: float) -> bool:
    """Did the client end TCP within `within` seconds? (It has nothing else left to send.)"""
    readable, _, _ = select.select([conn], [], [], within)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except ConnectionError:
        return True


def send_split(conn: socket.socket, record: bytes) -> bool:
    """Send `record` in two TCP writes with a pause; True if the client hung up in between."""
    half = len(record) // 2
    conn.sendall(record[:half])
    early = hung_up(conn, PAUSE_S)
    if not early:
        conn.sendall(record[half:])
    return early


def read_client_frame(tls: HandTLS) -> Dict[str, Any]:
    """One masked client frame (payloads under 126 bytes)."""
    first, second = tls.read_exactly(2)
    size = second & 0x7F
    assert second & 0x80 and size < 126, "an unmasked or long client frame"
    key = tls.read_exactly(4)
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(tls.read_exactly(size)))
    return {"opcode": first & 0x0F, "payload": payload}


def split_close_server(context: ssl.SSLContext, seen: "queue.Queue[Dict[str, Any]]") -> Any:
    """Accept the upgrade, wait for the client's close, then answer 1000 "done" and end TLS,
    each record cut in two."""

    def script(conn: socket.socket, release: threading.Event) -> None:
        tls = HandTLS(conn, context)
        tls.handshake()
        head = tls.read_until(b"\r\n\r\n")
        key = hostile.request_header(head, "Sec-WebSocket-Key") or ""
        accept = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", hostile.ws_accept_key(key)),
        ]
        tls.send(hostile.response_head(101, "Switching Protocols", accept))
        result: Dict[str, Any] = {"client_close": read_client_frame(tls)}
        close = hostile.ws_frame(CLOSE, struct.pack("!H", 1000) + b"done")
        result["hung_up_during_close"] = send_split(conn, tls.encrypt(close))
        if not result["hung_up_during_close"]:
            result["hung_up_during_linger"] = send_split(conn, tls.close_notify())
            result["hung_up_after"] = hung_up(conn, HANG_UP_S)
        seen.put(result)

    return script


@pytest.fixture
def rt(tls_material: TLSMaterial) -> Iterator[ftcore.Runtime]:
    runtime = ftcore.Runtime(config={"tls": {"cafile": tls_material.cafile}})
    yield runtime
    runtime.close()


def test_split_records_at_close_neither_fail_the_close_nor_cut_the_linger(
    rt: Any, hostile_server: Any, tls_material: TLSMaterial
) -> None:
    seen: "queue.Queue[Dict[str, Any]]" = queue.Queue()
    context = tls_material.server_context(alpn=())
    url = hostile_server(split_close_server(context, seen)).replace("http://", "wss://")
    rec = Recorder()
    task = rt.connectSocket(url=url)
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_name("Open")
    task.close({"code": 4000, "reason": "bye"})
    assert rec.wait_name("Close") == {"code": 1000, "reason": "done"}  # the server's, not 1006
    assert rec.count("Error") == 0
    assert task.state is ftcore.State.SUCCEEDED
    assert seen.get(timeout=10) == {
        "client_close": {"opcode": CLOSE, "payload": struct.pack("!H", 4000) + b"bye"},
        "hung_up_during_close": False,
        "hung_up_during_linger": False,  # half an alert is not the end of the stream
        "hung_up_after": True,  # the whole alert ends the linger at once, not the timeout
    }
