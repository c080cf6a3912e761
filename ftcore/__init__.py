"""ftcore: the FinClip mini-program network API for Python hosts.

    from ftcore import ft
    ft.request(url="https://example.com/api", success=print)

`ft` is a default `Runtime`, made on first use; build your own `Runtime(config=...)` to
configure domains, timeouts, the sandbox or plugins.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, Optional

from ._plugins import hookimpl
from ._runtime import Runtime
from ._state import State
from .errors import Errno, FtError
from .hookspecs import hookspec

__all__ = ["ft", "Runtime", "FtError", "Errno", "State", "hookimpl", "hookspec"]
__version__ = "0.1.0"

_default: Optional[Runtime] = None
_default_lock = threading.Lock()


def _default_runtime() -> Runtime:
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Runtime()
            atexit.register(_default.close)
        return _default


def __getattr__(name: str) -> Any:
    if name == "ft":
        return _default_runtime()
    raise AttributeError("module 'ftcore' has no attribute %r" % name)
