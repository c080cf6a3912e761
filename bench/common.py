"""Process, pinning and loopback-server helpers the bench scripts share.

Import it after the script's sys.path preamble (bench/ off sys.path, the repository on it).
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from typing import List, Optional, Tuple


def pinned(cpu: int) -> List[str]:
    """`taskset -c cpu` where taskset exists and there are two CPUs or more (else nothing:
    with one CPU there is nothing to choose)."""
    two = shutil.which("taskset") and (os.cpu_count() or 1) > 1
    return ["taskset", "-c", str(cpu)] if two else []


def free_port() -> int:
    """A loopback TCP port nothing listens on now, for a server process to bind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> bool:
    """Whether a server accepts on the loopback `port` within `timeout` seconds (polling a
    server process's start-up: there is nothing to wait on instead)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def read_head(conn: socket.socket, buffer: bytes) -> Optional[Tuple[bytes, bytes]]:
    """A request's head read from `conn` after what `buffer` already holds: (head, the bytes
    after it), or None when the peer closed first."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head, rest
