"""Errors of the WebSocket codec, split by fault under one root, as in h11.

Each kind carries the hint its adapter needs, so nobody reads the message to decide anything:
`LocalProtocolError` (the caller misused the API) names what was wrong in `misuse`;
`RemoteProtocolError` (the peer broke the protocol) carries the `close_code` the connection
fails with, and `HandshakeError` the HTTP status a server answers a bad upgrade request with.
The codec catches the remote kind itself and turns it into a `ConnectionFailed` or
`HandshakeRejected` event: callers only ever see the local kind raised.
"""

from __future__ import annotations

from enum import Enum

from .codes import CloseCode

__all__ = [
    "Misuse",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "HandshakeError",
]


class Misuse(Enum):
    """What a `LocalProtocolError` is about: the adapter picks the user's error by it."""

    STATE = "state"  # the call is not allowed in the connection's state
    TARGET = "target"  # the request target of the upgrade request
    SUBPROTOCOL = "subprotocol"  # a subprotocol offered or chosen
    HEADER = "header"  # a header field the caller added
    CLOSE = "close"  # the close code or reason
    PING = "ping"  # the ping payload
    STATUS = "status"  # the status of a rejection


class ProtocolError(Exception):
    """Root of every error the codec raises; `reason` says what went wrong, for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol or the connection state forbids."""

    def __init__(self, reason: str, misuse: Misuse = Misuse.STATE) -> None:
        super().__init__(reason)
        self.misuse = misuse


class RemoteProtocolError(ProtocolError):
    """The peer sent something invalid; `close_code` is the code to fail the connection with."""

    def __init__(self, reason: str, close_code: CloseCode = CloseCode.PROTOCOL_ERROR) -> None:
        super().__init__(reason)
        self.close_code = close_code


class HandshakeError(RemoteProtocolError):
    """The peer's side of the opening handshake is invalid; `status_code` is the HTTP answer."""

    def __init__(self, reason: str, status_code: int = 400) -> None:
        super().__init__(reason)
        self.status_code = status_code
