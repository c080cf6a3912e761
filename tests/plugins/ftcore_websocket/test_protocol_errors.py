"""Every way a peer can break RFC 6455 / 7692, and the close code it earns."""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import pytest

from ftcore_websocket.connection import State
from ftcore_websocket.events import ConnectionFailed, TextMessage
from ftcore_websocket.frames import BINARY, CLOSE, CONTINUATION, FIN, PING, PONG, RSV1, TEXT

from .helpers import FEED_MODES, close_code, feed, fragments, open_pair, raw_frame


def assert_failed(conn, stream: bytes, code: int, mode: str = "whole") -> ConnectionFailed:
    """Feeding `stream` fails `conn` with `code`, and the close frame with it is queued."""
    events = feed(conn, stream, mode)
    failure = events[-1]
    assert isinstance(failure, ConnectionFailed), events
    assert failure.code == code and type(failure.code) is int, failure  # not an enum member
    assert close_code(conn.data_to_send()) == code
    assert conn.state is State.CLOSED
    return failure


@pytest.mark.parametrize("bits", [RSV1, 0x20, 0x10, 0x70])
def test_reserved_bits_without_extension(bits: int) -> None:
    client, _ = open_pair()
    assert_failed(client, raw_frame(FIN | bits | TEXT, b"hi"), 1002)


def test_rsv2_refused_even_with_deflate() -> None:
    client, _ = open_pair(deflate=True)
    assert_failed(client, raw_frame(FIN | 0x20 | BINARY, b"hi"), 1002)


def test_rsv1_on_a_continuation_frame() -> None:
    client, _ = open_pair(deflate=True)
    stream = raw_frame(RSV1 | TEXT, b"") + raw_frame(FIN | RSV1 | CONTINUATION, b"")
    assert_failed(client, stream, 1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_rsv1_on_a_control_frame(opcode: int) -> None:
    client, _ = open_pair(deflate=True)
    assert_failed(client, raw_frame(FIN | RSV1 | opcode, b""), 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcodes(opcode: int) -> None:
    client, _ = open_pair()
    assert_failed(client, raw_frame(FIN | opcode, b"x"), 1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_control_frame_too_long_fails_from_its_header(opcode: int) -> None:
    client, _ = open_pair()
    frame = raw_frame(FIN | opcode, b"\x03\xe8" + b"x" * 124)
    assert_failed(client, frame[:4], 1002)  # the payload need not arrive


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_fragmented_control_frame(opcode: int) -> None:
    client, _ = open_pair()
    assert_failed(client, raw_frame(opcode, b""), 1002)


def test_continuation_without_a_message() -> None:
    client, _ = open_pair()
    assert_failed(client, raw_frame(FIN | CONTINUATION, b"x"), 1002)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_new_data_frame_inside_a_fragmented_message(opcode: int) -> None:
    client, _ = open_pair()
    assert_failed(client, raw_frame(TEXT, b"a") + raw_frame(FIN | opcode, b"b"), 1002)


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_bad_utf8_split_across_fragments_fails_before_the_last_one(mode: str) -> None:
    client, _ = open_pair()
    # "€" is e2 82 ac: the first fragment ends inside it, the second breaks it.
    stream = raw_frame(TEXT, b"ok \xe2\x82") + raw_frame(CONTINUATION, b"\x28 more")
    assert_failed(client, stream, 1007, mode)


def test_bad_utf8_fails_before_its_frame_is_complete() -> None:
    client, _ = open_pair()
    frame = raw_frame(
        FIN | TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited"
    )
    assert_failed(client, frame[: 2 + 13], 1007)  # the frame's tail never arrives


def test_text_ending_inside_a_utf8_sequence() -> None:
    client, _ = open_pair()
    assert_failed(client, raw_frame(TEXT, b"abc\xe2") + raw_frame(FIN, b""), 1007)
    client, _ = open_pair()
    assert_failed(client, raw_frame(FIN | TEXT, b"abc\xe2\x82"), 1007)


@pytest.mark.parametrize("mode", FEED_MODES)
@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"abc\xe2\x82", "text message ends inside a UTF-8 sequence"),
        (b"abc\xe2\x28", "invalid UTF-8 in a text message"),
    ],
)
def test_the_utf8_failure_reads_alike_however_the_frame_arrives(mode, payload, reason) -> None:
    # Found by tests/fuzz: a frame read whole said "invalid", the same bytes cut said "ends
    # inside" (the close code was 1007 either way).
    client, _ = open_pair()
    assert assert_failed(client, raw_frame(FIN | TEXT, payload), 1007, mode).reason == reason


def test_valid_utf8_split_anywhere_across_fragments() -> None:
    client, _ = open_pair()
    body = "κόσμε 😀".encode("utf-8")
    for cut in range(len(body) + 1):
        stream = b"".join(fragments(TEXT, body, [cut]))
        assert feed(client, stream) == [TextMessage("κόσμε 😀")]


@pytest.mark.parametrize(
    "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]
)
def test_invalid_close_codes(code: int) -> None:
    client, _ = open_pair()
    assert_failed(client, raw_frame(FIN | CLOSE, struct.pack("!H", code)), 1002)


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
)
def test_valid_close_codes_are_echoed(code: int) -> None:
    client, _ = open_pair()
    events = feed(client, raw_frame(FIN | CLOSE, struct.pack("!H", code) + b"why"))
    assert [(e.code, e.reason) for e in events] == [(code, "why")]
    assert close_code(client.data_to_send()) == code


def test_close_with_one_byte_payload() -> None:
    client, _ = open_pair()
    assert_failed(client, raw_frame(FIN | CLOSE, b"\x03"), 1002)


def test_close_reason_not_utf8() -> None:
    client, _ = open_pair()
    assert_failed(client, raw_frame(FIN | CLOSE, b"\x03\xe8\xff\xfe"), 1007)


def test_message_over_the_limit_fails_from_the_header() -> None:
    client, _ = open_pair(max_message_bytes=1000)
    assert_failed(client, raw_frame(FIN | BINARY, b"x" * 1001)[:4], 1009)


def test_fragmented_message_over_the_limit() -> None:
    client, _ = open_pair(max_message_bytes=1000)
    stream = b"".join(fragments(BINARY, b"x" * 1001, [500, 500]))
    assert_failed(client, stream, 1009)


def test_message_at_the_limit_is_fine() -> None:
    client, _ = open_pair(max_message_bytes=1000)
    stream = b"".join(fragments(TEXT, b"x" * 1000, [500, 499]))
    assert feed(client, stream) == [TextMessage("x" * 1000)]


def test_deflate_bomb_fails_with_bounded_memory() -> None:
    limit = 2**20
    client, _ = open_pair(deflate=True, max_message_bytes=limit)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(bytes(64 * 2**20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        assert_failed(client, raw_frame(FIN | RSV1 | BINARY, bomb[:-4]), 1009)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit


def test_deflate_bomb_spread_over_fragments() -> None:
    client, _ = open_pair(deflate=True, max_message_bytes=2**16)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(bytes(2**20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    stream = b"".join(fragments(BINARY, bomb[:-4], [50] * 10, compressed=True))
    assert_failed(client, stream, 1009)


def test_corrupt_deflate_data() -> None:
    client, _ = open_pair(deflate=True)
    assert_failed(client, raw_frame(FIN | RSV1 | BINARY, b"\xff\xff\xff\xff"), 1007)


def test_masked_frame_from_the_server() -> None:
    client, _ = open_pair()
    assert_failed(client, raw_frame(FIN | TEXT, b"hi", masked=True), 1002)


def test_unmasked_frame_from_the_client() -> None:
    _, server = open_pair()
    assert_failed(server, raw_frame(FIN | TEXT, b"hi"), 1002)


def test_length_with_the_top_bit_set() -> None:
    client, _ = open_pair()
    assert_failed(client, bytes([FIN | BINARY, 127]) + struct.pack("!Q", 2**63), 1002)


def test_server_side_failures_too() -> None:
    _, server = open_pair()
    assert_failed(server, raw_frame(FIN | 5, b"", masked=True), 1002)
    _, server = open_pair()
    assert_failed(server, raw_frame(FIN | TEXT, b"\xff", masked=True), 1007)


def test_failure_while_closing_sends_no_second_close() -> None:
    client, _ = open_pair()
    client.close()
    events = feed(client, raw_frame(FIN | 3, b""))
    assert [e.code for e in events] == [1002]
    assert client.data_to_send() == b""
