"""The command line; the demo and subcommands arrive with the APIs they exercise."""

from __future__ import annotations

import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print("ftcore: %s: not yet" % (" ".join(args) or "no command"))
    return 0
