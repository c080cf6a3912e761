"""The campaign's figures and verdict: printed as they are known, failures collected.

Why: a soak that fails must say what failed and how to replay it; one that passes must
still show its figures (they go into the issue's note).
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from typing import Any, Dict, List

from tests.soak import probes
from tests.soak.ledger import FAILURE, KINDS, REFUSED, SUCCESS

MIB = probes.MIB


class Report:
    """Prints each phase's figures as it ends; `verdict()` lists what failed."""

    def __init__(self, args: argparse.Namespace, rss_limit: int) -> None:
        self.args = args
        self.rss_limit = rss_limit
        self.failures: List[str] = []
        self.fds_before = 0
        self.threads_before: List[str] = []

    def fail(self, text: str) -> None:
        self.failures.append(text)

    # -- phases -----------------------------------------------------------------------------

    def warm_up(self, campaign: Any) -> None:
        tally = campaign.tally
        print("warm-up: %d tasks, %d problems" % (sum(tally.launched.values()),
                                                   tally.problem_count))
        self._problems("warm-up", tally)

    def baseline(self) -> None:
        self.fds_before = probes.settle(probes.fd_count, lambda n: True)
        self.threads_before = probes.thread_names()

    def hang(self, campaign: Any) -> None:
        print("HANG: %s (stacks above); seed %d" % (campaign.hung, self.args.seed))
        self._problems("before the hang", campaign.tally)

    def run(self, campaign: Any, elapsed: float, trend: Dict[str, Any],
            peer_problems: List[str]) -> None:
        tally = campaign.tally
        launched = sum(tally.launched.values())
        print("\n== run: %d tasks in %.1f s (%.1f/s; goal %d), %d runtimes, seed %d ==" % (
            launched, elapsed, launched / elapsed, campaign.task_goal,
            len(campaign.runtime_figures), self.args.seed))
        if launched < campaign.task_goal * 0.9:
            print("   note: fewer tasks than the goal: the peers or the machine were the limit")
        self._kinds(tally)
        self._chaos(tally)
        self._runtimes(campaign.runtime_figures)
        self._rss(trend)
        print("peers: %s" % ("stopped cleanly" if not peer_problems else peer_problems))
        for text in peer_problems:
            self.fail("peer: %s" % text)
        self._problems("run", tally)

    def after(self, private_tmp: str) -> None:
        fds = probes.settle(probes.fd_count, lambda n: n <= self.fds_before)
        threads = probes.settle(
            probes.thread_names, lambda names: not Counter(names) - Counter(self.threads_before))
        extra_threads = sorted((Counter(threads) - Counter(self.threads_before)).elements())
        temp = probes.leftover_files(private_tmp)
        print("fds:     before %d, after %d" % (self.fds_before, fds))
        print("threads: before %d, after %d %s" % (
            len(self.threads_before), len(threads), extra_threads or ""))
        print("temp:    %d file(s) left in the private TMPDIR %s" % (len(temp), temp[:5] or ""))
        if fds > self.fds_before:
            self.fail("%d file descriptor(s) leaked" % (fds - self.fds_before))
        if extra_threads:
            self.fail("threads leaked: %s" % extra_threads)
        if temp:
            self.fail("temp files leaked: %s" % temp[:10])

    def logs(self, logs: probes.LogWatch, resource_warnings: List[str]) -> None:
        print("ftcore log: %d error(s), %d warning(s)" % (
            logs.errors(), sum(n for (level, _), n in logs.counts.items() if level == "WARNING")))
        for (level, text), n in logs.counts.most_common(8):
            print("   %5d %-7s %s" % (n, level, text))
        for (level, text), trace in list(logs.examples.items())[:3]:
            print("   first %s %r:\n%s" % (level, text, _indent(trace)))
        if logs.errors():
            self.fail("ftcore logged %d error(s)" % logs.errors())
        print("ResourceWarnings: %d %s" % (len(resource_warnings), resource_warnings[:3] or ""))
        if resource_warnings:
            self.fail("%d ResourceWarning(s) (unclosed sockets or files)" % len(resource_warnings))

    def verdict(self) -> int:
        if not self.failures:
            print("\nPASS (seed %d)" % self.args.seed)
            return 0
        print("\nFAIL (seed %d): %d check(s) failed" % (self.args.seed, len(self.failures)))
        for text in self.failures:
            print(" - " + text)
        print("replay: python -m tests.soak.campaign --seed %d --seconds %g" % (
            self.args.seed, self.args.duration))
        return 1

    # -- sections ---------------------------------------------------------------------------

    def _kinds(self, tally: Any) -> None:
        print("%-10s %7s %7s %7s %7s   top failure reasons" % (
            "kind", "tasks", "ok", "fail", "refused"))
        for kind in KINDS:
            outcomes = {o: tally.outcomes[kind, o] for o in (SUCCESS, FAILURE, REFUSED)}
            if kind == "udp":
                outcomes[SUCCESS] = tally.outcomes[kind, "closed"]
            reasons = Counter({r: n for (k, r), n in tally.reasons.items() if k == kind})
            top = ", ".join("%s %d" % item for item in reasons.most_common(4))
            print("%-10s %7d %7d %7d %7d   %s" % (
                kind, tally.launched[kind], outcomes[SUCCESS], outcomes[FAILURE],
                outcomes[REFUSED], top))
        print("   (udp: ok = closed; websocket: ok = connectSocket success)")
        if self.args.verbose:
            for (kind, target, outcome), n in sorted(tally.targets.items()):
                print("   %-9s %-20s %-9s %6d" % (kind, target, outcome, n))
        for name, n in sorted(tally.figures.items()):
            print("   %-40s %7d" % (name, n))

    def _chaos(self, tally: Any) -> None:
        print("chaos:")
        for name, n in sorted(tally.actions.items()):
            print("   %-50s %6d" % (name, n))

    def _runtimes(self, figures: List[Dict[str, Any]]) -> None:
        if not figures:
            return
        close_ms = [f["close_s"] * 1000 for f in figures]
        in_flight = [f["in_flight"] for f in figures]
        print("runtimes: %d closed; tasks each %d-%d; in flight at close median %d max %d; "
              "close() median %.0f ms max %.0f ms" % (
                  len(figures), min(f["tasks"] for f in figures),
                  max(f["tasks"] for f in figures), statistics.median(in_flight),
                  max(in_flight), statistics.median(close_ms), max(close_ms)))
        print("sandboxes after close(): checked in every runtime; %d downloaded file(s) kept "
              "as asked, anything else is a problem below" % sum(f["kept"] for f in figures))
        held = [f for f in figures if any(f["loop"].values())]
        print("loop at close(): %s" % (
            "empty in every runtime (ready, timers, readers, writers)" if not held else
            "; ".join("runtime %d %s" % (f["index"], f["loop"]) for f in held)))

    def _rss(self, trend: Dict[str, Any]) -> None:
        if "mid" not in trend:
            print("RSS: %s" % trend.get("note"))
            return
        growth = trend["growth"]
        print("RSS: %d samples, min %.1f MiB, max %.1f MiB; midpoint %.1f MiB, last tenth "
              "median %.1f MiB: growth %+.1f MiB over the second half (limit %d)" % (
                  trend["count"], trend["min"] / MIB, trend["max"] / MIB, trend["mid"] / MIB,
                  trend["tail"] / MIB, growth / MIB, self.rss_limit // MIB))
        print("   curve (s, MiB, fds): %s" % "  ".join(
            "%d:%.0f/%d" % point for point in trend["curve"]))
        print("   fds during the run: max %d" % trend["fd_max"])
        if growth >= self.rss_limit:
            self.fail("RSS grew %.1f MiB over the second half" % (growth / MIB))

    def _problems(self, phase: str, tally: Any) -> None:
        if not tally.problem_count:
            return
        self.fail("%s: %d task problem(s)" % (phase, tally.problem_count))
        print("%s problems: %d, by kind (with the first few in full):" % (
            phase, tally.problem_count))
        for kind, n in tally.problem_kinds.most_common():
            print("   %6d  %s" % (n, kind))
            for text in tally.problems.get(kind, ()):
                print("             " + text)


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())
