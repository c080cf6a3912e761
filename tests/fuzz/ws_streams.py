"""Valid WebSocket frame streams for the fuzz tests, each with the events a reader must yield,
and the reader driven the way the connection drives it."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from hypothesis import strategies as st

from ftcore_websocket.codes import CloseCode
from ftcore_websocket.deflate import DeflateParams, Deflater, Inflater
from ftcore_websocket.errors import ProtocolError, RemoteProtocolError
from ftcore_websocket.events import BinaryMessage, CloseReceived, Ping, Pong, TextMessage
from ftcore_websocket.frames import BINARY, CLOSE, FIN, PING, PONG, TEXT
from ftcore_websocket.reader import FrameReader, ReadEvent

from ..plugins.ftcore_websocket.helpers import fragments, raw_frame
from .support import pull


# Compressed data both corrupt and too big fails with whichever zlib meets first in the bytes
# at hand: 1009 when the room runs out before the bad bits arrive, 1007 when one call holds
# both (zlib drops what a failing call inflated). Both are right; which depends on the cut.
INFLATE_FAILURES = {CloseCode.INVALID_FRAME_PAYLOAD_DATA, CloseCode.MESSAGE_TOO_BIG}


@dataclass
class FrameStream:
    raw: bytes
    events: List[ReadEvent]
    masked: bool  # client frames (what a server reads)
    deflate: bool


_message = st.one_of(
    st.text(max_size=60).map(TextMessage),
    st.binary(max_size=200).map(BinaryMessage),
)


@st.composite
def frame_streams(draw: st.DrawFn) -> FrameStream:
    """Messages cut into fragments (compressed or not), control frames between fragments, and
    sometimes a close frame at the end."""
    masked, deflate = draw(st.booleans()), draw(st.booleans())
    compressor = Deflater(DeflateParams())  # the reader's inflater keeps the same context
    frames: List[bytes] = []
    events: List[ReadEvent] = []
    for message in draw(st.lists(_message, max_size=4)):
        is_text = isinstance(message, TextMessage)
        payload = message.data.encode("utf-8") if is_text else message.data  # type: ignore
        compress = deflate and draw(st.booleans())
        if compress:
            payload = compressor.compress(payload)
        sizes = draw(st.lists(st.integers(0, 80), max_size=3))
        pieces = fragments(TEXT if is_text else BINARY, payload, sizes, masked, compress)
        control = draw(st.sampled_from([None, PING, PONG]))
        if control is not None:
            data = draw(st.binary(max_size=125))
            pieces.insert(draw(st.integers(0, len(pieces) - 1)), raw_frame(FIN | control, data,
                                                                           masked))
            events.append(Ping(data) if control == PING else Pong(data))
        frames.extend(pieces)
        events.append(message)
    if draw(st.booleans()):
        code = draw(st.sampled_from([1000, 1001, 1011, 3000, 4999]))
        reason = draw(st.text(max_size=20).filter(lambda text: len(text.encode()) <= 123))
        frames.append(raw_frame(FIN | CLOSE, struct.pack("!H", code) + reason.encode(), masked))
        events.append(CloseReceived(code, reason))
    return FrameStream(b"".join(frames), events, masked, deflate)


@dataclass
class ReadOutcome:
    events: List[ReadEvent]
    error: Optional[Tuple[int, str]] = None  # (close code, reason)


def read(
    pieces: Sequence[bytes], masked: bool, deflate: bool, max_message_bytes: int = 2**20
) -> ReadOutcome:
    """Feed `pieces` to a fresh FrameReader, pulling events after each one as the connection
    does, until the first error; any exception but the codec's ProtocolError escapes."""
    inflater = Inflater(DeflateParams()) if deflate else None
    reader = FrameReader(masked, max_message_bytes, inflater)
    outcome = ReadOutcome([])
    fed = 0
    try:
        for piece in pieces:
            reader.feed(piece)
            fed += len(piece)
            pull(reader.next_event, outcome.events, fed // 2)  # a frame has 2 bytes or more
    except ProtocolError as error:
        assert isinstance(error, RemoteProtocolError), error  # the peer's fault, never ours
        outcome.error = (error.close_code, error.reason)
    return outcome
