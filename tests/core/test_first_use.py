"""What the first use of `ft` costs in imports, in a fresh interpreter: pluggy's entry-point
scan is skipped when only the builtins are declared (no `importlib.metadata`, `email`);
nothing logs (no `logging`); an eventfd waker needs no `socket`; the sandbox is made without
`tempfile` (nor `shutil`, `random`); no domain list means no `urllib.parse`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftcore._core.plugins import BUILTIN_PLUGINS

REPO = Path(__file__).resolve().parents[2]
HEAVY = [
    "importlib.metadata",
    "email",
    "logging",
    "tempfile",
    "shutil",
    "random",
    "urllib.parse",
]


def test_first_use_of_ft_leaves_the_heavy_modules_unimported() -> None:
    heavy = HEAVY + (["socket"] if hasattr(os, "eventfd") else [])
    code = (
        "import sys; before = set(sys.modules); import ftcore; ftcore.ft; "
        "print(sorted(m for m in %r if m in sys.modules and m not in before)); "
        "print(len(ftcore.ft.pm.get_plugins()))" % heavy
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "plugins")])
    env.pop("FTCORE_DISABLE_PLUGIN_AUTOLOAD", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    modules, plugins = out.stdout.strip().splitlines()
    assert modules == "[]"
    assert int(plugins) == len(BUILTIN_PLUGINS)


def test_an_unknown_lazy_name_is_an_attribute_error() -> None:
    import ftcore
    from ftcore._api import lazy

    with pytest.raises(AttributeError, match="no_such_name"):
        lazy.no_such_name  # noqa: B018
    with pytest.raises(AttributeError, match="no_such_name"):
        ftcore.no_such_name  # noqa: B018
    assert lazy.RequestTask is ftcore.RequestTask
