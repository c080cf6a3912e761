"""Errors of the WebSocket codec, split by fault under one root, as in h11.

`LocalProtocolError`: the caller misused the API (send after close, bad close code...).
`RemoteProtocolError`: the peer broke the protocol; it carries the close code the connection
fails with (1002, 1007, 1009...), and `HandshakeError` the HTTP status a server answers a bad
upgrade request with. The codec catches the remote kind itself and turns it into a
`ConnectionFailed` or `HandshakeRejected` event: callers only ever see the local kind raised.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Root of every error the codec raises."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol or the connection state forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something invalid; `close_code` is the code to fail the connection with."""

    def __init__(self, reason: str, close_code: int = 1002) -> None:
        super().__init__(reason)
        self.close_code = close_code


class HandshakeError(RemoteProtocolError):
    """The peer's side of the opening handshake is invalid; `status_code` is the HTTP answer."""

    def __init__(self, reason: str, status_code: int = 400) -> None:
        super().__init__(reason)
        self.status_code = status_code
