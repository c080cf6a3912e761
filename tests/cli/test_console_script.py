"""The `ftcore` console script beside `python -m ftcore`: the same main, run as installed.

The script runs the installed package, not this source tree (no PYTHONPATH is passed), so it
also catches a module missing from setup.cfg's package list.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import distribution
from typing import Any

import pytest

from ftcore._app.cli import main

pytestmark = pytest.mark.timeout(120)


def installed_script() -> str:
    for directory in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        found = shutil.which("ftcore", path=directory)
        if found:
            return found
    raise AssertionError("no `ftcore` script beside %s: install the package" % sys.executable)


def test_the_console_script_entry_point_is_the_cli_main() -> None:
    (entry,) = [
        ep
        for ep in distribution("ftcore").entry_points
        if ep.group == "console_scripts" and ep.name == "ftcore"
    ]
    assert entry.load() is main


def test_the_installed_script_runs_a_request(http_server: Any) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [installed_script(), "request", http_server.url + "/echo?script=1"],
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    res = json.loads(out.stdout)
    assert res["errMsg"] == "request:ok" and res["data"]["query"] == "script=1"
