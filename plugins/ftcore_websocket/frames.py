"""RFC 6455 framing: frame headers both ways, and close-frame payloads.

Pure functions over bytes (headers are also read from views); the incremental reading lives
in `reader.py`. A header is
    byte 0: FIN, RSV1-3, opcode    byte 1: MASK, length 0-125 | 126 (+16 bit) | 127 (+64 bit)
followed by the 4-byte mask key when MASK is set.
"""

from __future__ import annotations

import struct
from typing import Optional, Tuple, Union

from .codes import CloseCode, Opcode
from .errors import LocalProtocolError, Misuse, RemoteProtocolError

# Module-level names for the per-frame paths: a global lookup costs a fraction of `Opcode.TEXT`.
CONTINUATION = Opcode.CONTINUATION
TEXT = Opcode.TEXT
BINARY = Opcode.BINARY
CLOSE = Opcode.CLOSE
PING = Opcode.PING
PONG = Opcode.PONG

FIN = 0x80
RSV1 = 0x40
RESERVED_BITS = 0x70  # RSV1-3
OPCODE_MASK = 0x0F
MASKED = 0x80

MAX_CONTROL_PAYLOAD = 125
MAX_CLOSE_REASON_BYTES = MAX_CONTROL_PAYLOAD - 2

_pack_short = struct.Struct("!BB").pack
_pack_medium = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_uint16 = struct.Struct("!H")
_unpack_long = struct.Struct("!Q").unpack_from

# (first byte, payload length, mask key or None, offset of the payload in the buffer)
Header = Tuple[int, int, Optional[bytes], int]


def frame_header(first_byte: int, length: int, mask_key: Optional[bytes] = None) -> bytes:
    """Header bytes for a frame whose byte 0 is `first_byte` and whose payload has `length`."""
    mask_bit = MASKED if mask_key is not None else 0
    if length < 126:
        head = _pack_short(first_byte, mask_bit | length)
    elif length < 0x10000:
        head = _pack_medium(first_byte, mask_bit | 126, length)
    else:
        head = _pack_long(first_byte, mask_bit | 127, length)
    return head + mask_key if mask_key is not None else head


def parse_header(buf: Union[bytes, memoryview], pos: int) -> Optional[Header]:
    """The header starting at `buf[pos]`, or None while it is incomplete.

    Only the length encoding is checked here; what the bits mean is the reader's business.
    """
    end = len(buf)
    if end - pos < 2:
        return None
    first_byte = buf[pos]
    second_byte = buf[pos + 1]
    length = second_byte & 0x7F
    start = pos + 2
    if length == 126:
        if end < start + 2:
            return None
        length = _uint16.unpack_from(buf, start)[0]
        start += 2
    elif length == 127:
        if end < start + 8:
            return None
        length = _unpack_long(buf, start)[0]
        if length >> 63:
            raise RemoteProtocolError("frame length has the most significant bit set")
        start += 8
    if second_byte & MASKED:
        if end < start + 4:
            return None
        return first_byte, length, bytes(buf[start : start + 4]), start + 4
    return first_byte, length, None, start


def is_valid_close_code(code: int) -> bool:
    """Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4, plus the
    IANA-registered 1012-1014 that servers send when restarting or overloaded)."""
    return (
        CloseCode.NORMAL_CLOSURE <= code <= CloseCode.UNSUPPORTED_DATA
        or CloseCode.INVALID_FRAME_PAYLOAD_DATA <= code <= CloseCode.BAD_GATEWAY
        or 3000 <= code <= 4999  # registered by libraries (3xxx) and private (4xxx)
    )


def build_close_payload(code: Optional[int], reason: str = "") -> bytes:
    """The payload of our close frame; `code=None` sends an empty close (no reason allowed)."""
    if code is None:
        if reason:
            raise LocalProtocolError("a close reason needs a close code", Misuse.CLOSE)
        return b""
    if not is_valid_close_code(code):
        raise LocalProtocolError("invalid close code %r" % (code,), Misuse.CLOSE)
    encoded = reason.encode("utf-8")
    if len(encoded) > MAX_CLOSE_REASON_BYTES:
        raise LocalProtocolError(
            "close reason longer than %d bytes" % MAX_CLOSE_REASON_BYTES, Misuse.CLOSE
        )
    return _uint16.pack(code) + encoded


def parse_close_payload(payload: bytes) -> Tuple[int, str]:
    """(code, reason) of a received close frame; 1005 when it carried no code."""
    if not payload:
        return int(CloseCode.NO_STATUS_RCVD), ""
    if len(payload) == 1:
        raise RemoteProtocolError("close frame with a 1-byte payload")
    code = _uint16.unpack_from(payload)[0]
    if not is_valid_close_code(code):
        raise RemoteProtocolError("invalid close code %d" % code)
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(
            "close reason is not valid UTF-8", CloseCode.INVALID_FRAME_PAYLOAD_DATA
        ) from None
    return code, reason
