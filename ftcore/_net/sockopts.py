"""Socket options, set in one place: TCP_NODELAY, keep-alive, SO_LINGER.

Every option is best effort: a platform without it (or a socket type that refuses it) keeps
the kernel's default rather than failing the connection.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Optional

__all__ = ["configure", "set_abortive", "KEEPALIVE_IDLE_S", "KEEPALIVE_INTERVAL_S"]

KEEPALIVE_IDLE_S = 60  # a silent peer is probed after this long...
KEEPALIVE_INTERVAL_S = 10  # ...every this long...
KEEPALIVE_PROBES = 5  # ...and given up after this many unanswered probes


def configure(sock: Any, nodelay: Optional[bool] = None, keepalive: Optional[bool] = None) -> None:
    """Apply the options that are not None (sockets of a stream layer connection)."""
    if nodelay is not None:
        _set(sock, socket.IPPROTO_TCP, socket.TCP_NODELAY, int(nodelay))
    if keepalive is not None:
        _set(sock, socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(keepalive))
        if keepalive:
            for name, value in (
                ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
                ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
                ("TCP_KEEPCNT", KEEPALIVE_PROBES),
            ):
                option = getattr(socket, name, None)
                if option is not None:
                    _set(sock, socket.IPPROTO_TCP, option, value)


def set_abortive(sock: Any) -> None:
    """SO_LINGER on with a zero timeout: closing sends RST and drops unsent data at once."""
    _set(sock, socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _set(sock: Any, level: int, option: int, value: Any) -> None:
    try:
        sock.setsockopt(level, option, value)
    except (OSError, ValueError):
        pass
