"""What the fuzz tests share: the profile in force, stream mutations, cuts, and work bounds."""

from __future__ import annotations

import os
import tracemalloc
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, TypeVar

from hypothesis import settings
from hypothesis import strategies as st

from tests.support.cuts import cut as cut  # the fuzz tests take it from here

FUZZ = settings.get_profile("ftcore-fuzz-" + os.environ.get("FTCORE_FUZZ_PROFILE", "ci"))


def fewer(divisor: int) -> settings:
    """The profile with `divisor` times fewer examples, for tests whose examples cost more."""
    return settings(FUZZ, max_examples=max(1, FUZZ.max_examples // divisor))


E = TypeVar("E")


class Spinning(AssertionError):
    """A parser yielded more events than the bytes it was fed can hold: it does not progress."""


def pull(next_event: Callable[[], Optional[E]], events: List[E], budget: int) -> None:
    """Append events to `events` until `next_event` needs bytes (None); those before an error
    stay there. Every event consumes bytes, so more events in all than `budget` (what the
    bytes fed so far can hold) means the parser is looping."""
    while True:
        event = next_event()
        if event is None:
            return
        events.append(event)
        if len(events) > budget:
            raise Spinning("%d events from a budget of %d" % (len(events), budget))


def split_every_way(data: bytes) -> Iterator[List[bytes]]:
    """`data` in two pieces, for every cut point (empty pieces included)."""
    for point in range(len(data) + 1):
        yield [data[:point], data[point:]]


piece_sizes = st.lists(st.integers(1, 64), min_size=1, max_size=6)

# Bytes that matter to the parsers' grammars, so insertions hit them far more often than chance.
_INTERESTING = st.sampled_from(
    [
        b"\r\n",
        b"\r",
        b"\n",
        b"\r\n\r\n",
        b" ",
        b"\t",
        b":",
        b";",
        b",",
        b"=",
        b"0",
        b"9",
        b"f",
        b"\x00",
        b"\x7f",
        b"\x80",
        b"\xff",
        b"HTTP/1.1 ",
        b"chunked",
        b"Content-Length: ",
        b"Transfer-Encoding: ",
        b"\x81",
        b"\x88",
        b"\x7e",
        b"\x7f\xff",
    ]
)


@st.composite
def mutated(draw: st.DrawFn, streams: st.SearchStrategy[bytes]) -> bytes:
    """A stream from `streams` with one to four edits: a byte changed, bytes inserted (often
    grammar bytes), a slice deleted or repeated, or the end cut off."""
    data = bytearray(draw(streams))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["change", "insert", "delete", "repeat", "truncate"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "change" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.one_of(_INTERESTING, st.binary(min_size=1, max_size=4)))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "repeat":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[pos:]
    return bytes(data)


@contextmanager
def peak_memory() -> Iterator[List[int]]:
    """Measure the peak of Python allocations in the block: `[peak]` once it ends."""
    result: List[int] = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
