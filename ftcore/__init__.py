"""ftcore: the FinClip mini-program network API for Python hosts.

    from ftcore import ft
    ft.request(url="https://example.com/api", success=print)

`ft` is a default `Runtime`, made on first use; build your own `Runtime(config=...)` to
configure domains, timeouts, the sandbox or plugins. The task and socket classes are exported
for type hints (`def load(task: ftcore.RequestTask) -> None`); the API calls make them.
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING, Any, List, Optional

from ._core.state import State
from .errors import Errno, FtError
from .hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from ._api.default import DefaultRuntime
    from ._api.download import DownloadTask
    from ._api.eventsource import EventSource
    from ._api.request import RequestTask
    from ._api.runtime import Runtime
    from ._api.socket import SocketTask
    from ._api.tcp import TCPSocket
    from ._api.udp import UDPSocket
    from ._api.upload import UploadTask

    ft: Runtime

__all__ = [
    "ft",
    "Runtime",
    "RequestTask",
    "DownloadTask",
    "UploadTask",
    "SocketTask",
    "UDPSocket",
    "TCPSocket",
    "EventSource",
    "FtError",
    "Errno",
    "State",
    "hookimpl",
    "hookspec",
]
__version__ = "0.1.0"

_default: "Optional[DefaultRuntime]" = None
_default_lock = threading.Lock()


def _default_runtime() -> "DefaultRuntime":
    """The default runtime, made (or remade) here. It is made with no lock held: making it
    imports the entry-point plugins, code that may itself use `ftcore.ft`. Of two threads
    racing to make it, one runtime is kept and the other closed."""
    from ._api.default import DefaultRuntime

    global _default
    current = _default
    if current is not None and not current.closed:
        return current
    made = DefaultRuntime()
    with _default_lock:
        current = _default
        if current is None or current.closed:
            current = _default = made
    if current is not made:
        made.close()
    else:
        atexit.register(made.close)
    return current


def __getattr__(name: str) -> Any:
    """`ft` (made on first use, remade after it is closed), and the public names not imported
    above: their modules load on first use (through `ftcore._api.lazy`), so `import ftcore`
    stays nearly as cheap as pluggy (the loop, sockets and the sandbox come with a runtime)."""
    if name == "ft":
        return _default_runtime()
    if name not in __all__:
        raise AttributeError("module 'ftcore' has no attribute %r" % name)
    from ._api import lazy

    value = getattr(lazy, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
