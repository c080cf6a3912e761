"""Timeouts: the call's own `timeout` (ms), else the config's `networkTimeout` for the API."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ftcore import Errno, FtError, hookimpl

_CONFIG_KEYS = frozenset({"request", "connectSocket", "uploadFile", "downloadFile"})


@hookimpl(trylast=True)
def ftcore_timeout_choose(runtime: Any, api: str, options: Dict[str, Any]) -> Optional[float]:
    timeout = options.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise FtError(Errno.INVALID_OPTION, "invalid timeout %r" % (timeout,))
        return timeout / 1000.0
    if api in _CONFIG_KEYS:
        return runtime.config["networkTimeout"][api] / 1000.0
    return None
