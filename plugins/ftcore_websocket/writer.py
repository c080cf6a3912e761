"""Outgoing frames: every message goes out as one frame, masked when we are the client.

A small frame costs one struct pack, one mask and two concatenations; a large masked frame is
built in one buffer (`masking.mask_frame`). Masking keys come from a per-connection pool of
random bytes (see `masking.MaskKeys`).
"""

from __future__ import annotations

import struct
from typing import Optional

from .deflate import Deflater
from .frames import FIN, MASKED, RSV1, frame_header
from .masking import MaskKeys, mask, mask_frame

_pack_small_masked = struct.Struct("!BB4s").pack
_pack_small = struct.Struct("!BB").pack


class FrameWriter:
    """Builds the frames one endpoint sends."""

    __slots__ = ("_keys", "_deflater")

    def __init__(self, masks_frames: bool, deflater: Optional[Deflater]) -> None:
        self._keys = MaskKeys() if masks_frames else None
        self._deflater = deflater

    def message(self, opcode: int, payload: bytes) -> bytes:
        """A whole data message in one frame, compressed when deflate was negotiated."""
        if self._deflater is not None:
            return self.frame(FIN | RSV1 | opcode, self._deflater.compress(payload))
        return self.frame(FIN | opcode, payload)

    def frame(self, first_byte: int, payload: bytes) -> bytes:
        """One frame with the given byte 0 (FIN, RSV, opcode)."""
        length = len(payload)
        keys = self._keys
        if keys is None:
            if length < 126:
                return _pack_small(first_byte, length) + payload
            return frame_header(first_byte, length) + payload
        key = keys.next_key()
        if length < 126:
            return _pack_small_masked(first_byte, MASKED | length, key) + mask(payload, key)
        return mask_frame(frame_header(first_byte, length, key), payload, key)
