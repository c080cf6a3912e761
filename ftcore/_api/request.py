"""`request`: options, data encoding and response decoding on top of `HttpTaskBase`.

Data (API.md §3): for GET a dict is merged into the query string (nested values as JSON);
otherwise a dict/list is JSON unless content-type is form-urlencoded; str is UTF-8; bytes go
as they are. The body is decoded per `responseType` (text with the response charset, UTF-8 by
default; arraybuffer as bytes) and, for `dataType` "json", parsed, with the text kept when it
does not parse.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from .http import HttpTaskBase, header_dict
from .streaming.body import BodyStream, iterator_methods, view_methods
from .._core.listeners import event_methods
from ..errors import Errno, FtError
from ..transports import HttpRequest

if TYPE_CHECKING:
    from .runtime import Runtime
    from ..transports import Header

__all__ = ["RequestTask", "encode_data", "decode_body", "charset_of"]

METHODS = frozenset({"OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT"})
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
_URI_SAFE = "-_.!~*'()"  # what JS encodeURIComponent leaves alone
_json_decode = json.JSONDecoder().decode  # json.loads for a str, without its argument checks



class RequestTask(HttpTaskBase):
    """What `request()` returns: `abort()`, headers and chunk listeners, `result()`."""

    api = "request"
    _gate_body = False  # _receive_body only collects bytes or forwards them in order

    onChunkReceived, offChunkReceived = event_methods("ChunkReceived")  # noqa: N815
    # API.md §10: the same chunks as text, lines and Server-Sent Events, and as iterators
    onTextChunkReceived, offTextChunkReceived = view_methods("text")  # noqa: N815
    onLineReceived, offLineReceived = view_methods("lines")  # noqa: N815
    onServerSentEvent, offServerSentEvent = view_methods("events")  # noqa: N815
    iter_chunks, aiter_chunks = iterator_methods("chunks")
    iter_text, aiter_text = iterator_methods("text")
    iter_lines, aiter_lines = iterator_methods("lines")
    iter_events, aiter_events = iterator_methods("events")

    _held = 0
    _chunked = False
    _stream: Optional[BodyStream] = None

    def __init__(self, runtime: "Runtime", options: Dict[str, Any]) -> None:
        super().__init__(runtime, options)
        self._parts: List[bytes] = []
        if options.get("enableChunked"):  # made now: an iterator may start before the loop
            self._stream = self._body_stream()

    def _body_stream(self) -> BodyStream:
        limit = self._runtime.config["limits"]["streamBufferBytes"]
        return BodyStream(self, limit, lambda: charset_of(_content_type(self._headers)))

    def _redirect_mode(self, options: Dict[str, Any]) -> str:
        mode = options.get("redirect", "follow")
        if mode not in ("follow", "manual"):
            raise FtError(Errno.INVALID_OPTION, "invalid redirect %r" % (mode,))
        return str(mode)

    def _first_request(self, options: Dict[str, Any]) -> HttpRequest:
        method = options.get("method", "GET")
        if method is None:
            method = "GET"
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise FtError(Errno.INVALID_OPTION, "invalid method")
        method = method.upper()
        response_type = options.get("responseType", "text")
        if response_type not in ("text", "arraybuffer"):
            raise FtError(Errno.INVALID_OPTION, "invalid responseType %r" % (response_type,))
        data_type = options.get("dataType", "json")
        if not isinstance(data_type, str):
            raise FtError(Errno.INVALID_OPTION, "invalid dataType %r" % (data_type,))
        self._chunked = bool(options.get("enableChunked", False))
        if self._chunked and self._stream is None:  # an interceptor turned it on
            self._stream = self._body_stream()
        url: str = options["url"]
        header: Dict[str, str] = options.get("header") or {}
        if not isinstance(header, dict):
            raise FtError(Errno.INVALID_OPTION, "header must be an object")
        headers = [(str(name), str(value)) for name, value in header.items()]
        url, body = encode_data(method, url, headers, options.get("data"))
        return HttpRequest(method=method, url=url, headers=headers, body=body)

    def _receive_body(self, chunk: Any) -> None:
        data = bytes(chunk)
        if self._chunked:
            if data:
                self._call_on_loop(self._emit_chunk, data)
            return
        self._held += len(data)
        if self._held > self._runtime.config["limits"]["downloadMaxBytes"]:
            raise FtError(Errno.RESPONSE_TOO_LARGE)  # the body is held in memory: bound it
        self._parts.append(data)

    def _emit_chunk(self, data: bytes) -> None:
        stream = self._stream
        # once iterators or views read the stream, no backlog of chunks waits for a listener
        if stream is None or not stream.consumed or self._listeners.has("ChunkReceived"):
            self._listeners.emit("ChunkReceived", {"data": data})
        if stream is not None:
            stream.feed(data)

    def _discard(self) -> None:
        self._parts = []
        self._held = 0

    def _completed(
        self, status: int, headers: List["Header"], profile: Dict[str, Any]
    ) -> Dict[str, Any]:
        if self._stream is not None:
            self._stream.finish()  # the last text and line come before success
        options = self._prepared
        header, cookies = self._header_dict or header_dict(headers)
        raw = b"".join(self._parts)
        self._parts = []
        data = decode_body(
            raw,
            header,
            options.get("responseType", "text"),
            options.get("dataType", "json"),
        )
        res: Dict[str, Any] = {
            "data": data,
            "statusCode": status,
            "header": header,
            "cookies": cookies,
        }
        if options.get("enableProfile", True):
            res["profile"] = profile
        return res


# -- request data and response body -------------------------------------------------------------


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise FtError(Errno.INVALID_DATA, "invalid request data: %s" % error) from None


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise FtError(Errno.INVALID_DATA, "invalid request data: not encodable as UTF-8") from None


def _query_value(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _form(pairs: Any) -> str:
    items = pairs.items() if isinstance(pairs, dict) else pairs
    out = []
    try:
        for key, value in items:
            out.append(
                quote(_utf8(_query_value(key)), safe=_URI_SAFE)
                + "="
                + quote(_utf8(_query_value(value)), safe=_URI_SAFE)
            )
    except (TypeError, ValueError):
        raise FtError(Errno.INVALID_DATA, "invalid request data: not key/value pairs") from None
    return "&".join(out)


def _content_type(headers: List["Header"]) -> str:
    for name, value in headers:
        if name.lower() == "content-type":
            return value.lower()
    return ""


def encode_data(method: str, url: str, headers: List["Header"], data: Any) -> Tuple[str, Any]:
    """The URL and body of a request: GET merges a dict (or a str) into the query string;
    other methods send JSON, urlencoded, UTF-8 or raw bytes. FtError 600010 when impossible."""
    if data is None:
        return url, None
    if method == "GET" and isinstance(data, (dict, str)):
        query = _form(data) if isinstance(data, dict) else data
        if not query:
            return url, None
        _utf8(query)
        base, _, fragment = url.partition("#")
        base += "&" if "?" in base and not base.endswith(("?", "&")) else "" if "?" in base else "?"
        return base + query + ("#" + fragment if fragment else ""), None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return url, bytes(data)
    if isinstance(data, str):
        return url, _utf8(data)
    if isinstance(data, (dict, list, tuple)) and _content_type(headers).startswith(
        "application/x-www-form-urlencoded"
    ):
        return url, _form(data).encode("ascii")
    return url, _utf8(_json(data))


_CHARSET_OF: Dict[str, str] = {}


def charset_of(content_type: Optional[str]) -> str:
    """The text codec named by a Content-Type's charset (UTF-8 when absent, unknown, or not a
    text encoding, such as "zlib" or "base64"); cached."""
    if not content_type:
        return "utf-8"
    name = _CHARSET_OF.get(content_type)
    if name is None:
        name = "utf-8"
        match = _CHARSET.search(content_type)
        if match:
            try:
                info = codecs.lookup(match.group(1))
            except LookupError:
                pass
            else:
                if getattr(info, "_is_text_encoding", True):
                    name = info.name
        if len(_CHARSET_OF) < 256:
            _CHARSET_OF[content_type] = name
    return name


def decode_body(raw: bytes, header: Dict[str, str], response_type: str, data_type: str) -> Any:
    """`data` of a success: bytes for arraybuffer, else text in the response charset, parsed
    as JSON (without a UTF-8 BOM) when dataType is json, falling back to the text."""
    if response_type == "arraybuffer":
        return raw
    content_type = header.get("Content-Type")  # the usual spelling: no loop over the names
    if content_type is None:
        for name, value in header.items():
            if name.lower() == "content-type":
                content_type = value
                break
    text = raw.decode(charset_of(content_type), "replace") if raw else ""
    if data_type != "json" or not text:
        return text
    try:
        return _json_decode(text[1:] if text[0] == "\ufeff" else text)
    except ValueError:
        return text
