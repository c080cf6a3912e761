"""The stream layer: one connection from the name to the last byte, on the runtime's loop.

    net = runtime.net                                   # one `Net` per runtime
    dial = net.dial(host, port, done, tls=settings)     # resolve, race addresses, TLS
    stream = net.stream(connected.sock, handler)        # read pump, buffered writer, close

Stdlib only. Transports (HTTP, TCP, WebSocket) are adapters between a codec and this layer; see
`dial`, `stream`, `tls`, `resolver`, `addresses` and `sockopts` for the rules of each step.
"""

from __future__ import annotations

from .addresses import interleave, ip_family, strip_brackets
from .dial import ATTEMPT_TIMEOUT_S, STAGGER_S, Connected, Dial, DialError, DialResult
from .net import Net, family_name
from .stream import (
    HIGH_WATER,
    LOW_WATER,
    FileEnded,
    FileError,
    FileRegion,
    Stream,
    StreamClosed,
    StreamHandler,
)
from .tls import TlsContexts

__all__ = [
    "Net",
    "Dial",
    "DialError",
    "DialResult",
    "Connected",
    "Stream",
    "StreamHandler",
    "StreamClosed",
    "FileRegion",
    "FileError",
    "FileEnded",
    "TlsContexts",
    "HIGH_WATER",
    "LOW_WATER",
    "STAGGER_S",
    "ATTEMPT_TIMEOUT_S",
    "family_name",
    "interleave",
    "ip_family",
    "strip_brackets",
]
