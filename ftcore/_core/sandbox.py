"""The runtime's file area: a user area for the app and a temp area removed at close.

Every runtime makes one, the default `ft` included, so making it avoids `tempfile`: that
module imports `shutil`, `random` and the compression modules, about 4 ms of a first `ft`.
Its directories are made the way `tempfile.mkdtemp` makes them (owner-only, a random name,
retried on a clash). Where the app has imported `tempfile` already, or the usual temp
directory is unusable, `tempfile` itself chooses: `tempfile.tempdir` and its fallbacks apply.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Tuple

__all__ = ["Sandbox"]

_NAME_ATTEMPTS = 100  # random names tried before leaving the choice to tempfile


class Sandbox:
    """`root` holds `user` (USER_DATA_PATH, kept) and `temp` (this runtime's, removed)."""

    def __init__(self, root: Optional[str]) -> None:
        self._owns_root = root is None
        if root is None:
            root = _new_dir(None, "ftcore-")
        os.makedirs(root, exist_ok=True)
        self.root = os.path.realpath(root)
        self.user = os.path.join(self.root, "usr")
        os.makedirs(self.user, exist_ok=True)
        temp_parent = os.path.join(self.root, "tmp")
        os.makedirs(temp_parent, exist_ok=True)
        self.temp = _new_dir(temp_parent, "rt-")

    def temp_file(self, suffix: str = "") -> Tuple[int, str]:
        """(descriptor, path) of a new, unique, empty owner-only file in the temp area (its
        name keeps `suffix`): write through the descriptor, never reopen the name."""
        import tempfile  # a download's: loaded with the download module anyway

        return tempfile.mkstemp(suffix=suffix, dir=self.temp)

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.root if self._owns_root else self.temp, ignore_errors=True)


def _new_dir(parent: Optional[str], prefix: str) -> str:
    """`tempfile.mkdtemp(prefix=prefix, dir=parent)`, without importing tempfile when it can."""
    if "tempfile" not in sys.modules:
        base = parent if parent is not None else _usual_temp_dir()
        for _ in range(_NAME_ATTEMPTS):
            path = os.path.join(base, prefix + os.urandom(6).hex())
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            except OSError:  # missing or not writable: tempfile's search decides
                break
            return os.path.abspath(path)
    import tempfile

    return tempfile.mkdtemp(prefix=prefix, dir=parent)


def _usual_temp_dir() -> str:
    """The first of tempfile's candidates: $TMPDIR, $TEMP, $TMP, then /tmp (posix)."""
    for name in ("TMPDIR", "TEMP", "TMP"):
        value = os.environ.get(name)
        if value:
            return value
    return "/tmp" if os.name == "posix" else os.getcwd()
