"""The entry-point prefilter: it reads the names `importlib.metadata` would find, and answers
None (run the full scan) whenever it could miss one."""

from __future__ import annotations

import importlib.metadata
import sys
import zipfile
from pathlib import Path
from typing import Any, Set

import pytest

from ftcore._core.entrypoints import declared_names

def _dist(root: Path, dirname: str, entry_points: Any) -> Path:
    dist = root / dirname
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: x\nVersion: 1.0\n")
    if entry_points is not None:
        mode = "wb" if isinstance(entry_points, bytes) else "w"
        with open(dist / "entry_points.txt", mode) as file:
            file.write(entry_points)
    return dist


def _only(monkeypatch: pytest.MonkeyPatch, *paths: Any) -> None:
    monkeypatch.setattr(sys, "path", [str(path) for path in paths])


def _metadata_names(group: str) -> Set[str]:
    found = importlib.metadata.entry_points()
    if hasattr(found, "select"):
        return {ep.name for ep in found.select(group=group)}
    return {ep.name for ep in found.get(group, ())}  # Python 3.9: a dict of groups


@pytest.mark.parametrize("group", ["ftcore", "console_scripts", "pytest11"])
def test_the_names_importlib_metadata_finds_on_this_interpreter(group: str) -> None:
    assert declared_names(group) == _metadata_names(group)


def test_reads_only_the_group_in_dist_and_egg_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dist(
        tmp_path,
        "a-1.0.dist-info",
        "# a comment\n[console_scripts]\nnot-me = m:f\n\n[ftcore]\n  one = pkg.one \n"
        "  # another comment\ntwo=pkg.two:Plugin\n[other]\nthree = x\n",
    )
    _dist(tmp_path, "B-2.0.EGG-INFO", "[ftcore]\nfour = b\n")
    _dist(tmp_path, "c-1.0.dist-info", None)  # no entry points at all
    (tmp_path / "d-1.0.egg-info").write_text("Metadata-Version: 1.0\n")  # a plain file
    _only(monkeypatch, tmp_path, tmp_path / "missing")
    assert declared_names("ftcore") == {"one", "two", "four"}
    assert declared_names("ftcore") == _metadata_names("ftcore")


def test_the_empty_path_entry_is_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dist(tmp_path, "a-1.0.dist-info", "[ftcore]\nhere = m\n")
    monkeypatch.chdir(tmp_path)
    _only(monkeypatch, "")
    assert declared_names("ftcore") == {"here"}


def test_a_zip_on_the_path_needs_the_full_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("z-1.0.dist-info/entry_points.txt", "[ftcore]\nzipped = z\n")
    _only(monkeypatch, archive)
    assert declared_names("ftcore") is None


def test_an_egg_on_the_path_needs_the_full_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    egg = tmp_path / "e-1.0-py3.egg"
    egg.mkdir()
    _only(monkeypatch, egg)
    assert declared_names("ftcore") is None


def test_an_unreadable_file_needs_the_full_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dist(tmp_path, "a-1.0.dist-info", b"[ftcore]\nbad = \xff\xfe\n")
    _only(monkeypatch, tmp_path)
    assert declared_names("ftcore") is None


def test_another_finder_that_lists_distributions_needs_the_full_scan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Finder:
        @staticmethod
        def find_spec(*args: Any) -> None:
            return None

        @staticmethod
        def find_distributions(*args: Any) -> Any:
            return iter(())

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder])
    assert declared_names("ftcore") is None

