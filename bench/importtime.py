"""What `import ftcore` and the first use of `ft` cost beside `import pluggy`.

    python bench/importtime.py [--runs 15] [--top 12] [--quick] [--json PATH]

Import: runs ``python -X importtime -c "import ftcore"``, ``-c "import pluggy"`` and
``-c "import urllib3"`` in fresh subprocesses, alternating, and prints the medians of the
cumulative import time of the top-level module (goal: ftcore <= pluggy + 6 ms), then the
modules ftcore imports that pluggy does not, by median self time.

First use of `ft` (issue 15: at most pluggy + 10 ms): the wall time of ``import ftcore;
ftcore.ft`` (the default runtime made: the entry-point scan, the builtin plugins, the loop
thread started) beside ``import pluggy``, timed the same way with `perf_counter` in fresh
subprocesses, alternating.
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
sys.path.insert(0, ROOT)

from bench.results import NO_STYLE, UNPINNED, Goal, Results, add_arguments  # noqa: E402

BUDGET_MS = 6.0
FIRST_USE_BUDGET_MS = 10.0
FIRST_USE = {  # timed with perf_counter inside a fresh interpreter
    "pluggy": "import pluggy",
    "ftcore": "import ftcore; ftcore.ft",
}


def _env(pycache: str) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, os.path.join(ROOT, "plugins")])
    # Bytecode for everyone, kept out of the source tree: without it ftcore (a source tree)
    # would be compiled on every run while pluggy (installed) loads its .pyc files.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    env.pop("PYTHONSTARTUP", None)
    return env


def first_use(name: str, pycache: str) -> float:
    """Milliseconds of `FIRST_USE[name]` in one fresh interpreter."""
    code = "import time; t = time.perf_counter(); %s; print(time.perf_counter() - t)"
    proc = subprocess.run(
        [sys.executable, "-c", code % FIRST_USE[name]],
        env=_env(pycache),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(proc.stdout.split()[-1]) * 1000


def importtime(module: str, pycache: str) -> Tuple[float, Dict[str, int]]:
    """(cumulative µs of `module`, {imported module: self µs}) from one fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import " + module],
        env=_env(pycache),
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
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.runs = min(args.runs, 5)
    with tempfile.TemporaryDirectory(prefix="ftcore-importtime-") as pycache:
        return report(args, pycache)


def report(args: argparse.Namespace, pycache: str) -> int:
    modules = ("ftcore", "pluggy", "urllib3")
    totals: Dict[str, List[float]] = {module: [] for module in modules}
    selfs: Dict[str, Dict[str, List[int]]] = {module: {} for module in modules}
    firsts: Dict[str, List[float]] = {name: [] for name in FIRST_USE}
    for _ in range(2):  # fill the bytecode cache, warm the OS caches
        for module in modules:
            importtime(module, pycache)
        for name in FIRST_USE:
            first_use(name, pycache)
    for run in range(args.runs):
        for module in modules if run % 2 == 0 else modules[::-1]:
            total, own = importtime(module, pycache)
            totals[module].append(total / 1000)
            for name, us in own.items():
                selfs[module].setdefault(name, []).append(us)
        for name in FIRST_USE if run % 2 == 0 else list(FIRST_USE)[::-1]:
            firsts[name].append(first_use(name, pycache))

    ft = statistics.median(totals["ftcore"])
    pg = statistics.median(totals["pluggy"])
    print(
        "python %s, %d runs each, medians of the cumulative import time"
        % (sys.version.split()[0], args.runs)
    )
    for module in ("pluggy", "urllib3", "ftcore"):
        print(
            "  import %-8s %7.2f ms  (fastest run %.2f ms)"
            % (module, statistics.median(totals[module]), min(totals[module]))
        )
    print(
        "  ftcore - pluggy: %.2f ms (budget %.1f ms: %s)"
        % (ft - pg, BUDGET_MS, "ok" if ft - pg <= BUDGET_MS else "OVER")
    )
    first, first_pg = (statistics.median(firsts[name]) for name in ("ftcore", "pluggy"))
    print(
        "  first use of ft (import ftcore; ftcore.ft): %.2f ms, import pluggy %.2f ms: "
        "+%.2f ms (budget %.1f ms: %s)"
        % (
            first,
            first_pg,
            first - first_pg,
            FIRST_USE_BUDGET_MS,
            "ok" if first - first_pg <= FIRST_USE_BUDGET_MS else "OVER",
        )
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

    results = Results("importtime", "Import", quick=args.quick)
    imports = results.workload(
        "import",
        "ms",
        peer="pluggy",
        higher_is_better=False,
        pinning=UNPINNED,
        note="Cumulative, from python -X importtime",
    )
    imports.peer("pluggy", NO_STYLE, totals["pluggy"])
    imports.peer("urllib3", NO_STYLE, totals["urllib3"])
    imports.ours("ftcore", NO_STYLE, totals["ftcore"], goals=[Goal("pluggy", extra=BUDGET_MS)])
    uses = results.workload(
        "first use of ft",
        "ms",
        peer="pluggy",
        higher_is_better=False,
        pinning=UNPINNED,
        note="Wall time of import ftcore, then the "
        "default runtime made; pluggy: import pluggy, timed the same way",
    )
    uses.peer("pluggy", NO_STYLE, firsts["pluggy"])
    uses.ours(
        "ftcore.ft", NO_STYLE, firsts["ftcore"], goals=[Goal("pluggy", extra=FIRST_USE_BUDGET_MS)]
    )
    results.write(args.json)
    return 0  # the verdicts are in the table (and the JSON): a missed budget is a finding


if __name__ == "__main__":
    sys.exit(main())
