"""Domain lists: a destination outside `config["domains"][key]` is refused (errno 600002).

An entry is a host (`api.example.com`: any scheme and port) or an origin
(`https://api.example.com:8443`: exactly that scheme, host and port; default ports may be
omitted). A missing key allows everything; an empty list allows nothing.

`urllib.parse` (with `ipaddress`, about 1.5 ms) is imported by the first check of a list,
not when the plugin is registered: a runtime without domain lists, the default `ft`
included, never needs it here.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from ftcore import Errno, FtError, hookimpl

_LIST_OF_API = {
    "request": "request",
    "downloadFile": "downloadFile",
    "uploadFile": "uploadFile",
    "connectSocket": "socket",
    "udp": "udp",
}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

Origin = Tuple[str, str, Optional[int]]


@hookimpl
def ftcore_url_check(runtime: Any, api: str, url: str) -> None:
    entries = runtime.config["domains"].get(_LIST_OF_API.get(api, api))
    if entries is None:
        return
    scheme, host, port = _origin(url)
    for entry in entries:
        if "://" in entry:
            if _origin(entry) == (scheme, host, port):
                return
        elif host and _host(entry) == host:
            return
    raise FtError(Errno.DOMAIN_NOT_ALLOWED)


def _origin(url: str) -> Origin:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = -1  # an invalid port matches no entry
    return scheme, (parts.hostname or "").lower(), port


def _host(entry: str) -> str:
    if entry.count(":") > 1 and not entry.startswith("["):
        return entry.lower()  # a bare IPv6 address: urlsplit would cut it at the first colon
    from urllib.parse import urlsplit

    return (urlsplit("//" + entry).hostname or "").lower()
