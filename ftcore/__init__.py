"""ftcore: the FinClip mini-program network API for Python hosts.

    from ftcore import ft
    ft.request(url="https://example.com/api", success=print)

`ft` is a default `Runtime`, made on first use; build your own `Runtime(config=...)` to
configure domains, timeouts, the sandbox or plugins.
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING, Any, Optional

from ._core.state import State
from .errors import Errno, FtError
from .hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from ._api.runtime import Runtime

__all__ = ["ft", "Runtime", "FtError", "Errno", "State", "hookimpl", "hookspec"]
__version__ = "0.1.0"

_default: "Optional[Runtime]" = None
_default_lock = threading.Lock()


def _default_runtime() -> "Runtime":
    from ._api.runtime import Runtime

    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Runtime()
            atexit.register(_default.close)
        return _default


def __getattr__(name: str) -> Any:
    """`ft` and `Runtime` load on first use, so `import ftcore` stays nearly as cheap as
    pluggy (the loop, sockets and the sandbox come with the first runtime)."""
    if name == "ft":
        return _default_runtime()
    if name == "Runtime":
        from ._api.runtime import Runtime

        return Runtime
    raise AttributeError("module 'ftcore' has no attribute %r" % name)
