"""The one JSON schema every bench script writes (`--json PATH`) and bench/report.py reads.

A script collects its measurements per workload, then writes one file:

    results = Results("udp", "UDP", quick=args.quick, server="C echo")
    echo = results.workload("64 B echo", "round trips/s", peer="blocking", pinning=ONE_CPU)
    echo.peer("blocking", CALLER, rates["blocking"])
    echo.ours("ftcore", CALLBACKS, rates["ftcore"], goals=[Goal("blocking", ratio=1.0)])
    results.write(args.json)

Each row of the file holds the workload, the contender, its calling style, the unit, the
median and the number of runs (with every sample), the ratio to the workload's named peer and
to its best peer (above 1 always means ftcore does better: rates are divided by the peer's,
times divide the peer's), each goal with its verdict, and the pinning. The ratios and verdicts
are computed here, once, so the printed tables, the docs and the chart cannot disagree.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

SCHEMA = 1
CALLBACKS = "callbacks"  # the library's loop drives it; the next send comes from the handler
CALLER = "caller's thread"  # the caller's own thread sends, then blocks for the answer
NO_STYLE = "-"  # bulk transfers and other rows where the calling style does not apply
ONE_CPU = "client and server on CPU 0"
SPLIT = "client on CPU 0, server on CPU 1"
UNPINNED = "not pinned"


@dataclass(frozen=True)
class Goal:
    """One goal of a row, relative to a peer of the same workload or absolute.

    `ratio`: at least this many times the peer (in the "better" sense of the unit);
    `extra`: at most the peer plus this much, in the row's unit (a time);
    `limit`: at least (rates) or at most (times) this value, no peer needed.
    """

    peer: Optional[str] = None
    ratio: Optional[float] = None
    extra: Optional[float] = None
    limit: Optional[float] = None

    def describe(self, unit: str, higher_is_better: bool) -> str:
        if self.ratio is not None:
            return "≥ %.2f× %s" % (self.ratio, self.peer)
        if self.extra is not None:
            return "≤ %s + %g %s" % (self.peer, self.extra, unit)
        return "%s %g %s" % ("≥" if higher_is_better else "≤", self.limit, unit)

    def met(self, mine: float, peer: Optional[float], higher_is_better: bool) -> Optional[bool]:
        """The verdict, or None when the peer it names was not measured."""
        if self.limit is not None:
            return mine >= self.limit if higher_is_better else mine <= self.limit
        if peer is None:
            return None
        if self.extra is not None:
            return mine <= peer + self.extra
        assert self.ratio is not None
        return better(mine, peer, higher_is_better) >= self.ratio


def better(mine: float, theirs: float, higher_is_better: bool) -> float:
    """How many times better `mine` is than `theirs` (above 1: better)."""
    if higher_is_better:
        return mine / theirs if theirs else float("inf")
    return theirs / mine if mine else float("inf")


@dataclass
class _Row:
    contender: str
    style: str
    samples: List[float]
    ours: bool
    goals: Sequence[Goal]
    extra: Dict[str, float]


@dataclass
class Workload:
    """The rows of one measurement: every contender measured the same way, side by side."""

    name: str
    unit: str
    named_peer: Optional[str]  # the contender every row's "ratio" is taken to
    higher_is_better: bool
    pinning: str
    note: str
    rows: List[_Row] = field(default_factory=list)

    def ours(
        self,
        contender: str,
        style: str,
        samples: Sequence[float],
        goals: Sequence[Goal] = (),
        **extra: float,
    ) -> None:
        """A row of ftcore's: charted, with its goals judged."""
        self._add(_Row(contender, style, list(samples), True, goals, extra))

    def peer(self, contender: str, style: str, samples: Sequence[float], **extra: float) -> None:
        """A reference row, named by its contender in ratios and goals."""
        self._add(_Row(contender, style, list(samples), False, (), extra))

    def _add(self, row: _Row) -> None:
        if not row.samples:
            raise ValueError("%s: %s has no samples" % (self.name, row.contender))
        if not row.ours and any(r.contender == row.contender for r in self.rows if not r.ours):
            raise ValueError("%s: two peers named %s" % (self.name, row.contender))
        self.rows.append(row)

    def to_json(self) -> List[Dict[str, Any]]:
        peers = {row.contender: statistics.median(row.samples) for row in self.rows if not row.ours}
        pick = max if self.higher_is_better else min
        best = pick(peers, key=peers.__getitem__) if peers else None
        out = []
        for row in self.rows:
            median = statistics.median(row.samples)
            goals = [
                {
                    "text": goal.describe(self.unit, self.higher_is_better),
                    "peer": goal.peer,
                    "ratio": goal.ratio,
                    "extra": goal.extra,
                    "limit": goal.limit,
                    "met": goal.met(median, peers.get(goal.peer or ""), self.higher_is_better),
                }
                for goal in row.goals
            ]
            verdicts = [goal["met"] for goal in goals]
            out.append({
                "workload": self.name,
                "contender": row.contender,
                "style": row.style,
                "ours": row.ours,
                "unit": self.unit,
                "higher_is_better": self.higher_is_better,
                "median": median,
                "runs": len(row.samples),
                "samples": row.samples,
                "peer": self.named_peer if self.named_peer in peers else None,
                "ratio": _ratio(median, peers.get(self.named_peer or ""), self.higher_is_better),
                "round_ratio": self._round_ratio(row),
                "best_peer": best,
                "best_ratio": _ratio(median, peers.get(best or ""), self.higher_is_better),
                "goals": goals,
                "met": None if not goals or None in verdicts else all(verdicts),
                "pinning": self.pinning,
                "note": self.note,
                "extra": row.extra,
            })  # fmt: skip
        return out

    def _round_ratio(self, row: _Row) -> Optional[float]:
        """The median of the per-round ratios to the named peer (rounds are interleaved, so
        sample i of each row comes from round i): steadier than the ratio of the medians when
        the machine's load drifts between rounds."""
        named = [r for r in self.rows if not r.ours and r.contender == self.named_peer]
        theirs = named[0] if named else None
        if theirs is None or len(theirs.samples) != len(row.samples):
            return None
        pairs = zip(row.samples, theirs.samples)
        return statistics.median(better(m, t, self.higher_is_better) for m, t in pairs)

    def print(self) -> None:
        """The rows as a plain table on stdout, from the same figures as the JSON."""
        rows = self.to_json()
        runs = sorted({row["runs"] for row in rows})
        print(
            "\n%s, %s (%s; medians of %s runs)"
            % (self.name, self.unit, self.pinning, "/".join(map(str, runs)))
        )
        print(
            "  %-40s %-16s %12s %8s %7s %8s  %s"
            % ("contender", "style", "median", "ratio", "round", "vs best", "goal")
        )
        for row in rows:
            goals = "; ".join(
                "%s %s" % (g["text"], {True: "met", False: "MISSED", None: "?"}[g["met"]])
                for g in row["goals"]
            )
            extra = "  ".join("%s %.4g" % kv for kv in row["extra"].items())
            print(
                (
                    "  %-40s %-16s %12s %8s %7s %8s  %s"
                    % (
                        row["contender"],
                        row["style"],
                        _figure(row["median"]),
                        _times(row["ratio"]),
                        _times(row["round_ratio"]),
                        _times(row["best_ratio"]),
                        "  ".join(part for part in (goals, extra) if part),
                    )
                ).rstrip()
            )
        if self.named_peer:
            print("  ratio: to %s; above 1 is better" % self.named_peer)


def _figure(value: float) -> str:
    return "%.0f" % value if abs(value) >= 100 else "%.3g" % value


def _times(value: Optional[float]) -> str:
    return "-" if value is None else "%.2fx" % value


def _ratio(mine: float, peer: Optional[float], higher_is_better: bool) -> Optional[float]:
    return None if peer is None else better(mine, peer, higher_is_better)


class Results:
    """Everything one script measured in one run, written as one JSON file."""

    def __init__(self, script: str, group: str, quick: bool = False, **notes: str) -> None:
        self.script = script
        self.group = group
        self.quick = quick
        self.notes = notes
        self.workloads: List[Workload] = []

    def workload(
        self,
        name: str,
        unit: str,
        peer: Optional[str] = None,
        higher_is_better: bool = True,
        pinning: str = UNPINNED,
        note: str = "",
    ) -> Workload:
        workload = Workload(name, unit, peer, higher_is_better, pinning, note)
        self.workloads.append(workload)
        return workload

    def to_json(self) -> Dict[str, Any]:
        return {
            "schema": SCHEMA,
            "script": self.script,
            "group": self.group,
            "quick": self.quick,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "machine": machine(),
            "argv": sys.argv[1:],
            "notes": self.notes,
            "rows": [row for workload in self.workloads for row in workload.to_json()],
        }

    def print(self) -> None:
        for workload in self.workloads:
            workload.print()

    def write(self, path: Optional[str]) -> None:
        """Write the file when `path` is set (the scripts' `--json PATH`); None: do nothing."""
        if not path:
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_json(), handle, indent=1, ensure_ascii=False)
            handle.write("\n")


def machine() -> str:
    """The architecture, the CPU count and model, e.g. "x86_64, 2 CPUs, Intel Xeon ..."."""
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [platform.machine(), "%d CPUs" % (os.cpu_count() or 0)]
    return ", ".join(parts + ([model] if model else []))


def add_arguments(parser: Any) -> None:
    """`--json PATH` and `--quick`, the same in every script."""
    parser.add_argument("--json", metavar="PATH", help="also write the rows to PATH as JSON")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
