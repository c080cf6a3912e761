"""Reassembly of one data message from its frames' payload pieces.

Pieces arrive as the bytes do (a frame may still be incomplete), so invalid UTF-8 fails the
connection at the first bad byte, and inflating stops as soon as the message would outgrow its
bound: a small compressed frame cannot balloon in memory.

A piece may be a view of the stream's read buffer, valid only until the piece is added, and
a large message is copied as few times as its kind allows:
* uncompressed binary: straight into one `BytesIO`, sized from each frame's declared length
  (`expect`, after the reader checked it against the bound), whose buffer `getvalue()` then
  hands over as the message's bytes without a copy (CPython). One copy; a buffer regrown
  piece by piece would cost more in page faults and moves than the copy itself;
* text: decoded piece by piece, then joined;
* compressed binary: the inflated pieces, joined.
"""

from __future__ import annotations

from codecs import utf_8_decode
from io import BytesIO
from typing import Any, List, Optional, Union

from .codes import CloseCode
from .deflate import Inflater
from .errors import RemoteProtocolError
from .events import BinaryMessage, TextMessage

Piece = Union[bytes, memoryview]


def utf8_error(exc: UnicodeDecodeError) -> RemoteProtocolError:
    """1007 for a text message that is not UTF-8. The reason tells a sequence cut short by the
    message's end from a wrong byte, alike whether the message came in one piece or many."""
    if exc.reason == "unexpected end of data":
        reason = "text message ends inside a UTF-8 sequence"
    else:
        reason = "invalid UTF-8 in a text message"
    return RemoteProtocolError(reason, CloseCode.INVALID_FRAME_PAYLOAD_DATA)


class MessageAssembler:
    """Collects the current data message; `in_progress` between its first and last frame."""

    __slots__ = (
        "_max_bytes",
        "_parts",
        "_binary",
        "_pending",
        "size",
        "in_progress",
        "_is_text",
        "_inflater",
    )

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._parts: List[Any] = []  # str pieces for text, inflated bytes for compressed binary
        self._binary: Optional[BytesIO] = None  # an uncompressed binary message
        self._pending = b""  # text: a UTF-8 sequence cut by the end of the last piece
        self.size = 0  # bytes of payload so far, after inflating
        self.in_progress = False
        self._is_text = False
        self._inflater: Optional[Inflater] = None

    def start(self, is_text: bool, inflater: Optional[Inflater]) -> None:
        """A new message begins; `inflater` is given when it is compressed (RSV1)."""
        self.in_progress = True
        self._is_text = is_text
        self._inflater = inflater
        if not is_text and inflater is None:
            self._binary = BytesIO()

    @property
    def compressed(self) -> bool:
        return self._inflater is not None

    def room(self) -> int:
        """How many more payload bytes the message may grow by."""
        return self._max_bytes - self.size

    def expect(self, length: int) -> None:
        """A frame of `length` payload bytes (within `room()`) begins: an uncompressed binary
        message grows by that much at once. A `BytesIO` grows only by writing, so its new last
        byte is written now (it zero-fills the gap) and the frame's bytes then overwrite it."""
        binary = self._binary
        if binary is not None and length:
            end = self.size + length
            binary.seek(end - 1)
            binary.write(b"\0")
            binary.seek(self.size)

    def add(self, piece: Piece) -> None:
        binary = self._binary
        if binary is not None:
            self.size += binary.write(piece)
            return
        if self._inflater is not None:
            piece = self._inflater.inflate(piece, self._max_bytes - self.size)
        self._add_plain(piece)

    def _add_plain(self, piece: Piece) -> None:
        self.size += len(piece)
        if self._is_text:
            self._decode(piece)
        else:
            self._parts.append(piece)

    def _decode(self, piece: Piece) -> None:
        """Decode a piece of text; a sequence cut by its end waits for the next piece, and is
        completed from that piece's first bytes alone, so the piece is never copied whole."""
        parts = self._parts
        pending = self._pending
        try:
            if pending:
                head = pending + bytes(piece[:3])  # a sequence is at most 4 bytes long
                text, used = utf_8_decode(head, "strict", False)
                parts.append(text)
                skip = used - len(pending)  # bytes of the piece decoded with the head
                if skip < 0:  # the piece was too short to complete the sequence
                    self._pending = head[used:]
                    return
                piece = piece[skip:]
            text, used = utf_8_decode(piece, "strict", False)
        except UnicodeDecodeError as exc:
            raise utf8_error(exc) from None
        parts.append(text)
        self._pending = bytes(piece[used:])

    def finish(self) -> Union[TextMessage, BinaryMessage]:
        """The whole message, once its final frame has been read; resets for the next one."""
        if self._inflater is not None:
            self._add_plain(self._inflater.finish(self._max_bytes - self.size))
        binary, parts, pending = self._binary, self._parts, self._pending
        self._binary, self._parts, self._pending = None, [], b""
        self.size = 0
        self.in_progress = False
        if binary is not None:
            return BinaryMessage(binary.getvalue())
        if self._is_text:
            if pending:  # always fails: the message ends inside a sequence
                try:
                    utf_8_decode(pending, "strict", True)
                except UnicodeDecodeError as exc:
                    raise utf8_error(exc) from None
            return TextMessage("".join(parts))
        return BinaryMessage(b"".join(parts))
