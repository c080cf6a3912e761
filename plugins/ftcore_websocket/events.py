"""Events that `Connection.events()` yields: what happened on the wire, one object each.

Messages are whole: the codec reassembles fragments, inflates and validates UTF-8 before it
yields one `TextMessage` or `BinaryMessage`. The dataclasses are frozen and slotted (declared by
hand, since `dataclass(slots=True)` needs Python 3.10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

Headers = Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class HandshakeRequest:
    """Server side: a valid upgrade request arrived; answer with `accept()` or `reject()`."""

    __slots__ = ("target", "headers", "subprotocols", "extensions")
    target: str
    headers: Headers
    subprotocols: Tuple[str, ...]
    extensions: str  # the Sec-WebSocket-Extensions offer as received ("" when none)


@dataclass(frozen=True)
class HandshakeAccepted:
    """Client side: the server's 101 was valid; the connection is open."""

    __slots__ = ("headers", "subprotocol", "extensions")
    headers: Headers
    subprotocol: Optional[str]
    extensions: str  # the negotiated Sec-WebSocket-Extensions value ("" when none)


@dataclass(frozen=True)
class HandshakeRejected:
    """The opening handshake failed; the connection is closed and no frame was exchanged.

    Client side: the server's answer was not a valid 101 (`status_code` is the status received,
    None when no status line could be read). Server side: the request was not a valid upgrade
    and a 4xx answer with that `status_code` is waiting in `data_to_send()`.
    """

    __slots__ = ("status_code", "headers", "reason")
    status_code: Optional[int]
    headers: Headers
    reason: str


@dataclass(frozen=True)
class TextMessage:
    """A whole text message."""

    __slots__ = ("data",)
    data: str


@dataclass(frozen=True)
class BinaryMessage:
    """A whole binary message."""

    __slots__ = ("data",)
    data: bytes


@dataclass(frozen=True)
class Ping:
    """The peer pinged; the connection has already queued the pong."""

    __slots__ = ("payload",)
    payload: bytes


@dataclass(frozen=True)
class Pong:
    """The peer sent a pong (solicited or not)."""

    __slots__ = ("payload",)
    payload: bytes


@dataclass(frozen=True)
class CloseReceived:
    """The peer's close frame arrived (1005 when it had no code); the connection is closed.

    When the peer closed first, our echo is waiting in `data_to_send()`.
    """

    __slots__ = ("code", "reason")
    code: int
    reason: str


@dataclass(frozen=True)
class ConnectionFailed:
    """The connection ended without a closing handshake.

    `code` is the one of the close frame we queued when we failed the connection because the
    peer broke the protocol (1002, 1007 bad UTF-8, 1009 too big), or 1006 when the peer
    vanished (EOF) and nothing was sent.
    """

    __slots__ = ("code", "reason")
    code: int
    reason: str


Event = Union[
    HandshakeRequest,
    HandshakeAccepted,
    HandshakeRejected,
    TextMessage,
    BinaryMessage,
    Ping,
    Pong,
    CloseReceived,
    ConnectionFailed,
]
