"""Helpers for the WebSocket tests: the listener names of a SocketTask, an unused port."""

from __future__ import annotations

import socket
from tests.support.recorder import Recorder  # noqa: F401  (the shared one)
from tests.support.waits import WAIT  # noqa: F401


SOCKET_EVENTS = ("Open", "Message", "Error", "Close")  # a SocketTask's listeners

def refused_url() -> str:
    """A ws:// URL on a loopback port that nothing listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "ws://127.0.0.1:%d/" % port
