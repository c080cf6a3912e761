"""Wiring for the codec tests: a client and a server Connection talking in memory (as in
h11's tests/helpers.py), raw frame crafting, and the three ways of feeding bytes."""

from __future__ import annotations

import os
from typing import Iterable, List, Optional, Sequence, Tuple

from ftcore_websocket.connection import Connection, State
from ftcore_websocket.events import Event, HandshakeAccepted, HandshakeRequest
from ftcore_websocket.frames import FIN, RSV1, frame_header, parse_close_payload, parse_header
from ftcore_websocket.masking import mask
from tests.support.cuts import cut

FEED_MODES = ("whole", "bytewise", "chunks")


def chunks(data: bytes, mode: str) -> List[bytes]:
    """`data` cut as a transport might deliver it."""
    if mode == "whole":
        return [data]
    if mode == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    return cut(data, (1, 2, 3, 5, 7, 11, 13, 4096))  # awkward cuts through headers and payloads


def feed(conn: Connection, data: bytes, mode: str = "whole") -> List[Event]:
    """Feed `data` cut per `mode`, draining events after each piece, as a transport does."""
    events: List[Event] = []
    for piece in chunks(data, mode):
        conn.receive_data(piece)
        events.extend(conn.events())
    return events


def open_pair(
    deflate: bool = False,
    offer: Optional[str] = None,
    subprotocols: Sequence[str] = (),
    choose: Optional[str] = None,
    max_message_bytes: int = 16 * 2**20,
    server_deflate: bool = True,
) -> Tuple[Connection, Connection]:
    """A client and a server after a successful handshake.

    `offer` replaces the client's Sec-WebSocket-Extensions offer on the wire, to reach every
    permessage-deflate parameter from the server side.
    """
    client = Connection("client", max_message_bytes)
    server = Connection("server", max_message_bytes)
    request = client.initiate("example.com", "/chat", subprotocols=subprotocols, deflate=deflate)
    if offer is not None:
        request = request.replace(
            b"permessage-deflate; client_max_window_bits", offer.encode("ascii")
        )
    [req] = feed(server, request)
    assert isinstance(req, HandshakeRequest)
    [accepted] = feed(client, server.accept(subprotocol=choose, deflate=server_deflate))
    assert isinstance(accepted, HandshakeAccepted)
    assert client.state is State.OPEN and server.state is State.OPEN
    return client, server


def raw_frame(
    first_byte: int, payload: bytes = b"", masked: bool = False, length: Optional[int] = None
) -> bytes:
    """Any frame, valid or not; `length` overrides the header's length field."""
    key = os.urandom(4) if masked else None
    head = frame_header(first_byte, len(payload) if length is None else length, key)
    return head + (mask(payload, key) if key else payload)


def fragments(
    opcode: int,
    payload: bytes,
    sizes: Iterable[int],
    masked: bool = False,
    compressed: bool = False,
) -> List[bytes]:
    """A data message cut into frames of the given sizes (the last frame takes the rest)."""
    frames: List[bytes] = []
    cuts: List[Optional[int]] = [*sizes, None]
    pos = 0
    for index, size in enumerate(cuts):
        piece = payload[pos:] if size is None else payload[pos : pos + size]
        pos += len(piece)
        byte0 = (FIN if size is None else 0) | (opcode if index == 0 else 0)
        if compressed and index == 0:
            byte0 |= RSV1
        frames.append(raw_frame(byte0, piece, masked))
    return frames


def frames_in(data: bytes) -> List[Tuple[int, bytes]]:
    """(byte 0, unmasked payload) of every whole frame in `data` (bytes-like)."""
    data = bytes(data)
    out, pos = [], 0
    while pos < len(data):
        header = parse_header(data, pos)
        assert header is not None, "truncated frame"
        first_byte, length, key, start = header
        payload = data[start : start + length]
        out.append((first_byte, mask(payload, key) if key else payload))
        pos = start + length
    return out


def close_code(data: bytes) -> int:
    """The code of the close frame ending `data`."""
    first_byte, payload = frames_in(data)[-1]
    assert first_byte & 0x0F == 0x8, "not a close frame"
    return parse_close_payload(payload)[0]
