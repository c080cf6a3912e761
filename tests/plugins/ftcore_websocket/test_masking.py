"""Masking: every route (pure small, pure large, numpy) agrees with a byte-by-byte XOR at every
size up to 64 and around each crossover; numpy is the route only when importable and allowed;
a large payload costs the result plus at most one working copy."""

from __future__ import annotations

import itertools
import operator
import random
import sys
import tracemalloc
from typing import Any, Callable, Tuple

import pytest

from ftcore_websocket import masking
from ftcore_websocket.frames import BINARY, FIN, frame_header, parse_header
from ftcore_websocket.writer import FrameWriter

CROSSOVERS = (masking.ACCEL_FROM, 2 * masking.INT_CHUNK, 3 * masking.INT_CHUNK)
AROUND = sorted({c + d for c in CROSSOVERS for d in (-9, -8, -5, -4, -1, 0, 1, 3, 4, 7, 8, 9)})
SIZES = list(range(65)) + AROUND + [100_003]
HEADERS = (b"", frame_header(FIN | BINARY, 70000, b"\x01\x02\x03\x04"), b"\x82\xfe\x00\x80kkkk")

Masker = Callable[[bytes, bytes, bytes], bytes]


def reference(data: bytes, key: bytes) -> bytes:
    return bytes(map(operator.xor, data, itertools.cycle(key)))


def payload_and_key(size: int) -> Tuple[bytes, bytes]:
    rng = random.Random(size)
    return rng.randbytes(size), rng.randbytes(4)


def _numpy_route() -> Masker:
    masker = masking._numpy_masker()
    if masker is None:
        pytest.skip("numpy is not importable")
    return masker


def _int_route(header: bytes, data: bytes, key: bytes) -> bytes:
    return header + masking._mask_int(data, key)


@pytest.fixture(params=["pure small", "pure large", "numpy"])
def masker(request: Any) -> Masker:
    """Each route called directly: all of them are correct at any size."""
    if request.param == "numpy":
        return _numpy_route()
    return _int_route if request.param == "pure small" else masking._mask_pure


@pytest.fixture(params=["pure", "numpy"])
def route(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The large route `mask` and `mask_frame` take, fixed for the test."""
    large = _numpy_route() if request.param == "numpy" else masking._mask_pure
    monkeypatch.setattr(masking, "_large", large)
    return str(request.param)


@pytest.fixture
def unsettled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The route not chosen yet, as in a fresh process."""
    monkeypatch.setattr(masking, "_large", masking._choose_large)
    monkeypatch.delenv(masking.NO_ACCEL_ENV, raising=False)


@pytest.mark.parametrize("size", SIZES)
def test_every_route_agrees_with_the_reference(masker: Masker, size: int) -> None:
    data, key = payload_and_key(size)
    expected = reference(data, key)
    for header in HEADERS:
        out = masker(header, data, key)
        assert type(out) in (bytes, bytearray, memoryview)  # the frame buffer, or a view of it
        assert bytes(out) == header + expected


@pytest.mark.parametrize("size", list(range(9)) + AROUND)
def test_mask_and_mask_frame_on_each_route(route: str, size: int) -> None:
    data, key = payload_and_key(size)
    expected = reference(data, key)
    assert masking.mask(data, key) == expected
    assert masking.mask(expected, key) == data
    assert type(masking.mask(data, key)) is bytes
    for header in HEADERS:
        assert masking.mask_frame(header, data, key) == header + expected


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 70001])
def test_large_frames_from_the_writer_unmask_to_the_payload(route: str, size: int) -> None:
    data, _ = payload_and_key(size)
    frame = FrameWriter(masks_frames=True, deflater=None).frame(FIN | BINARY, data)
    header = parse_header(frame, 0)
    assert header is not None
    first_byte, length, key, start = header
    assert (first_byte, length) == (FIN | BINARY, size) and key is not None
    assert reference(frame[start:], key) == data


def test_numpy_is_the_route_when_importable(unsettled: None) -> None:
    _numpy_route()
    data, key = payload_and_key(masking.ACCEL_FROM)
    assert masking.mask(data, key) == reference(data, key)
    assert getattr(masking._large, "__name__", "") == "mask_numpy"


def test_the_environment_variable_keeps_the_pure_route(
    unsettled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(masking.NO_ACCEL_ENV, "1")
    data, key = payload_and_key(3 * masking.INT_CHUNK + 5)
    assert masking.mask(data, key) == reference(data, key)
    assert masking._large is masking._mask_pure


def test_without_numpy_the_pure_route_is_taken(
    unsettled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)  # `import numpy` now fails
    assert masking._numpy_masker() is None
    data, key = payload_and_key(3 * masking.INT_CHUNK + 5)
    assert masking.mask_frame(b"head", data, key) == b"head" + reference(data, key)
    assert masking._large is masking._mask_pure


def test_a_large_payload_costs_only_the_frame(route: str) -> None:
    """Both routes write into the frame's buffer: no second copy of the payload (gathered
    pieces), whose freeing made glibc trim and fault the pages in again at the next send."""
    size = 4 * 2**20 + 3
    data, key = payload_and_key(size)
    masking.mask(data[:100_000], key)  # warm up: lazy imports and caches
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = masking.mask_frame(b"\x82\xff" + bytes(12), data, key)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(out) == size + 14
    assert peak - before < size + 256 * 1024


def test_numpy_is_never_imported_here(unsettled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """`import numpy` on the loop thread would stall every socket: until the host has imported
    it, large payloads take the pure route and the route stays open."""
    monkeypatch.delitem(sys.modules, "numpy", raising=False)
    data = bytes(range(256)) * 64
    assert masking.mask(data, b"\x01\x02\x03\x04") == reference(data, b"\x01\x02\x03\x04")
    assert "numpy" not in sys.modules
    assert masking._large is masking._choose_large
