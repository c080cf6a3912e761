"""RFC 7692 permessage-deflate: negotiating the parameters and compressing messages.

Negotiation speaks in the client/server terms of the RFC; once settled, `DeflateParams` speaks
from one endpoint's side ("ours" = what we compress, "theirs" = what we inflate), so the
connection needs no role checks when it builds the `Deflater` and `Inflater`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

from .codes import CloseCode
from .errors import HandshakeError, RemoteProtocolError
from .http_head import is_token

EXTENSION = "permessage-deflate"
CLIENT_OFFER = "permessage-deflate; client_max_window_bits"

_TAIL = b"\x00\x00\xff\xff"
_FLAGS = ("server_no_context_takeover", "client_no_context_takeover")
_WINDOW_BITS = ("server_max_window_bits", "client_max_window_bits")

Params = Dict[str, Optional[str]]


@dataclass(frozen=True)
class DeflateParams:
    """What one endpoint agreed to: how it compresses and what it must be able to inflate."""

    our_no_context_takeover: bool = False
    our_max_window_bits: int = 15
    their_no_context_takeover: bool = False
    their_max_window_bits: int = 15


def parse_extensions(header: str) -> List[Tuple[str, Params]]:
    """`a; x=1, b` -> [("a", {"x": "1"}), ("b", {})]; a repeated parameter is an error."""
    offers = []
    for item in header.split(","):
        parts = [part.strip() for part in item.split(";")]
        if not is_token(parts[0]):
            raise HandshakeError("bad extension name %r" % parts[0])
        params: Params = {}
        for part in parts[1:]:
            name, eq, value = (piece.strip() for piece in part.partition("="))
            if eq and len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if not is_token(name) or (eq and not is_token(value)):
                raise HandshakeError("bad extension parameter %r" % part)
            if name in params:
                raise HandshakeError("duplicate extension parameter %r" % name)
            params[name] = value if eq else None
        offers.append((parts[0].lower(), params))
    return offers


def _window_bits(name: str, value: Optional[str]) -> int:
    if value is None or not value.isdigit() or not 8 <= int(value) <= 15:
        raise HandshakeError("%s must be 8 to 15, got %r" % (name, value))
    return int(value)


def _check_flags_and_names(params: Params) -> None:
    for name, value in params.items():
        if name not in _FLAGS and name not in _WINDOW_BITS:
            raise HandshakeError("unknown permessage-deflate parameter %r" % name)
        if name in _FLAGS and value is not None:
            raise HandshakeError("%s takes no value" % name)


def accept_response(header: str) -> DeflateParams:
    """Client side: validate the server's answer to `CLIENT_OFFER`."""
    answers = parse_extensions(header)
    if len(answers) != 1 or answers[0][0] != EXTENSION:
        raise HandshakeError("server chose extensions we did not offer: %r" % header)
    params = answers[0][1]
    _check_flags_and_names(params)
    server_bits = params.get("server_max_window_bits", "15")
    client_bits = params.get("client_max_window_bits", "15")
    return DeflateParams(
        our_no_context_takeover="client_no_context_takeover" in params,
        our_max_window_bits=_window_bits("client_max_window_bits", client_bits),
        their_no_context_takeover="server_no_context_takeover" in params,
        their_max_window_bits=_window_bits("server_max_window_bits", server_bits),
    )


def negotiate_offer(header: str) -> Optional[Tuple[str, DeflateParams]]:
    """Server side: (response header, params) for the first acceptable offer, or None.

    Offers we cannot honour are declined, as RFC 7692 allows: invalid ones, and those asking for
    server_max_window_bits=8, which zlib cannot compress with.
    """
    try:
        offers = parse_extensions(header)
    except HandshakeError:
        return None
    for name, params in offers:
        if name != EXTENSION:
            continue
        try:
            _check_flags_and_names(params)
            server_bits = _window_bits(
                "server_max_window_bits", params.get("server_max_window_bits", "15")
            )
            # Offered without a value, client_max_window_bits only says "you may pick one".
            client_bits = _window_bits(
                "client_max_window_bits", params.get("client_max_window_bits") or "15"
            )
        except HandshakeError:
            continue
        if server_bits == 8:
            continue
        response = [EXTENSION]
        response.extend(flag for flag in _FLAGS if flag in params)
        if "server_max_window_bits" in params:
            response.append("server_max_window_bits=%d" % server_bits)
        if params.get("client_max_window_bits"):
            response.append("client_max_window_bits=%d" % client_bits)
        deflate = DeflateParams(
            our_no_context_takeover="server_no_context_takeover" in params,
            our_max_window_bits=server_bits,
            their_no_context_takeover="client_no_context_takeover" in params,
            their_max_window_bits=client_bits,
        )
        return "; ".join(response), deflate
    return None


class Deflater:
    """Compresses whole messages for frames with RSV1 set."""

    __slots__ = ("_compressor", "_flush_mode")

    def __init__(self, params: DeflateParams) -> None:
        # zlib cannot deflate with a 256-byte window; 9 is what wsproto and websockets use.
        self._compressor = zlib.compressobj(wbits=-max(9, params.our_max_window_bits))
        # A full flush also forgets the history: that is what no_context_takeover promises.
        self._flush_mode = (
            zlib.Z_FULL_FLUSH if params.our_no_context_takeover else zlib.Z_SYNC_FLUSH
        )

    def compress(self, data: bytes) -> bytes:
        compressor = self._compressor
        out = compressor.compress(data) + compressor.flush(self._flush_mode)
        return out[:-4] if out.endswith(_TAIL) else out


class Inflater:
    """Inflates one message at a time, piece by piece, never past a size bound.

    The peer's no_context_takeover needs nothing from us: a stream that never refers back to
    earlier messages inflates the same with or without their history.
    """

    __slots__ = ("_decompressor", "_wbits")

    def __init__(self, params: DeflateParams) -> None:
        # At least 9: peers that agreed to 8 compress with 9 anyway (see Deflater).
        self._wbits = -max(9, params.their_max_window_bits)
        self._decompressor = zlib.decompressobj(wbits=self._wbits)

    def inflate(self, data: Union[bytes, memoryview], room: int) -> bytes:
        """Inflate a piece of a message; more than `room` bytes out fails with 1009."""
        try:
            out = self._decompressor.decompress(data, room + 1)
        except zlib.error as exc:
            raise RemoteProtocolError(
                "bad deflate data: %s" % exc, CloseCode.INVALID_FRAME_PAYLOAD_DATA
            ) from None
        if len(out) > room:
            raise RemoteProtocolError("message too big once inflated", CloseCode.MESSAGE_TOO_BIG)
        return out

    def finish(self, room: int) -> bytes:
        """Inflate what the message's end (the stripped 00 00 ff ff) still holds back."""
        out = self.inflate(_TAIL, room)
        if self._decompressor.eof:  # the sender ended the stream (BFINAL): start a new one
            self._decompressor = zlib.decompressobj(wbits=self._wbits)
        return out
