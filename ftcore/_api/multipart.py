"""A streamed `multipart/form-data` body (RFC 7578) for uploadFile: stdlib only.

The body is text fields, then one file part, with an exact length known before the first
byte is sent; the file is read in `CHUNK_SIZE` pieces while the transport pulls, so it is
never held in memory.

Rules:

* Field names and the filename are escaped as browsers do (WHATWG HTML, "multipart/form-data
  encoding algorithm"): `"` -> `%22`, CR -> `%0D`, LF -> `%0A`; we also escape `\\` -> `%5C`,
  because parsers that honour quoted-pairs (Python's `email`, busboy) would otherwise read a
  trailing backslash as escaping the closing quote and swallow the next parameter. Nothing
  a caller passes can end the quoted string or the header line. Names are UTF-8 (as browsers).
* Text values are sent as UTF-8 bytes, unchanged (`bytes` values as they are); a value that is
  not `str` is converted as JavaScript's `String()` would: `True` -> `"true"`, `None` ->
  `"null"`, dict/list -> JSON, anything else `str()`.
* The boundary is `----ftcore` + 32 random hex digits, redrawn until it occurs in no name,
  value or filename. The file's content is not scanned: a 128-bit random token occurring in it
  by chance is not a realistic event (probability about n * 2**-128 for an n-byte file).
* The length is computed from the file's size when the call was checked; the file is opened
  just before the request is sent (`open()`: uploadFile calls it when the task gets its
  connection slot), and must still have that size (`os.fstat` of the open descriptor).
  Iterating reads exactly that many bytes with `os.pread` (so the body can be replayed for a
  307/308 redirect); if the file ends early or has grown when the last piece is read, iteration
  raises `FtError` (600010) instead of sending a body whose length disagrees
  with Content-Length.
* `regions()` is the same body for a consumer that sends files itself (a plain-HTTP stream
  with `os.sendfile`): the file part comes as `FileRegion`s of a duplicate of the descriptor,
  which the iterator owns and closes when it ends or is dropped, so `close()` from any thread
  never pulls it from under a send in progress. The consumer sends each region whole before
  it pulls the next item, and a file that ends early is its error to report (`FileEnded`);
  a file that grew fails the iteration before the tail, as above.
"""

from __future__ import annotations

import json
import mimetypes
import os
import secrets
import stat
import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from .._net import FileRegion
from ..errors import Errno, FtError

__all__ = ["MultipartBody", "escape_name", "field_value", "CHUNK_SIZE"]

CHUNK_SIZE = 256 * 1024

_ESCAPES = {ord('"'): "%22", ord("\r"): "%0D", ord("\n"): "%0A", ord("\\"): "%5C"}


def escape_name(name: str) -> str:
    """A field name or filename as it is written inside the quotes of Content-Disposition."""
    return name.translate(_ESCAPES)


def field_value(value: Any) -> bytes:
    """A formData value as the bytes sent (JavaScript `String(value)` semantics, UTF-8)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if value is None:
        return b"null"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value)).encode("utf-8")  # JS prints 1.0 as "1"
        if value != value:
            return b"NaN"
        if value in (float("inf"), float("-inf")):
            return b"Infinity" if value > 0 else b"-Infinity"
    return str(value).encode("utf-8")


def guess_type(filename: str) -> str:
    return mimetypes.guess_type(filename, strict=False)[0] or "application/octet-stream"


class MultipartBody:
    """`fields` text parts then the file at `path` as part `name`; iterate for the bytes.

    With `size` (the file's size when the caller was checked) the file is opened only by
    `open()` or the first iteration, which fail if its size is no longer `size`; without, it
    is opened at once. `FtError` 603304 if it is gone, 603303 if it is not a readable regular
    file. `close()` releases it. `length` is exact, `content_type` carries the boundary.
    """

    def __init__(
        self,
        fields: Dict[str, Any],
        name: str,
        path: str,
        filename: Optional[str] = None,
        file_content_type: Optional[str] = None,
        size: Optional[int] = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        if filename is None:
            filename = os.path.basename(path)
        if file_content_type is None:
            file_content_type = guess_type(filename)
        self.chunk_size = chunk_size
        texts: List[Tuple[bytes, bytes]] = [
            (escape_name(str(key)).encode("utf-8"), field_value(value))
            for key, value in fields.items()
        ]
        file_name = escape_name(name).encode("utf-8")
        file_filename = escape_name(filename).encode("utf-8")
        ctype = file_content_type.encode("latin-1", "replace").translate(None, b"\r\n")
        self.boundary = _draw_boundary(
            [b for pair in texts for b in pair] + [file_name, file_filename, ctype]
        )
        dash = b"--" + self.boundary
        head = bytearray()
        for key, value in texts:
            head += dash + b'\r\nContent-Disposition: form-data; name="%s"\r\n\r\n' % key
            head += value + b"\r\n"
        head += dash + b'\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n' % (
            file_name,
            file_filename,
        )
        head += b"Content-Type: %s\r\n\r\n" % ctype
        self.head = bytes(head)
        self.tail = b"\r\n" + dash + b"--\r\n"
        self.content_type = "multipart/form-data; boundary=" + self.boundary.decode("ascii")
        self._path = path
        self._fd: Optional[int] = None
        self._closed = False
        # `close()` (the loop thread, on abort) never closes the descriptor under a read on the
        # transport thread: a closed fd number can be reused at once by another open file,
        # whose bytes would then be sent.
        self._lock = threading.Lock()
        self._expected = size
        self.file_size = -1
        if size is None:  # open now and take the size from the descriptor
            self.open()
        else:
            self.file_size = size
        self.length = len(self.head) + self.file_size + len(self.tail)

    def open(self) -> None:
        """Open the file (if not yet open) and check it still has the size the body was made
        for: FtError 603304 if it is gone, 603303 if it is no readable regular file, 600010 if
        its size changed."""
        with self._lock:
            if self._closed:
                raise FtError(Errno.ABORT, "upload body closed")
            if self._fd is not None:
                return
            fd = _open_regular(self._path)
            size = os.fstat(fd).st_size
            if self._expected is not None and size != self._expected:
                os.close(fd)
                raise FtError(Errno.INVALID_DATA, "file changed before upload")
            self._fd, self.file_size = fd, size

    def __iter__(self) -> Iterator[bytes]:
        """The body, from its first byte (each iteration starts over: redirects replay it)."""
        self.open()
        yield self.head
        size, chunk, offset = self.file_size, self.chunk_size, 0
        while offset < size:
            piece = self._read(min(chunk, size - offset), offset)
            if not piece:
                raise FtError(Errno.INVALID_DATA, "file changed during upload")
            offset += len(piece)
            yield piece
        if self._read(1, size):
            raise FtError(Errno.INVALID_DATA, "file changed during upload")
        yield self.tail

    def regions(self) -> Iterator[Union[bytes, FileRegion]]:
        """The body as `__iter__` makes it, the file's bytes as regions of at most
        `chunk_size` (progress follows each); see the module docstring for the contract."""
        self.open()
        with self._lock:
            if self._fd is None:
                raise FtError(Errno.ABORT, "upload body closed")
            fd = os.dup(self._fd)
        try:
            yield self.head
            size, chunk = self.file_size, self.chunk_size
            for offset in range(0, size, chunk):
                yield FileRegion(fd, offset, min(chunk, size - offset))
            if os.pread(fd, 1, size):
                raise FtError(Errno.INVALID_DATA, "file changed during upload")
            yield self.tail
        finally:
            os.close(fd)

    def _read(self, size: int, offset: int) -> bytes:
        with self._lock:
            fd = self._fd
            if fd is None:
                raise FtError(Errno.ABORT, "upload body closed")
            return os.pread(fd, size, offset)

    def close(self) -> None:
        """Release the file; the body cannot be opened or read again. Any thread."""
        with self._lock:
            self._closed = True
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)

    def __enter__(self) -> "MultipartBody":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten body must not leak its descriptor
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _draw_boundary(texts: List[bytes]) -> bytes:
    while True:
        boundary = ("----ftcore" + secrets.token_hex(16)).encode("ascii")
        if not any(boundary in text for text in texts):
            return boundary


def _open_regular(path: str) -> int:
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FtError(Errno.FILE_NOT_FOUND, "file not found %r" % path) from None
    except OSError as error:
        raise FtError(
            Errno.PATH_NOT_PERMITTED, "permission denied, open %r: %s" % (path, error.strerror)
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FtError(Errno.PATH_NOT_PERMITTED, "permission denied, not a file %r" % path)
    except BaseException:
        os.close(fd)
        raise
    return fd
