"""Which entry points of a group are declared, read without importing `importlib.metadata`.

Importing `importlib.metadata` (it pulls in `email`, `zipfile`, `csv`...) and walking every
distribution costs more than the rest of making a runtime. Usually the only `ftcore` entry
points are our own builtins, which are registered already, and the scan then has nothing to do.
This module answers "which names does the group declare?" from the `entry_points.txt` files of
the `*.dist-info` / `*.egg-info` directories on `sys.path`, the same files and places
`importlib.metadata`'s path finder reads, so the plugin manager runs pluggy's full scan only
when a declared name is not registered yet.

It answers `None` ("run the full scan") whenever it could miss something that scan would find:
a zip or egg on `sys.path`, or a meta-path finder other than the standard one that can list
distributions. Reading too many names costs only a full scan; reading too few would drop a
plugin, so every doubt falls back.
"""

from __future__ import annotations

import os
import sys
from typing import Iterator, List, Optional, Set

__all__ = ["declared_names"]

METADATA_DIRS = (".dist-info", ".egg-info")


def declared_names(group: str) -> Optional[Set[str]]:
    """Entry-point names declared in `group` on `sys.path`; None if only the full scan knows."""
    if _other_finders():
        return None
    names: Set[str] = set()
    for entry in sys.path:
        root = entry or "."
        if root.endswith(".egg") or os.path.isfile(root):
            return None
        for metadata in _metadata_dirs(root):
            declared = _group_names(os.path.join(metadata, "entry_points.txt"), group)
            if declared is None:
                return None
            names.update(declared)
    return names


def _other_finders() -> bool:
    """A meta-path finder besides the standard path finder that can list distributions."""
    from importlib.machinery import PathFinder

    return any(
        finder is not PathFinder and hasattr(finder, "find_distributions")
        for finder in sys.meta_path
    )


def _metadata_dirs(root: str) -> Iterator[str]:
    try:
        entries = os.scandir(root)
    except OSError:  # a path entry that does not exist or cannot be read holds no metadata
        return
    with entries:
        for child in entries:
            if child.name.lower().endswith(METADATA_DIRS):
                yield child.path


def _group_names(path: str, group: str) -> Optional[List[str]]:
    """The names in `[group]` of one entry_points.txt (INI: sections, `name = value` lines);
    None for a file that exists but cannot be read."""
    try:
        text = _read(path)
    except (FileNotFoundError, NotADirectoryError):  # none, or an egg-info that is a file
        return []
    except (OSError, UnicodeDecodeError):
        return None
    names = []
    section = None
    for line in text.splitlines():  # read as importlib.metadata reads it
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == group:
            names.append(line.partition("=")[0].strip())
    return names


def _read(path: str) -> str:
    """A small file's text through bare descriptors: `open()` builds a text stack per file, and
    most distributions have no entry_points.txt, so the failed open is the common case."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks: List[bytes] = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks).decode("utf-8")
            chunks.append(chunk)
    finally:
        os.close(fd)
