"""uploadFile: a streamed multipart/form-data POST of one sandbox file (API.md §3).

Checked before any connection: `name` and `filePath` are strings, `formData` a dict, and the
file resolves inside the sandbox (603303), exists (603304) and is a readable regular file
(603303). The body (`ftcore._api.multipart`) and its exact Content-Length are made from the size
seen then; the file is opened when the task gets its `maxConcurrent.http` slot (`_send`), still
before any connection: gone by then fails with 603304, a different size with 600010. While
sending, a file that shrinks or grows fails the task before the body's last bytes (600010).
Progress counts the whole request body, from the bytes the transport reports as written: it
reaches 100 only once all of them were, and stays below when the server refused the rest of the
body with an early error answer (the task still succeeds with that response). The result
carries `profile`, as downloadFile's does.
"""

from __future__ import annotations

import os
import stat
from typing import Any, Dict, List, Optional, Tuple

from .http import BODY_HEADERS, HttpTaskBase, header_dict
from .request import charset_of
from .._core.listeners import BACKLOG_LIMIT, event_methods
from .multipart import MultipartBody
from .._core.state import ENDED
from ..errors import Errno, FtError
from ..transports import HttpRequest

__all__ = ["UploadTask"]


class UploadTask(HttpTaskBase):
    """What `uploadFile` returns."""

    api = "uploadFile"
    _gate_body = False  # _receive_body only collects the (small) response text

    onProgressUpdate, offProgressUpdate = event_methods("ProgressUpdate")  # noqa: N815

    def __init__(self, runtime: Any, options: Dict[str, Any]) -> None:
        super().__init__(runtime, options)
        self._path = ""
        self._size = 0
        self._body: Optional[MultipartBody] = None
        self._parts: List[bytes] = []
        self._total = 0
        self._sent_bytes = 0
        self._percent = -1
        self._mark = 0
        self._unheard = 0

    # -- start: refusals here happen before any connection -----------------------------------

    def _start(self, options: Dict[str, Any]) -> None:
        name = options.get("name")
        if not isinstance(name, str) or not name:
            raise FtError(Errno.INVALID_OPTION, "invalid option: name must be a non-empty string")
        form = options.get("formData")
        if form is not None and not isinstance(form, dict):
            raise FtError(Errno.INVALID_OPTION, "invalid option: formData must be a dict")
        file_path = options.get("filePath")
        if not isinstance(file_path, str) or not file_path:
            raise FtError(Errno.INVALID_OPTION, "invalid option: filePath must be a string")
        path = self._runtime.resolve_path(file_path, "read")
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise FtError(Errno.FILE_NOT_FOUND, "file not found %r" % file_path) from None
        except OSError as error:
            raise FtError(
                Errno.PATH_NOT_PERMITTED,
                "permission denied, open %r: %s" % (file_path, error.strerror),
            ) from None
        if not stat.S_ISREG(info.st_mode):
            raise FtError(Errno.PATH_NOT_PERMITTED, "permission denied, not a file %r" % file_path)
        if not os.access(path, os.R_OK):
            raise FtError(Errno.PATH_NOT_PERMITTED, "permission denied, open %r" % file_path)
        self._path, self._size = path, info.st_size
        super()._start(options)

    def _first_request(self, options: Dict[str, Any]) -> HttpRequest:
        """The request with a body that opens the file only when sent (also for a 307/308)."""
        self._close_body()
        body = MultipartBody(
            options.get("formData") or {},
            options["name"],
            self._path,
            filename=os.path.basename(options["filePath"]),  # as named, not a link's target
            size=self._size,
        )
        self._body = body
        header = options.get("header") or {}  # checked by the header policy
        headers = [
            (str(k), str(v)) for k, v in header.items() if str(k).lower() not in BODY_HEADERS
        ]
        headers.append(("Content-Type", body.content_type))
        headers.append(("Content-Length", str(body.length)))
        return HttpRequest(
            method="POST", url=options["url"], headers=headers, body=body, body_length=body.length
        )

    def _send(self, request: HttpRequest) -> None:
        """The task got its slot (or follows a redirect): open the file now, so a file removed
        or changed while the task was queued fails it before any connection is made."""
        body = request.body
        if isinstance(body, MultipartBody):
            try:
                body.open()
            except FtError as error:
                self._fail(error)
                return
            self._total = body.length
        else:
            self._close_body()  # a 301/302/303 turned the upload into a GET
            self._total = 0
        self._sent_bytes = 0
        self._percent = -1
        self._mark = 0
        super()._send(request)

    # -- progress -----------------------------------------------------------------------------

    def _sent(self, nbytes: int) -> None:  # noqa: D401
        """Transport thread: count, and marshal an event when the integer percent changes."""
        sent = self._sent_bytes + nbytes
        self._sent_bytes = sent
        if sent < self._mark:
            return
        total = self._total
        percent = min(100, sent * 100 // total) if total else 100
        self._mark = -(-total * (percent + 1) // 100) if percent < 100 else total + 1
        if percent != self._percent:
            self._percent = percent
            self._call_on_loop(self._emit_progress, percent, sent)

    def _emit_progress(self, percent: int, sent: int) -> None:
        if self._state in ENDED:
            return
        if not self._listeners.has("ProgressUpdate"):
            if self._unheard >= BACKLOG_LIMIT - 1 and percent != 100:
                return
            self._unheard += 1
        self._listeners.emit(
            "ProgressUpdate",
            {"progress": percent, "totalBytesSent": sent, "totalBytesExpectedToSend": self._total},
        )

    # -- the end ------------------------------------------------------------------------------

    def _completed(
        self, status: int, headers: List[Tuple[str, str]], profile: Any
    ) -> Dict[str, Any]:
        self._close_body()  # progress stays below 100 when the server refused part of the body
        data = b"".join(self._parts)
        self._parts = []
        return {
            "data": _text(data, headers),
            "statusCode": status,
            "header": header_dict(headers)[0],
            "profile": profile,
        }

    def _receive_body(self, chunk: Any) -> None:
        self._parts.append(bytes(chunk))

    def _discard(self) -> None:
        self._parts = []
        self._close_body()

    def _close_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()



def _text(data: bytes, headers: List[Tuple[str, str]]) -> str:
    """The response body as text: the charset of Content-Type, else UTF-8 (lenient)."""
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    return data.decode(charset_of(content_type), "replace")
