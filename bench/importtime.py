"""What `import ftcore` costs beside `import pluggy` (goal: ftcore <= pluggy + 6 ms).

    python bench/importtime.py [--runs 15] [--top 12]

Runs ``python -X importtime -c "import ftcore"`` and ``-c "import pluggy"`` in fresh
subprocesses, alternating, and prints the medians of the cumulative import time of the top-level
module, then the modules ftcore imports that pluggy does not, by median self time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
BUDGET_MS = 6.0


def importtime(module: str, pycache: str) -> Tuple[float, Dict[str, int]]:
    """(cumulative µs of `module`, {imported module: self µs}) from one fresh interpreter."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, os.path.join(ROOT, "plugins")])
    # Bytecode for everyone, kept out of the source tree: without it ftcore (a source tree)
    # would be compiled on every run while pluggy (installed) loads its .pyc files.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    env.pop("PYTHONSTARTUP", None)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import " + module],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    own: Dict[str, int] = {}
    total = None
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = (part.strip() for part in line[12:].split("|"))
        own[name.strip()] = int(self_us)
        if name.strip() == module:
            total = int(cumulative_us)
    if total is None:
        raise RuntimeError("no importtime line for %s:\n%s" % (module, proc.stderr[-2000:]))
    return float(total), own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftcore-importtime-") as pycache:
        return report(args, pycache)


def report(args: argparse.Namespace, pycache: str) -> int:
    totals: Dict[str, List[float]] = {"ftcore": [], "pluggy": []}
    selfs: Dict[str, Dict[str, List[int]]] = {"ftcore": {}, "pluggy": {}}
    for _ in range(2):  # fill the bytecode cache, warm the OS caches
        importtime("ftcore", pycache)
        importtime("pluggy", pycache)
    for run in range(args.runs):
        for module in ("ftcore", "pluggy") if run % 2 == 0 else ("pluggy", "ftcore"):
            total, own = importtime(module, pycache)
            totals[module].append(total)
            for name, us in own.items():
                selfs[module].setdefault(name, []).append(us)

    ft = statistics.median(totals["ftcore"]) / 1000
    pg = statistics.median(totals["pluggy"]) / 1000
    print(
        "python %s, %d runs each, medians of the cumulative import time"
        % (sys.version.split()[0], args.runs)
    )
    print("  import pluggy  %7.2f ms  (fastest run %.2f ms)" % (pg, min(totals["pluggy"]) / 1000))
    print("  import ftcore  %7.2f ms  (fastest run %.2f ms)" % (ft, min(totals["ftcore"]) / 1000))
    print(
        "  ftcore - pluggy: %.2f ms (budget %.1f ms: %s)"
        % (ft - pg, BUDGET_MS, "ok" if ft - pg <= BUDGET_MS else "OVER")
    )

    extra = {
        name: statistics.median(us)
        for name, us in selfs["ftcore"].items()
        if name not in selfs["pluggy"]
    }
    print(
        "\nmodules ftcore imports beyond pluggy (median self time; %d modules, %.2f ms):"
        % (len(extra), sum(extra.values()) / 1000)
    )
    for name, us in sorted(extra.items(), key=lambda item: -item[1])[: args.top]:
        print("  %7.2f ms  %s" % (us / 1000, name))
    return 0 if ft - pg <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
