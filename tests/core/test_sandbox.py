"""The sandbox's directories: owner-only, under the temp directory tempfile would choose,
made without importing tempfile when the app has not (a fresh interpreter shows that), and
removed at close."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict

import pytest

from ftcore._core.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]

# Prints the root, both modes, whether making it imported tempfile (an interpreter whose `site`
# imports tempfile, as an editable install's finder does, always answers False) and whether
# the root is left after close.
MAKE_AND_DESCRIBE = """
import os, stat, sys
from ftcore._core.sandbox import Sandbox
loaded = "tempfile" in sys.modules
box = Sandbox(None)
print(box.root)
print(oct(stat.S_IMODE(os.stat(box.root).st_mode)), oct(stat.S_IMODE(os.stat(box.temp).st_mode)))
print("tempfile" in sys.modules and not loaded)
box.close()
print(os.path.exists(box.root))
"""


def run_fresh(env_changes: Dict[str, str]) -> list:
    env = dict(os.environ)
    for name in ("TMPDIR", "TEMP", "TMP"):
        env.pop(name, None)
    env.update(env_changes)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "plugins")])
    out = subprocess.run(
        [sys.executable, "-c", MAKE_AND_DESCRIBE], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.skipif(os.name != "posix", reason="owner-only modes and TMPDIR are posix")
def test_a_fresh_interpreter_makes_it_under_tmpdir_without_tempfile(tmp_path: Path) -> None:
    root, root_mode, temp_mode, imported, exists_after_close = run_fresh({"TMPDIR": str(tmp_path)})
    assert Path(root).parent == tmp_path.resolve()
    assert Path(root).name.startswith("ftcore-")
    assert (root_mode, temp_mode) == ("0o700", "0o700")
    assert imported == "False"
    assert exists_after_close == "False"


@pytest.mark.skipif(os.name != "posix", reason="TMPDIR is posix")
def test_an_unusable_tmpdir_leaves_the_choice_to_tempfile(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    root, root_mode, _, _, exists_after_close = run_fresh({"TMPDIR": str(missing)})
    assert not root.startswith(str(missing))  # tempfile skipped it, as it would for mkdtemp
    assert root_mode == "0o700" and exists_after_close == "False"


def test_an_app_that_uses_tempfile_keeps_its_tempdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    box = Sandbox(None)
    try:
        assert Path(box.root).parent == tmp_path.resolve()
        assert Path(box.temp).parent == Path(box.root) / "tmp"
        fd, path = box.temp_file(".json")
        os.close(fd)
        assert path.endswith(".json") and Path(path).parent == Path(box.temp)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        box.close()
    assert not os.path.exists(box.root)


def test_a_given_root_is_kept_and_only_this_runtimes_temp_area_removed(tmp_path: Path) -> None:
    box = Sandbox(str(tmp_path / "app"))
    assert Path(box.user).is_dir() and Path(box.temp).is_dir()
    box.close()
    assert Path(box.user).is_dir() and not Path(box.temp).exists()


def test_names_that_keep_clashing_leave_the_choice_to_tempfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every random name taken (a fixed `os.urandom`): after its attempts the sandbox lets
    `tempfile.mkdtemp` pick, as it does for an unusable temp directory."""
    monkeypatch.delitem(sys.modules, "tempfile")  # as in a fresh interpreter (restored after)
    monkeypatch.setattr(os, "urandom", lambda size: b"\0" * size)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    taken = tmp_path / ("ftcore-" + (b"\0" * 6).hex())
    taken.mkdir()
    box = Sandbox(None)
    try:
        assert Path(box.root).parent == tmp_path.resolve() and Path(box.root) != taken
        assert Path(box.root).name.startswith("ftcore-")
    finally:
        box.close()
