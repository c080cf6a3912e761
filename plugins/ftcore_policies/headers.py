"""Header rules: no Referer, no CR/LF/NUL (header injection), a default content-type."""

from __future__ import annotations

from typing import Any, Dict

from ftcore import Errno, FtError, hookimpl

_HTTP_APIS = frozenset({"request", "downloadFile", "uploadFile", "connectSocket"})
_FORBIDDEN = frozenset("\r\n\0")


@hookimpl
def ftcore_options_prepare(runtime: Any, api: str, options: Dict[str, Any]) -> None:
    if api not in _HTTP_APIS:
        return
    header = options.get("header")
    if header is None:
        header = {}
    elif not isinstance(header, dict):
        raise FtError(Errno.INVALID_OPTION, "header must be an object")
    clean: Dict[str, str] = {}
    for name, value in header.items():
        name, value = str(name), _text(value)
        if not name or _FORBIDDEN.intersection(name) or _FORBIDDEN.intersection(value):
            raise FtError(Errno.INVALID_HEADER, "invalid header %r" % name)
        if name.lower() == "referer":
            continue
        clean[name] = value
    if api == "request" and not any(n.lower() == "content-type" for n in clean):
        clean["content-type"] = "application/json"
    options["header"] = clean


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
