"""The runtime's file area: a user area for the app and a temp area removed at close."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Optional, Tuple

__all__ = ["Sandbox"]


class Sandbox:
    """`root` holds `user` (USER_DATA_PATH, kept) and `temp` (this runtime's, removed)."""

    def __init__(self, root: Optional[str]) -> None:
        self._owns_root = root is None
        if root is None:
            root = tempfile.mkdtemp(prefix="ftcore-")
        os.makedirs(root, exist_ok=True)
        self.root = os.path.realpath(root)
        self.user = os.path.join(self.root, "usr")
        os.makedirs(self.user, exist_ok=True)
        temp_parent = os.path.join(self.root, "tmp")
        os.makedirs(temp_parent, exist_ok=True)
        self.temp = tempfile.mkdtemp(prefix="rt-", dir=temp_parent)

    def temp_file(self, suffix: str = "") -> Tuple[int, str]:
        """(descriptor, path) of a new, unique, empty owner-only file in the temp area (its
        name keeps `suffix`): write through the descriptor, never reopen the name."""
        return tempfile.mkstemp(suffix=suffix, dir=self.temp)

    def close(self) -> None:
        shutil.rmtree(self.root if self._owns_root else self.temp, ignore_errors=True)
