"""Ways to cut a byte stream into chunks: whole, byte by byte, and in two at every point."""

from __future__ import annotations

from typing import Iterator, List, Tuple


def cuts(data: bytes) -> Iterator[Tuple[str, List[bytes]]]:
    """(label, chunks) for every way a parser must give the same answer."""
    yield "whole", [data]
    yield "bytewise", [data[i : i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield "split@%d" % i, [data[:i], data[i:]]
