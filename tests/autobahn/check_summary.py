"""Hold an Autobahn run to our bar: every case OK or INFORMATIONAL, none missing.

    python tests/autobahn/check_summary.py RUN_DIR

(run.py itself only fails on FAILED or missing cases; NON-STRICT and UNIMPLEMENTED fail here.)
"""

from __future__ import annotations

import json
import os
import sys

ACCEPTED = {"OK", "INFORMATIONAL"}


def main(run_dir: str) -> int:
    with open(os.path.join(run_dir, "summary.json")) as handle:
        result = json.load(handle)["result"]
    counts = {status: n for status, n in result["counts"].items() if n}
    print("autobahn: %d cases: %s" % (result["cases"], counts))
    bad = {status: n for status, n in counts.items() if status not in ACCEPTED}
    if bad or result["missing"]:
        print("autobahn: below the bar: %s, missing %s" % (bad, result["missing"]))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
