"""Cutting a byte stream into pieces of given sizes, as a transport might deliver it."""

from __future__ import annotations

from typing import List, Sequence


def cut(data: bytes, sizes: Sequence[int]) -> List[bytes]:
    """`data` cut into pieces of the given sizes, cycling through them."""
    pieces, pos, i = [], 0, 0
    while pos < len(data):
        pieces.append(data[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    return pieces
