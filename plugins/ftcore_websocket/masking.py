"""RFC 6455 payload masking, with the route chosen by size, and the source of fresh mask keys.

Masking XORs the payload with the 4-byte key repeated. The routes, measured side by side on the
build machine (CPython 3.11, CPU time per call, medians; issue 15):
* under `ACCEL_FROM` bytes: the payload as one int XORed with the key repeated as one int, the
  fewest calls (at 1 KiB it ties numpy; at 1.5 KiB numpy is 20-35% faster);
* from `ACCEL_FROM`, when the host has imported numpy: whole 8-byte words in one
  `bitwise_xor`, 15-25x the pure route at 1 MiB. numpy is optional and never imported here:
  `import numpy` takes about 250 ms, which on the loop thread would stall every socket of the
  runtime, so the host imports it when it suits (at start-up) and the first large payload after
  that settles the route. `FTCORE_NO_ACCEL=1`, read then, keeps the pure route;
* otherwise the one int below two `INT_CHUNK`s, then `INT_CHUNK`-byte pieces against one key
  int, each written into the frame's buffer: each piece stays in cache, so it beats four
  `bytes.translate` lanes by 1.2x at 1 MiB and 1.5x at 16 MiB, and the one int by 1.7x.

Memory: both large routes write into the frame's buffer, after the header, so a send holds
the frame and at most one `INT_CHUNK` piece. Pieces gathered and then joined held a second
copy of the payload, and the large transient blocks freed on the loop thread made glibc trim
its arena and fault the pages in again at the next send: about 600 page faults per 1 MiB
echo from a listener, against 3 now. `mask_frame` puts the frame header in, so the writer
does not copy the payload once more.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Optional, Union

__all__ = [
    "mask",
    "mask_frame",
    "rotate_key",
    "MaskKeys",
    "ACCEL_FROM",
    "INT_CHUNK",
    "NO_ACCEL_ENV",
]

ACCEL_FROM = 1536
INT_CHUNK = 16384
NO_ACCEL_ENV = "FTCORE_NO_ACCEL"

# A payload, or on receive a view of the read buffer (the routes read either alike).
Data = Union[bytes, memoryview]
# (header, payload, key) -> header + masked: bytes, or a view of numpy's buffer
Masker = Callable[[bytes, Data, bytes], Any]


def mask(data: Data, key: bytes) -> bytes:
    """XOR `data` with the 4-byte `key` repeated; masking and unmasking are the same thing."""
    if len(data) < ACCEL_FROM:
        return _mask_int(data, key)
    return bytes(_large(b"", data, key))  # a copy unless the route gave bytes


def mask_frame(header: bytes, data: Data, key: bytes) -> Any:
    """`header + mask(data, key)`, with one copy of a large payload fewer: bytes, or for a
    large payload the frame's buffer (a bytearray, or on the numpy route a memoryview of
    numpy's: what `Stream.write` and joins take)."""
    if len(data) < ACCEL_FROM:
        return header + _mask_int(data, key)
    return _large(header, data, key)


def _mask_int(data: Data, key: bytes) -> bytes:
    """One int XOR: a handful of calls, so the fastest route for small payloads."""
    words = (len(data) + 3) >> 2
    masked = int.from_bytes(data, "little") ^ int.from_bytes(key * words, "little")
    return masked.to_bytes(words << 2, "little")[: len(data)]


def _mask_pure(header: bytes, data: Data, key: bytes) -> Union[bytes, bytearray]:
    n = len(data)
    if n < 2 * INT_CHUNK:  # one piece and a tail cost more than one int
        return header + _mask_int(data, key)
    from_bytes = int.from_bytes
    key_int = from_bytes(key * (INT_CHUNK >> 2), "little")
    view = memoryview(data)
    begin = len(header)
    frame = bytearray(begin + n)  # each piece goes straight in: no list of pieces to join
    frame[:begin] = header
    whole = n - n % INT_CHUNK
    for start in range(0, whole, INT_CHUNK):
        piece = from_bytes(view[start : start + INT_CHUNK], "little") ^ key_int
        frame[begin + start : begin + start + INT_CHUNK] = piece.to_bytes(INT_CHUNK, "little")
    if whole < n:  # the tail starts at a multiple of 4: the same key
        frame[begin + whole :] = _mask_int(data[whole:], key)
    return frame


def _numpy_masker() -> Optional[Masker]:
    try:
        import numpy  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    u8, u64 = numpy.dtype(numpy.uint8), numpy.dtype(numpy.uint64)
    empty, frombuffer, xor = numpy.empty, numpy.frombuffer, numpy.bitwise_xor

    def mask_numpy(header: bytes, data: Data, key: bytes) -> Any:
        """Whole 8-byte words in one `bitwise_xor` written straight into the frame's buffer
        (the header before them, placed so the words start 8-byte aligned): no join, no
        second copy of the payload. A view of that buffer comes back."""
        size, start = len(data), len(header)
        pad = -start % 8
        out = empty(pad + start + size, u8)
        out[pad : pad + start] = frombuffer(header, u8)
        words = size >> 3
        begin = pad + start
        done = begin + (words << 3)
        xor(
            frombuffer(data, u64, words),
            frombuffer(bytes(key) * 2, u64),
            out=out[begin:done].view(u64),
        )
        if done < len(out):
            out[done:] = frombuffer(_mask_int(data[words << 3 :], key), u8)
        return memoryview(out.data)[pad:]

    return mask_numpy


def _choose_large(header: bytes, data: Data, key: bytes) -> Any:
    """The first large payload once numpy is loaded (or refused) settles the route for the
    process; until the host imports numpy, the pure route runs unsettled (tests reset
    `_large`)."""
    global _large
    if os.environ.get(NO_ACCEL_ENV):
        _large = _mask_pure
    elif "numpy" in sys.modules:
        _large = _numpy_masker() or _mask_pure
    else:
        return _mask_pure(header, data, key)
    return _large(header, data, key)


_large: Masker = _choose_large


def rotate_key(key: bytes, offset: int) -> bytes:
    """The key to unmask a payload piece that starts `offset` bytes into its frame."""
    shift = offset & 3
    return key[shift:] + key[:shift] if shift else key


class MaskKeys:
    """Fresh random 4-byte keys, cut from one `os.urandom` pool to save a syscall per frame."""

    __slots__ = ("_pool", "_next")

    _POOL_BYTES = 4096

    def __init__(self) -> None:
        self._pool = b""
        self._next = 0

    def next_key(self) -> bytes:
        start = self._next
        if start >= len(self._pool):
            self._pool = os.urandom(self._POOL_BYTES)
            start = 0
        self._next = start + 4
        return self._pool[start : start + 4]
