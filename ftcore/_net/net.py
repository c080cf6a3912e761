"""`Net`: the stream layer of one runtime (its loop, read buffer, TLS contexts and resolver).

Every transport of a runtime dials and streams through the same `Net`, so TLS contexts are
made once per settings per runtime, one read buffer serves every connection, and closing the
runtime ends every dial and connection that a transport left behind.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Dict, Optional, Set

from .dial import Dial, DialResult
from .resolver import GetAddrInfo, Resolver
from .stream import Stream, StreamHandler
from .tls import TlsContexts
from .._log import logger

__all__ = ["Net", "READ_BUFFER_BYTES"]


READ_BUFFER_BYTES = 256 * 1024
RESOLVER_JOIN_S = 2.0


class Net:
    """Made by the runtime (`runtime.net`) on first use; dials and streams live on its loop."""

    def __init__(
        self,
        loop: Any,
        getaddrinfo: Optional[GetAddrInfo] = None,
        read_buffer_bytes: int = READ_BUFFER_BYTES,
    ) -> None:
        self.loop = loop
        self.buffer = bytearray(read_buffer_bytes)  # loop thread only: one read at a time
        self.view = memoryview(self.buffer)
        self.tls = TlsContexts()
        self.resolver = Resolver(loop, getaddrinfo)
        self._dials: Set[Dial] = set()
        self._streams: Set[Stream] = set()
        self._closed = False

    def dial(
        self, host: str, port: int, done: Callable[[DialResult], None], **options: Any
    ) -> Dial:
        """Start connecting to `host`:`port` (see `Dial` for the options); loop thread."""
        if self._closed:
            raise RuntimeError("the stream layer is closed")
        dial = Dial(self, host, port, done, **options)
        self._dials.add(dial)
        dial.start()
        return dial

    def stream(self, sock: Any, handler: StreamHandler, **options: Any) -> Stream:
        """Drive the connected `sock` (from a `Connected`); reading starts at once."""
        if self._closed:
            raise RuntimeError("the stream layer is closed")
        stream = Stream(self, sock, handler, **options)
        self._streams.add(stream)
        stream.resume_reading()
        return stream

    def _forget_dial(self, dial: Dial) -> None:
        self._dials.discard(dial)

    def _forget_stream(self, stream: Stream) -> None:
        self._streams.discard(stream)

    def live(self) -> Dict[str, int]:
        """What the layer still holds (leak checks): dials, streams, pending lookups."""
        return {
            "dials": len(self._dials),
            "streams": len(self._streams),
            "lookups": self.resolver.pending(),
        }

    def close(self, timeout: float = RESOLVER_JOIN_S) -> None:
        """End every dial and connection still held, and wait (bounded) for resolver workers.
        Called once the loop has stopped (or from its thread)."""
        self._closed = True
        for dial in list(self._dials):
            dial.cancel()
        for stream in list(self._streams):
            stream.close_now()
        alive = self.resolver.close(timeout)
        if alive:
            logger.warning("ftcore: name lookups still running at close: %d", len(alive))


def family_name(family: int) -> str:
    """"IPv4" or "IPv6", as the mini-program API spells a socket's family."""
    return "IPv6" if family == socket.AF_INET6 else "IPv4"
