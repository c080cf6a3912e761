"""Content-Encoding decoders for response bodies: gzip, deflate, and br when `brotli` is there.

Output is handed out in pieces of at most `PIECE` bytes, so one small compressed chunk can never
expand into one huge bytes object (the core bounds the total); codings we do not know leave the
body as it was sent, as urllib3 does.
"""

from __future__ import annotations

import zlib
from typing import Any, Iterator, List, Optional

from ftcore.errors import Errno, FtError

__all__ = ["make_decoder", "Decoder"]

PIECE = 256 * 1024


class _Zlib:
    """gzip (also several members), or deflate: zlib-wrapped as the RFC says, raw as some
    servers send it."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._first = True
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._first and not self._gzip and data:
            self._first = False
            if data[0] & 0x0F != 8:  # not a zlib header (CM=8): a raw deflate stream
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        while data:
            obj = self._obj
            out = obj.decompress(data, PIECE)
            if out:
                yield out
            data = obj.unconsumed_tail
            if obj.eof:
                rest = obj.unused_data
                if not (self._gzip and rest.strip(b"\x00")):
                    return  # trailing zero padding (or garbage after deflate): ignored
                self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)  # the next gzip member
                data = rest

    def flush(self) -> Iterator[bytes]:
        out = self._obj.flush()
        if out:
            yield out


class _Brotli:
    def __init__(self, module: Any) -> None:
        self._obj = module.Decompressor()
        self._process = getattr(self._obj, "process", None) or self._obj.decompress

    def decode(self, data: bytes) -> Iterator[bytes]:
        out = self._process(data)
        for start in range(0, len(out), PIECE):
            yield out[start : start + PIECE]

    def flush(self) -> Iterator[bytes]:
        return iter(())


class Decoder:
    """The codings of one response, undone in reverse order of their listing, lazily: each
    step pulls from the one before, so no step's output is ever held whole."""

    def __init__(self, steps: List[Any]) -> None:
        self._steps = steps

    def decode(self, data: Any) -> Iterator[bytes]:
        return self._chain(iter((bytes(data),)), final=False)

    def flush(self) -> Iterator[bytes]:
        return self._chain(iter(()), final=True)

    def _chain(self, stream: Iterator[bytes], final: bool) -> Iterator[bytes]:
        for step in self._steps:
            stream = _through(step, stream, final)
        try:
            yield from stream
        except zlib.error as error:
            raise FtError(
                Errno.BAD_RESPONSE, "bad response: cannot decode body: %s" % error
            ) from None


def _through(step: Any, stream: Iterator[bytes], final: bool) -> Iterator[bytes]:
    for piece in stream:
        yield from step.decode(piece)
    if final:
        yield from step.flush()


def make_decoder(content_encoding: str) -> Optional[Decoder]:
    """A decoder for a Content-Encoding value, or None when there is nothing (known) to undo."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    steps: List[Any] = []
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            steps.append(_Zlib(gzip=True))
        elif coding == "deflate":
            steps.append(_Zlib(gzip=False))
        elif coding == "br" and _brotli() is not None:
            steps.append(_Brotli(_brotli()))
        elif coding == "identity":
            continue
        else:
            return None  # an unknown coding: hand over the body as sent
    return Decoder(steps) if steps else None


def _brotli() -> Any:
    try:
        import brotli  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        try:
            import brotlicffi as brotli  # type: ignore[import-not-found,no-redef]
        except ImportError:
            return None
    return brotli
