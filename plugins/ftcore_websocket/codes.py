"""The numbers RFC 6455 registers with IANA: frame opcodes and close codes.

IntEnums, so they compare and pack as the plain ints on the wire. Events and the transport
still hand plain ints onwards: a close code may be an application's (3000-4999), and the
repr of an enum member is not what the user's `res` should print.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Opcode", "CloseCode"]


class Opcode(IntEnum):
    """Byte 0's low four bits (§5.2, §11.8); 3-7 and 11-15 are reserved."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    """Close codes (§7.4.1, §11.7); 1012-1014 were registered after the RFC."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # reported when a close frame carries no code; never sent
    ABNORMAL_CLOSURE = 1006  # reported when the stream ends without a close frame; never sent
    INVALID_FRAME_PAYLOAD_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # reported when the TLS handshake failed; never sent
