"""downloadFile: stream a response body to a file in the sandbox (API.md §3).

The body goes straight from the transport's buffer to the file, on the transport's thread,
one `os.write` per chunk: memory does not grow with the file. The file is made once the
headers are in (after the size check), as a temp file in the sandbox temp area, or next to
the `filePath` destination and renamed onto it (`os.replace`, atomic) only on success; it is
written through the descriptor `mkstemp` made it with, never opened again by name. A failed,
aborted or timed-out download removes what it wrote.

Progress (`onProgressUpdate`) is counted on the transport thread, which only compares the
byte counter with the next percent mark; an event is marshalled to the loop when the integer
percent changes (while streaming it stops at 99; the 100 comes from the loop at completion,
before success). Without a Content-Length, events carry progress 0 (one at the first byte,
then one per MiB) until the final 100.
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
import threading
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

from .http import HttpTaskBase, header_dict
from .._core.listeners import BACKLOG_LIMIT, event_methods
from .._core.state import ENDED
from ..errors import Errno, FtError
from ..transports import HttpRequest

__all__ = ["DownloadTask", "FileWriter", "url_suffix", "content_length"]

UNKNOWN_LENGTH_STEP = 1 << 20  # progress events without Content-Length: one per MiB
_SUFFIX = re.compile(r"\.[A-Za-z0-9_+~-]{1,16}\Z")


def url_suffix(url: str) -> str:
    """The extension of the URL path's last segment (`".png"`), or "" when it has none."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    suffix = posixpath.splitext(posixpath.basename(unquote(path)))[1]
    return suffix if _SUFFIX.match(suffix) else ""


def content_length(headers: List[Tuple[str, str]]) -> Optional[int]:
    """The response's Content-Length, or None when absent or unusable."""
    values = [v for k, v in headers if k.lower() == "content-length"]
    lengths = {item.strip() for value in values for item in value.split(",")}
    if len(lengths) != 1:
        return None
    value = lengths.pop()
    return int(value) if value.isascii() and value.isdigit() else None


class FileWriter:
    """The destination of one body: the open descriptor `fd` of the new file `path`, written
    from the transport thread.

    `write` runs on the transport thread, `finish` and `discard` on the loop thread; a lock
    keeps `discard` from closing the descriptor under a write in progress (a closed and
    reused fd number would otherwise receive the rest of the body). The progress report is
    made after the lock is released: when the transport's thread is the loop, it runs the
    listeners there and then, and one of them may abort the task, which discards the file.
    """

    def __init__(
        self,
        fd: int,
        path: str,
        limit: int,
        expected: Optional[int],
        progress: Any,
    ) -> None:
        self.path = path
        self.limit = limit
        self.expected = expected or 0
        self.written = 0
        self.percent = -1
        self._progress = progress  # called (transport thread) with (percent, written)
        self._lock = threading.Lock()
        self._fd: Optional[int] = fd
        self._mark = 1  # the byte count at which the next progress event is due

    def write(self, chunk: Any) -> None:
        with self._lock:
            percent = self._write(chunk)
            written = self.written
        if percent is not None:
            self._progress(percent, written)

    def _write(self, chunk: Any) -> Optional[int]:
        """Under the lock: write `chunk` whole; the percent to report, if a mark was passed."""
        fd = self._fd
        if fd is None:
            raise FtError(Errno.ABORT)
        size = len(chunk)
        written = self.written + size
        if written > self.limit:
            raise FtError(Errno.FILE_TOO_LARGE)
        try:
            done = os.write(fd, chunk)
            if done != size:
                view = memoryview(chunk)[done:]
                while view:
                    view = view[os.write(fd, view) :]
        except OSError as error:
            raise FtError(Errno.FILE_WRITE, "file write error: %s" % error.strerror) from None
        self.written = written
        return self._next_mark() if written >= self._mark else None

    def _next_mark(self) -> Optional[int]:
        """Move the mark past `written`; the new percent if it is one to report."""
        written, expected = self.written, self.expected
        if expected:
            percent = min(99, written * 100 // expected)
            self._mark = -(-expected * (percent + 1) // 100)  # first count of the next percent
        else:
            percent = 0
            self._mark = (written // UNKNOWN_LENGTH_STEP + 1) * UNKNOWN_LENGTH_STEP
        if percent == self.percent and expected:
            return None
        self.percent = percent
        return percent

    def finish(self) -> None:
        """Close the file (the body is complete); raise `FtError` 603302 if that fails."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is None:
            raise FtError(Errno.FILE_WRITE, "file write error: already closed")
        try:
            os.close(fd)
        except OSError as error:
            raise FtError(Errno.FILE_WRITE, "file write error: %s" % error.strerror) from None

    def discard(self) -> None:
        """Close and remove the partial file; safe to call at any time, more than once."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
        _unlink(self.path)


def _unlink(path: Optional[str]) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except OSError:
        pass


class DownloadTask(HttpTaskBase):
    """What `downloadFile` returns."""

    api = "downloadFile"

    onProgressUpdate, offProgressUpdate = event_methods("ProgressUpdate")  # noqa: N815

    def __init__(self, runtime: Any, options: Dict[str, Any]) -> None:
        super().__init__(runtime, options)
        self._destination: Optional[str] = None  # filePath resolved, or None: a temp file
        self._writer: Optional[FileWriter] = None
        self._unheard = 0  # progress events emitted while nobody listened

    # -- start: everything refused here is refused before any connection ----------------------

    def _start(self, options: Dict[str, Any]) -> None:
        file_path = options.get("filePath")
        if file_path is not None and file_path != "":
            if not isinstance(file_path, str):
                raise FtError(Errno.INVALID_OPTION, "filePath must be a string")
            self._destination = _check_destination(self._runtime.resolve_path(file_path, "write"))
        super()._start(options)

    def _first_request(self, options: Dict[str, Any]) -> HttpRequest:
        header = options.get("header") or {}  # checked by the header policy
        headers = [(str(k), str(v)) for k, v in header.items()]
        return HttpRequest(method="GET", url=options["url"], headers=headers)

    # -- the final hop's response -------------------------------------------------------------

    def _headers_received(self, status: int, headers: List[Tuple[str, str]]) -> None:
        limit = int(self._runtime.config["limits"]["downloadMaxBytes"])
        expected = content_length(headers)
        encoded = any(
            k.lower() == "content-encoding" and v.strip().lower() not in ("", "identity")
            for k, v in headers
        )
        if expected is not None and expected > limit:
            raise FtError(Errno.FILE_TOO_LARGE)
        if encoded:
            expected = None  # the decoded size is unknown: the compressed size would mislead
        fd, path = self._create_file()
        self._writer = FileWriter(fd, path, limit, expected, self._progress_from_worker)

    def _create_file(self) -> Tuple[int, str]:
        """A new owner-only file and the descriptor that created it (`mkstemp`), so its name is
        never opened again: no window in which another file could be put in its place."""
        destination = self._destination
        try:
            if destination is None:
                url = self._request.url if self._request is not None else self._options["url"]
                return self._runtime.sandbox.temp_file(url_suffix(url))
            parent, base = os.path.split(destination)
            if os.path.realpath(parent) != parent:  # the directory was swapped for a link
                raise FtError(Errno.PATH_NOT_PERMITTED, "permission denied, open %r" % destination)
            return tempfile.mkstemp(prefix="." + base[:64] + ".", suffix=".part", dir=parent)
        except FileNotFoundError:
            raise FtError(
                Errno.FILE_NOT_FOUND, "no such file or directory %r" % destination
            ) from None
        except OSError as error:
            raise FtError(Errno.FILE_WRITE, "file write error: %s" % error.strerror) from None

    def _receive_body(self, chunk: Any) -> None:
        writer = self._writer
        if writer is None:
            raise FtError(Errno.FILE_WRITE, "file write error: no file")
        writer.write(chunk)

    def _progress_from_worker(self, percent: int, written: int) -> None:
        writer = self._writer
        expected = writer.expected if writer is not None else 0
        self._call_on_loop(self._emit_progress, percent, written, expected)  # in order with end

    def _emit_progress(
        self, percent: int, written: int, expected: int, final: bool = False
    ) -> None:
        if self._state in ENDED and not final:
            return
        if not self._listeners.has("ProgressUpdate"):
            # kept for a listener attached later, up to the backlog's size (the last slot is
            # left for the final 100), never a warning per dropped event
            if not final and self._unheard >= BACKLOG_LIMIT - 1:
                return
            self._unheard += 1
        self._listeners.emit(
            "ProgressUpdate",
            {
                "progress": percent,
                "totalBytesWritten": written,
                "totalBytesExpectedToWrite": expected,
            },
        )

    # -- the end ------------------------------------------------------------------------------

    def _completed(
        self, status: int, headers: List[Tuple[str, str]], profile: Any
    ) -> Optional[Dict[str, Any]]:
        writer = self._writer
        if writer is None:  # defensive: headers were never seen
            raise FtError(Errno.FILE_WRITE, "file write error: no file")
        writer.finish()
        # The 100 comes before the file is put in place: a listener that aborts on it has the
        # task fail with no file left behind (the abort discarded the written one).
        self._emit_progress(100, writer.written, writer.expected, final=True)
        if self._state in ENDED:
            return None
        path = writer.path
        if self._destination is not None:
            try:
                os.replace(path, self._destination)
            except OSError as error:
                writer.discard()
                raise FtError(Errno.FILE_WRITE, "file write error: %s" % error.strerror) from None
            self._writer = None
            key, value = "filePath", self._destination
        else:
            self._writer = None
            key, value = "tempFilePath", path
        return {
            key: value,
            "statusCode": status,
            "header": header_dict(headers)[0],
            "profile": profile,
        }

    def _discard(self) -> None:
        super()._discard()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.discard()


def _check_destination(path: str) -> str:
    """A resolved filePath we can write: not a directory (checked again at the rename)."""
    if os.path.isdir(path):
        raise FtError(Errno.FILE_WRITE, "file write error: %r is a directory" % path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise FtError(Errno.FILE_NOT_FOUND, "no such file or directory %r" % path)
    return path
