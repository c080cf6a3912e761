"""Helpers for the UDP tests: socket event queues, a loop barrier and a runtime fixture.

No test sleeps to synchronise: events are awaited on queues with timeouts, and "nothing else
happened" is checked after a loop barrier (a callback queued behind everything pending).
"""

from __future__ import annotations

import socket
from typing import Any


from tests.support.events import EventQueue

LOOP_THREAD = "ftcore-loop"
HOSTS = {"udp4": "127.0.0.1", "udp6": "::1"}
FAMILY_NAMES = {"udp4": "IPv4", "udp6": "IPv6"}
NAMES = ("Listening", "Message", "Error", "Close")


def listen(sock: Any) -> EventQueue:
    """The events of a UDPSocket, in order."""
    return EventQueue().listen(sock, NAMES)


def free_port(family: str = "udp4") -> int:
    """A UDP port that nothing listens on (bound then released)."""
    af = socket.AF_INET6 if family == "udp6" else socket.AF_INET
    with socket.socket(af, socket.SOCK_DGRAM) as probe:
        probe.bind((HOSTS[family], 0))
        return int(probe.getsockname()[1])


def open_fds() -> int:
    from tests.peers.lifecycle import open_fd_count

    return open_fd_count()
