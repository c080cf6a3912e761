"""Sandbox paths: a `filePath` must resolve (symlinks included) inside the sandbox root.

Relative paths are taken from USER_DATA_PATH. downloadFile may write only in the user area or
the runtime's temp area; uploadFile may read anywhere inside the root.
"""

from __future__ import annotations

import os
from typing import Any

from ftcore import Errno, FtError, hookimpl


@hookimpl(trylast=True)
def ftcore_path_resolve(runtime: Any, path: str, mode: str) -> str:
    sandbox = runtime.sandbox
    if not isinstance(path, str) or not path or "\0" in path:
        raise FtError(Errno.PATH_NOT_PERMITTED, "permission denied, invalid path %r" % (path,))
    joined = os.path.join(sandbox.user, path)  # an absolute `path` replaces the base
    real = os.path.realpath(joined)
    areas = (sandbox.user, sandbox.temp) if mode == "write" else (sandbox.root,)
    if not any(_inside(real, area) for area in areas):
        raise FtError(Errno.PATH_NOT_PERMITTED, "permission denied, open %r" % path)
    return real


def _inside(path: str, area: str) -> bool:
    return path == area or path.startswith(area.rstrip(os.sep) + os.sep)
