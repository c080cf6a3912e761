"""Reassembly of one data message from its frames' payload pieces.

Pieces arrive as the bytes do (a frame may still be incomplete), so invalid UTF-8 fails the
connection at the first bad byte, and inflating stops as soon as the message would outgrow its
bound: a small compressed frame cannot balloon in memory.
"""

from __future__ import annotations

import codecs
from typing import Any, List, Optional, Union

from .codes import CloseCode
from .deflate import Inflater
from .errors import RemoteProtocolError
from .events import BinaryMessage, TextMessage


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

    __slots__ = ("_max_bytes", "_decoder", "_parts", "size", "in_progress", "_is_text", "_inflater")

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._parts: List[Any] = []  # str pieces for text, bytes for binary
        self.size = 0  # bytes of payload so far, after inflating
        self.in_progress = False
        self._is_text = False
        self._inflater: Optional[Inflater] = None

    def start(self, is_text: bool, inflater: Optional[Inflater]) -> None:
        """A new message begins; `inflater` is given when it is compressed (RSV1)."""
        self.in_progress = True
        self._is_text = is_text
        self._inflater = inflater

    @property
    def compressed(self) -> bool:
        return self._inflater is not None

    def room(self) -> int:
        """How many more payload bytes the message may grow by."""
        return self._max_bytes - self.size

    def add(self, piece: bytes) -> None:
        if self._inflater is not None:
            piece = self._inflater.inflate(piece, self._max_bytes - self.size)
        self._add_plain(piece)

    def _add_plain(self, piece: bytes) -> None:
        self.size += len(piece)
        if self._is_text:
            try:
                self._parts.append(self._decoder.decode(piece))
            except UnicodeDecodeError as exc:
                raise utf8_error(exc) from None
        else:
            self._parts.append(piece)

    def finish(self) -> Union[TextMessage, BinaryMessage]:
        """The whole message, once its final frame has been read; resets for the next one."""
        if self._inflater is not None:
            self._add_plain(self._inflater.finish(self._max_bytes - self.size))
        parts = self._parts
        self._parts = []
        self.size = 0
        self.in_progress = False
        if self._is_text:
            try:
                parts.append(self._decoder.decode(b"", True))
            except UnicodeDecodeError as exc:
                raise utf8_error(exc) from None
            finally:
                self._decoder.reset()
            return TextMessage("".join(parts))
        return BinaryMessage(b"".join(parts))
