"""Peers shared by a module of re-entrancy cells: each cell makes its own runtime, never a peer."""

from __future__ import annotations

import socket
import threading
from typing import Any, Iterator

import pytest

from tests.peers.hostile import HostileServer
from tests.peers.udp import UDPPeer
from tests.peers.ws import WSPeer, send_on_open
from tests.reentrancy.matrix import PEER_MESSAGES, Peers


@pytest.fixture(scope="module")
def peers(http_server: Any) -> Iterator[Peers]:
    """The HTTP peer, a WebSocket peer that greets with `PEER_MESSAGES` then echoes, a UDP echo,
    a TCP echo, and a port that refuses connections: bound, never listening, held for the
    module (so no other process can take it meanwhile)."""
    with WSPeer(send_on_open(PEER_MESSAGES), compression=False) as ws, UDPPeer("udp4") as udp:
        with HostileServer(_tcp_echo) as tcp, socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            yield Peers(
                http=http_server.url,
                ws=ws.url,
                udp=(udp.address, udp.port),
                tcp=tcp.port,
                refused=closed.getsockname()[1],
            )


def _tcp_echo(conn: socket.socket, release: threading.Event) -> None:
    """Send back what arrives until the client closes (the peer's teardown shuts it down)."""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)
