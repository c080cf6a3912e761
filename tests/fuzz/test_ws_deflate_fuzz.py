"""Fuzzing the permessage-deflate decoder (`ftcore_websocket.deflate.Inflater`).

Random bytes, mutated compressed messages and every cut of valid ones, under any room (the
bytes the message may still grow by). The decoder inflates a valid message alike however it is
cut, never returns more than the room, raises nothing but `RemoteProtocolError` (1007 for bad
data, 1009 past the room), and a decompression bomb never makes it hold more than the room.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import List, Optional, Tuple

from hypothesis import given
from hypothesis import strategies as st

from ftcore_websocket.codes import CloseCode
from ftcore_websocket.deflate import DeflateParams, Deflater, Inflater
from ftcore_websocket.errors import RemoteProtocolError

from .support import FUZZ, cut, fewer, mutated, peak_memory, piece_sizes, split_every_way
from .ws_streams import INFLATE_FAILURES

window_bits = st.integers(8, 15)
plain = st.one_of(
    st.binary(max_size=400),
    st.text("ab \n", max_size=2000).map(str.encode),  # compresses well: long back-references
)


@st.composite
def compressed(draw: st.DrawFn) -> Tuple[bytes, bytes, int]:
    """(a message, its compressed payload as a peer sends it, the peer's window bits)."""
    bits = draw(window_bits)
    message = draw(plain)
    return message, Deflater(DeflateParams(our_max_window_bits=bits)).compress(message), bits


def inflate(pieces: List[bytes], room: int, bits: int = 15) -> Tuple[bytes, Optional[int]]:
    """(what came out, the close code of the failure or None), as the assembler calls it."""
    inflater = Inflater(DeflateParams(their_max_window_bits=bits))
    out = bytearray()
    try:
        for piece in pieces:
            out += inflater.inflate(piece, room - len(out))
            assert len(out) <= room
        out += inflater.finish(room - len(out))
        assert len(out) <= room
    except RemoteProtocolError as error:
        assert error.close_code in (
            CloseCode.INVALID_FRAME_PAYLOAD_DATA,
            CloseCode.MESSAGE_TOO_BIG,
        ), error
        return bytes(out), error.close_code
    return bytes(out), None


@FUZZ
@given(sample=compressed())
def test_a_valid_message_inflates_alike_at_every_cut(sample: Tuple[bytes, bytes, int]) -> None:
    message, payload, bits = sample
    assert inflate([payload], len(message), bits) == (message, None)
    for pieces in split_every_way(payload):
        assert inflate(pieces, len(message), bits) == (message, None)
    if message:  # one byte less room: 1009, whatever the cut
        assert inflate([payload], len(message) - 1, bits)[1] == CloseCode.MESSAGE_TOO_BIG


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=300), mutated(compressed().map(lambda s: s[1]))),
    room=st.integers(0, 4096),
    bits=window_bits,
    sizes=piece_sizes,
)
def test_any_bytes_inflate_within_the_room_or_fail_alike_at_any_cut(
    data: bytes, room: int, bits: int, sizes: List[int]
) -> None:
    whole, code = inflate([data], room, bits)
    pieces, code_of_pieces = inflate(cut(data, sizes), room, bits)
    if code is None or code_of_pieces is None:
        assert (pieces, code_of_pieces) == (whole, code)
    else:
        assert code_of_pieces == code or {code, code_of_pieces} == INFLATE_FAILURES


# -- memory: bombs ----------------------------------------------------------------------------


@lru_cache(maxsize=None)
def bomb(megabytes: int) -> bytes:
    """`megabytes` MiB of zeros, deflated as a peer would send them (about 1 KiB per MiB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(bytes(megabytes * 2**20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4]


@fewer(6)
@given(
    megabytes=st.sampled_from([1, 16]),
    room=st.sampled_from([0, 1, 4096, 2**16, 2**20 - 1]),
    piece=st.integers(1, 4096),
)
def test_a_bomb_never_inflates_past_the_room(megabytes: int, room: int, piece: int) -> None:
    pieces = cut(bomb(megabytes), [piece])  # made before measuring: they are not the decoder's
    with peak_memory() as peak:
        out, code = inflate(pieces, room)
    assert code == CloseCode.MESSAGE_TOO_BIG and len(out) <= room
    # The room, the output collected here, zlib's window and a piece: never the bomb's size.
    assert peak[0] < 3 * room + 4 * piece + 2**18, peak[0]
