"""Incremental frame reading: the received byte stream in, one event at a time out.

Rules enforced here (each breach raises `RemoteProtocolError`, 1002 unless noted):
  * frames are masked when they come from a client and never when they come from a server;
  * RSV2/RSV3 are never set; RSV1 only on the first frame of a data message, and only when
    permessage-deflate was negotiated;
  * opcodes 3-7 and 11-15 are reserved;
  * control frames (close, ping, pong) carry at most 125 bytes, are never fragmented, and may
    come between the fragments of a data message;
  * a continuation frame needs a message in progress; a text/binary frame needs none;
  * a message larger than the bound fails with 1009; invalid UTF-8 with 1007.

Data payloads are consumed as they arrive instead of waiting for the whole frame, so the
buffer never holds more than an incomplete header or control frame (under 140 bytes): it is
kept with a read offset, and a fresh receive usually just replaces it.

A receive may be a view of a buffer its caller reuses (the stream layer's one read buffer).
When most of it is the payload of one data frame (a large message arriving), the payload is
copied straight out of it into the message, with no copy of the whole receive first; what is
unread is copied before `next_event` returns (the listener of a message may run a nested loop
pass, which reads into that buffer again), so the view is never held past that call.
Any other view (small frames, many to a receive) is copied whole at once: one copy costs less
than a view per frame, and buffers of one size, freed and taken again, stay in the
allocator's hands instead of faulting in fresh pages.
"""

from __future__ import annotations

from typing import Optional, Union

from .assembler import MessageAssembler, utf8_error
from .codes import CloseCode
from .deflate import Inflater
from .errors import RemoteProtocolError
from .events import BinaryMessage, CloseReceived, Ping, Pong, TextMessage
from .frames import (
    BINARY,
    CONTINUATION,
    FIN,
    MAX_CONTROL_PAYLOAD,
    OPCODE_MASK,
    PING,
    PONG,
    RESERVED_BITS,
    RSV1,
    TEXT,
    parse_close_payload,
    parse_header,
)
from .masking import mask, rotate_key

_CONTROL = 0x8  # the bit every control opcode (8-15) has set

ReadEvent = Union[TextMessage, BinaryMessage, Ping, Pong, CloseReceived]
VIEW_FROM = 16 * 1024  # a smaller receive is copied whole: its copy costs less than views
Buffer = Union[bytes, memoryview]


class FrameReader:
    """Parses frames from the bytes fed to it and yields message and control events."""

    __slots__ = (
        "_buf",
        "_pos",
        "_client_frames",
        "_max_bytes",
        "_inflater",
        "_message",
        "_remaining",
        "_fin",
        "_key",
        "_offset",
    )

    def __init__(
        self, client_frames: bool, max_message_bytes: int, inflater: Optional[Inflater]
    ) -> None:
        self._buf: Buffer = b""
        self._pos = 0
        self._client_frames = client_frames  # True on the server: frames must be masked
        self._max_bytes = max_message_bytes
        self._inflater = inflater
        self._message = MessageAssembler(max_message_bytes)
        # The data frame whose payload is being read, if any:
        self._remaining = 0  # payload bytes still to come
        self._fin = False
        self._key: Optional[bytes] = None
        self._offset = 0  # payload bytes already read (to rotate the mask key)

    def feed(self, data: Buffer) -> None:
        """Take the next bytes received: `bytes`, or a view read as the module says."""
        if type(data) is not bytes:
            data = memoryview(data) if self._mostly_payload(data) else bytes(data)
        if self._pos >= len(self._buf):
            self._buf = data
        else:  # a header or control frame cut short: rare, and under 140 bytes are left
            self._buf = b"".join((self._buf[self._pos :], data))
        self._pos = 0

    def _mostly_payload(self, data: Buffer) -> bool:
        """Whether most of `data` is one data frame's payload: the rest of the frame being
        read, or of the frame whose header begins `data`."""
        size = len(data)
        if size < VIEW_FROM or self._pos < len(self._buf):  # small, or joined to a leftover
            return False
        payload = self._remaining
        if not payload:
            header = parse_header(data, 0)
            if header is None:
                return False
            payload = header[1]
        return payload * 2 >= size

    def next_event(self) -> Optional[ReadEvent]:
        """The next event, or None until more bytes arrive."""
        event = self._parse()
        buf = self._buf
        if type(buf) is memoryview:  # borrowed: its owner may reuse the buffer from now
            self._buf = buf[self._pos :].tobytes()
            self._pos = 0
        return event

    def _parse(self) -> Optional[ReadEvent]:
        buf = self._buf
        while True:
            if self._remaining:
                if not self._read_payload_piece(buf):
                    return None
                if not self._fin:
                    continue
                return self._message.finish()
            if len(buf) - self._pos < 2:
                return None
            header = parse_header(buf, self._pos)
            if header is None:
                return None
            first_byte, length, key, start = header
            if (key is not None) is not self._client_frames:
                raise RemoteProtocolError(
                    "unmasked frame from a client"
                    if self._client_frames
                    else "masked frame from a server"
                )
            opcode = first_byte & OPCODE_MASK
            if opcode & _CONTROL:
                self._check_control(first_byte, length)
                end = start + length
                if len(buf) < end:
                    return None
                self._pos = end
                payload = bytes(buf[start:end])
                return self._control_event(opcode, mask(payload, key) if key else payload)
            message = self._message
            reserved = first_byte & RESERVED_BITS
            if opcode == CONTINUATION:
                if not message.in_progress:
                    raise RemoteProtocolError("continuation frame without a message to continue")
                if reserved:
                    raise RemoteProtocolError("reserved bits set on a continuation frame")
            elif opcode == TEXT or opcode == BINARY:
                if message.in_progress:
                    raise RemoteProtocolError("new data frame inside a fragmented message")
                if reserved and (reserved != RSV1 or self._inflater is None):
                    raise RemoteProtocolError("reserved bits set without a matching extension")
                end = start + length
                if first_byte & FIN and not reserved and len(buf) >= end:
                    # The common case: an uncompressed message in one frame, all here.
                    if length > self._max_bytes:
                        raise RemoteProtocolError(
                            "message larger than %d bytes" % self._max_bytes,
                            CloseCode.MESSAGE_TOO_BIG,
                        )
                    self._pos = end
                    body = buf[start:end] if key is None else mask(buf[start:end], key)
                    if opcode == BINARY:
                        return BinaryMessage(bytes(body))  # out of a view: 1 copy
                    try:
                        return TextMessage(str(body, "utf-8"))
                    except UnicodeDecodeError as exc:
                        raise utf8_error(exc) from None
                message.start(opcode == TEXT, self._inflater if reserved else None)
            else:
                raise RemoteProtocolError("reserved opcode %d" % opcode)
            if length > message.room() and not message.compressed:
                raise RemoteProtocolError(
                    "message larger than %d bytes" % self._max_bytes, CloseCode.MESSAGE_TOO_BIG
                )
            message.expect(length)
            self._pos = start
            self._remaining = length
            self._fin = bool(first_byte & FIN)
            self._key = key
            self._offset = 0
            if not length and self._fin:
                return message.finish()

    def _read_payload_piece(self, buf: Buffer) -> bool:
        """Hand what has arrived of the current data frame to the message; True when done."""
        pos = self._pos
        take = min(len(buf) - pos, self._remaining)
        if take <= 0:
            return False
        piece = buf[pos : pos + take]
        self._pos = pos + take
        if self._key is not None:
            piece = mask(piece, rotate_key(self._key, self._offset))
            self._offset += take
        self._remaining -= take
        self._message.add(piece)
        return not self._remaining

    @staticmethod
    def _check_control(first_byte: int, length: int) -> None:
        """Checked from the header alone, so a bad control frame fails before its payload."""
        if first_byte & OPCODE_MASK > PONG:
            raise RemoteProtocolError("reserved opcode %d" % (first_byte & OPCODE_MASK))
        if first_byte & RESERVED_BITS:
            raise RemoteProtocolError("reserved bits set on a control frame")
        if not first_byte & FIN:
            raise RemoteProtocolError("fragmented control frame")
        if length > MAX_CONTROL_PAYLOAD:
            raise RemoteProtocolError("control frame longer than 125 bytes")

    @staticmethod
    def _control_event(opcode: int, payload: bytes) -> Union[Ping, Pong, CloseReceived]:
        if opcode == PING:
            return Ping(payload)
        if opcode == PONG:
            return Pong(payload)
        code, reason = parse_close_payload(payload)
        return CloseReceived(code, reason)
