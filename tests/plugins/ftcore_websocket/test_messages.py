"""Messages between a client and a server in memory: sizes, fragments, deflate, ordering."""

from __future__ import annotations

import zlib

import pytest

from ftcore_websocket.connection import State
from ftcore_websocket.events import BinaryMessage, Ping, Pong, TextMessage
from ftcore_websocket.frames import BINARY, FIN, PING, RSV1, TEXT
from ftcore_websocket.deflate import DeflateParams, Deflater

from .helpers import FEED_MODES, feed, fragments, frames_in, open_pair, raw_frame

SIZES = [0, 1, 125, 126, 65535, 65536, 3 * 2**20]


def _text(size: int) -> str:
    return ("añ€😀" * (size // 10 + 1)).encode("utf-8")[:size].decode("utf-8", "ignore")


def _modes_for(size: int):
    # Byte by byte stays cheap enough up to 64 KiB.
    return FEED_MODES if size <= 65536 else ("whole", "chunks")


@pytest.mark.parametrize("deflate", [False, True])
@pytest.mark.parametrize("size", SIZES)
def test_binary_both_directions(size: int, deflate: bool) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    for mode in _modes_for(size):
        client, server = open_pair(deflate=deflate)
        assert feed(server, client.send_binary(payload), mode) == [BinaryMessage(payload)]
        assert feed(client, server.send_binary(payload), mode) == [BinaryMessage(payload)]


@pytest.mark.parametrize("deflate", [False, True])
@pytest.mark.parametrize("size", SIZES)
def test_text_both_directions(size: int, deflate: bool) -> None:
    text = _text(size)
    for mode in _modes_for(size):
        client, server = open_pair(deflate=deflate)
        assert feed(server, client.send_text(text), mode) == [TextMessage(text)]
        assert feed(client, server.send_text(text), mode) == [TextMessage(text)]


def test_client_frames_are_masked_with_fresh_keys_and_server_frames_are_not() -> None:
    client, server = open_pair()
    one, two = client.send_text("same"), client.send_text("same")
    assert one[1] & 0x80 and two[1] & 0x80
    assert one[2:6] != two[2:6]
    assert not server.send_text("same")[1] & 0x80


@pytest.mark.parametrize("mode", FEED_MODES)
def test_fragmented_message_with_interleaved_pings(mode: str) -> None:
    client, server = open_pair()
    text = "fragmented ü message"
    body = text.encode("utf-8")
    frames = fragments(TEXT, body, [3, 4, 0, 5], masked=True)  # cuts through the ü
    ping = raw_frame(FIN | PING, b"are you there", masked=True)
    stream = frames[0] + ping + frames[1] + frames[2] + ping + frames[3] + frames[4]
    events = feed(server, stream, mode)
    assert events == [Ping(b"are you there"), Ping(b"are you there"), TextMessage(text)]
    assert feed(client, server.data_to_send()) == [Pong(b"are you there")] * 2


def test_trailing_data_stays_for_later() -> None:
    client, server = open_pair()
    stream = client.send_binary(b"first") + client.send_binary(b"second")
    cut = len(stream) - 3
    assert feed(server, stream[:cut]) == [BinaryMessage(b"first")]
    assert feed(server, stream[cut:]) == [BinaryMessage(b"second")]


def test_pong_leaves_before_a_later_send() -> None:
    client, server = open_pair()
    events = feed(client, raw_frame(FIN | PING, b"p") + raw_frame(FIN | TEXT, b"msg"))
    assert events == [Ping(b"p"), TextMessage("msg")]
    out = client.send_text("echo")
    assert [(b0 & 0x0F, payload) for b0, payload in frames_in(out)] == [(0xA, b"p"), (0x1, b"echo")]
    assert client.data_to_send() == b""


def test_events_are_parsed_lazily_so_an_echo_precedes_a_failure() -> None:
    client, server = open_pair()
    client.receive_data(raw_frame(FIN | TEXT, b"good") + raw_frame(FIN | 0x20 | TEXT, b"bad"))
    events = client.events()
    assert next(events) == TextMessage("good")
    echo = client.send_text("good")  # still open: the bad frame is not read yet
    assert next(events).code == 1002
    assert frames_in(echo)[0][1] == b"good"
    assert client.state is State.CLOSED


@pytest.mark.parametrize(
    "offer, expected",
    [
        ("permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
        (
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            "permessage-deflate; client_max_window_bits=8",
            "permessage-deflate; client_max_window_bits=8",
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=9; client_max_window_bits=12",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=9; client_max_window_bits=12",
        ),
        (
            "x-unknown, permessage-deflate; server_max_window_bits=8, permessage-deflate",
            "permessage-deflate",
        ),
    ],
)
def test_deflate_parameters_round_trip(offer: str, expected: str) -> None:
    client, server = open_pair(deflate=True, offer=offer)
    assert client.extensions == server.extensions == expected
    text = "compress me " * 200
    for _ in range(3):  # context carried over (or not) across messages
        frame = client.send_text(text)
        assert frame[0] & RSV1
        assert feed(server, frame) == [TextMessage(text)]
        assert feed(client, server.send_binary(text.encode())) == [BinaryMessage(text.encode())]


def _payloads(data: bytes):
    return [payload for _, payload in frames_in(data)]


@pytest.mark.parametrize("side", ["client", "server"])
def test_no_context_takeover_makes_each_message_inflatable_alone(side: str) -> None:
    offer = "permessage-deflate; %s_no_context_takeover" % side
    client, server = open_pair(deflate=True, offer=offer)
    sender = client if side == "client" else server
    text = b"the same message again and again " * 20
    first, second = (_payloads(sender.send_binary(text))[0] for _ in range(2))
    assert first == second
    fresh = zlib.decompressobj(wbits=-15)
    assert fresh.decompress(second + b"\x00\x00\xff\xff") == text


def test_context_takeover_shrinks_repeated_messages() -> None:
    client, server = open_pair(deflate=True)
    text = b"the same message again and again " * 20
    first, second = (_payloads(client.send_binary(text))[0] for _ in range(2))
    assert len(second) < len(first)


@pytest.mark.parametrize("bits", [9, 10, 12])
def test_client_max_window_bits_limits_our_window(bits: int) -> None:
    client, server = open_pair(
        deflate=True, offer="permessage-deflate; client_max_window_bits=%d" % bits
    )
    # A repeat from further back than the window must not be referenced.
    block = bytes(range(256)) * 8
    data = block + bytes(5000) + block
    payload = _payloads(client.send_binary(data))[0]
    narrow = zlib.decompressobj(wbits=-bits)
    assert narrow.decompress(payload + b"\x00\x00\xff\xff") == data


def test_server_max_window_bits_limits_the_server_window() -> None:
    client, server = open_pair(deflate=True, offer="permessage-deflate; server_max_window_bits=9")
    data = bytes(range(256)) * 8 + bytes(3000) + bytes(range(256)) * 8
    payload = _payloads(server.send_binary(data))[0]
    assert zlib.decompressobj(wbits=-9).decompress(payload + b"\x00\x00\xff\xff") == data


def test_deflate_declined_by_the_server() -> None:
    client, server = open_pair(deflate=True, server_deflate=False)
    assert client.extensions == server.extensions == ""
    frame = client.send_text("plain")
    assert not frame[0] & RSV1
    assert feed(server, frame) == [TextMessage("plain")]


@pytest.mark.parametrize("mode", FEED_MODES)
def test_compressed_fragmented_message_with_ping(mode: str) -> None:
    client, server = open_pair(deflate=True)
    text = "fragmented and compressed " * 50
    compressed = Deflater(DeflateParams()).compress(text.encode())
    frames = fragments(TEXT, compressed, [10, 1, 30], masked=True, compressed=True)
    stream = frames[0] + raw_frame(FIN | PING, b"", masked=True) + b"".join(frames[1:])
    assert feed(server, stream, mode) == [Ping(b""), TextMessage(text)]


def test_uncompressed_message_allowed_when_deflate_negotiated() -> None:
    client, server = open_pair(deflate=True)
    assert feed(server, raw_frame(FIN | BINARY, b"raw", masked=True)) == [BinaryMessage(b"raw")]


@pytest.mark.parametrize("choose", [None, "b"])
def test_subprotocol_negotiation(choose) -> None:
    client, server = open_pair(subprotocols=["a", "b"], choose=choose)
    assert client.subprotocol == server.subprotocol == choose
