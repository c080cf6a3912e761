"""The API modules' entry points, each imported on its first use: by the `Runtime`'s methods
and by `ftcore`'s public names (`ftcore.RequestTask`).

`import ftcore` stays light (a host that only makes requests never imports the WebSocket or UDP
modules), and every call after the first pays one attribute read: an import statement in the
method itself would run the import machinery on every call (about 0.8 µs a request).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Dict

_HOME: Dict[str, str] = {  # name -> its module in ftcore._api
    "Runtime": "runtime",
    "RequestTask": "request",
    "DownloadTask": "download",
    "UploadTask": "upload",
    "SocketTask": "socket",
    "SEND_API": "socket",
    "CLOSE_API": "socket",
    "global_send": "socket",
    "global_close": "socket",
    "global_listen": "socket",
    "refuse": "socket",
    "UDPSocket": "udp",
    "EventSource": "eventsource",
    "TCPSocket": "tcp",
}


def __getattr__(name: str) -> Any:
    """Import `name`'s module, then keep `name` here, so this runs once per name."""
    try:
        module = _HOME[name]
    except KeyError:
        raise AttributeError("module %r has no attribute %r" % (__name__, name)) from None
    value = getattr(import_module("." + module, __package__), name)
    globals()[name] = value
    return value
