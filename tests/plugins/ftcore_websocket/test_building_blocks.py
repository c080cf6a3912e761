"""Masking, frame headers, close payloads and deflate negotiation, one function at a time."""

from __future__ import annotations

import os

import pytest

from ftcore_websocket.codes import CloseCode
from ftcore_websocket.deflate import (
    CLIENT_OFFER,
    DeflateParams,
    Deflater,
    Inflater,
    accept_response,
    negotiate_offer,
    parse_extensions,
)
from ftcore_websocket.errors import HandshakeError, LocalProtocolError, RemoteProtocolError
from ftcore_websocket.frames import (
    BINARY,
    FIN,
    build_close_payload,
    parse_close_payload,
    parse_header,
)
from ftcore_websocket.masking import MaskKeys, mask, rotate_key

from .helpers import raw_frame


def _naive_mask(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 32, 125, 1535, 1536, 1537, 4099, 65536])
def test_mask_matches_the_definition(size: int) -> None:
    data, key = os.urandom(size), os.urandom(4)
    assert mask(data, key) == _naive_mask(data, key)
    assert mask(mask(data, key), key) == data
    assert type(mask(data, key)) is bytes


def test_rotated_key_unmasks_a_payload_piece() -> None:
    data, key = os.urandom(100), os.urandom(4)
    masked = mask(data, key)
    for offset in range(8):
        assert mask(masked[offset:], rotate_key(key, offset)) == data[offset:]


def test_mask_keys_are_fresh() -> None:
    keys = MaskKeys()
    drawn = [keys.next_key() for _ in range(3000)]  # crosses a pool refill
    assert all(len(k) == 4 for k in drawn)
    assert len(set(drawn)) > 2900


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536, 2**20])
@pytest.mark.parametrize("masked", [False, True])
def test_frame_header_round_trip(length: int, masked: bool) -> None:
    payload = os.urandom(length)
    frame = raw_frame(FIN | BINARY, payload, masked)
    first_byte, parsed_length, key, start = parse_header(frame, 0)
    assert (first_byte, parsed_length, key is not None) == (FIN | BINARY, length, masked)
    body = frame[start:]
    assert (mask(body, key) if key else body) == payload
    for cut in range(start):  # an incomplete header is not an error, just not there yet
        assert parse_header(frame[:cut], 0) is None


def test_close_payloads() -> None:
    assert build_close_payload(None) == b""
    assert build_close_payload(1000, "bye") == b"\x03\xe8bye"
    assert parse_close_payload(b"") == (1005, "")
    assert parse_close_payload(b"\x0f\xa0ok") == (4000, "ok")
    with pytest.raises(LocalProtocolError):
        build_close_payload(1000, "x" * 124)
    with pytest.raises(RemoteProtocolError) as info:
        parse_close_payload(b"\x03\xe8\xc3")
    assert info.value.close_code is CloseCode.INVALID_FRAME_PAYLOAD_DATA


def test_parse_extensions() -> None:
    assert parse_extensions('permessage-deflate; client_max_window_bits="10"; x, foo') == [
        ("permessage-deflate", {"client_max_window_bits": "10", "x": None}),
        ("foo", {}),
    ]
    for bad in ("", "a;;", "a; b=c d", "a; b; b", "a b"):
        with pytest.raises(HandshakeError):
            parse_extensions(bad)


def test_client_side_params() -> None:
    assert accept_response("permessage-deflate") == DeflateParams()
    params = accept_response(
        "permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
        "client_max_window_bits=9; server_max_window_bits=12"
    )
    assert params == DeflateParams(True, 9, True, 12)


def test_server_side_params() -> None:
    response, params = negotiate_offer(CLIENT_OFFER)
    assert response == "permessage-deflate" and params == DeflateParams()
    for offer in (
        "foo",
        "permessage-deflate; bogus",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate;;",
        "permessage-deflate; client_max_window_bits=16",
    ):
        assert negotiate_offer(offer) is None, offer


@pytest.mark.parametrize(
    "params", [DeflateParams(), DeflateParams(True, 9), DeflateParams(False, 8)]
)
def test_deflater_inflater_round_trip(params: DeflateParams) -> None:
    deflater, inflater = (
        Deflater(params),
        Inflater(DeflateParams(their_max_window_bits=params.our_max_window_bits)),
    )
    for message in (b"", b"a", os.urandom(3000), b"abc" * 10000, b"abc" * 10000):
        compressed = deflater.compress(message)
        assert inflater.inflate(compressed, 10**6) + inflater.finish(10**6) == message


def test_inflater_bound() -> None:
    compressed = Deflater(DeflateParams()).compress(bytes(10000))
    with pytest.raises(RemoteProtocolError) as info:
        Inflater(DeflateParams()).inflate(compressed, 9999)
    assert info.value.close_code is CloseCode.MESSAGE_TOO_BIG
    assert len(Inflater(DeflateParams()).inflate(compressed, 10000)) <= 10000
