"""With only pluggy installed, ftcore imports and HTTP fails with a message naming urllib3.

The `minimal` nox session runs this file where urllib3 is really absent; elsewhere the
subprocess hides urllib3 so the same check holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HIDE_URLLIB3 = "import sys; sys.modules['urllib3'] = None\n"


def run_python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", HIDE_URLLIB3 + code],
        capture_output=True, text=True, timeout=60, check=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
    )
    return out.stdout.strip()


def test_import_loads_no_transport_or_ssl() -> None:
    loaded = json.loads(run_python(
        "import json, ftcore\n"
        "print(json.dumps(sorted(m for m, mod in sys.modules.items() if mod is not None and "
        "m.split('.')[0] in ('ssl', 'urllib3', 'ftcore_urllib3', 'ftcore_websocket', "
        "'ftcore_udp', 'ftcore_policies'))))"
    ))
    assert loaded == []


@pytest.mark.timeout(60)
def test_request_fails_naming_the_package_to_install() -> None:
    res = json.loads(run_python(
        "import json, ftcore\n"
        "with ftcore.Runtime(entrypoints=False) as rt:\n"
        "    out = []\n"
        "    task = rt.request(url='http://127.0.0.1:9/', fail=out.append)\n"
        "    try:\n"
        "        task.result(10)\n"
        "    except ftcore.FtError:\n"
        "        pass\n"
        "    print(json.dumps(out[0]))"
    ))
    assert res["errMsg"].startswith("request:fail ")
    assert "pip install" in res["errMsg"] and "urllib3" in res["errMsg"]
    assert res["errno"] == 600021
