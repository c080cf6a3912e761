"""The soak campaign (issue 11 §4): minutes of mixed tasks against fast and hostile loopback
peers, aborts and runtime closes at random moments, then leak and exactly-once checks.

    python -m tests.soak.campaign                  # 3 minutes, about 10,000 tasks
    python -m tests.soak.campaign --seconds 20     # the CI run
    python -m tests.soak.campaign --minutes 10 --seed 1234
    nox -s soak -- --minutes 10

Only the public API is used (ftcore.Runtime, its tasks and listeners; `rt.loop` for the
loop's leftovers). It exits 0 when every check passed, 1 with a report of what failed, 3 if
a runtime's close() hung (after dumping every thread's stack). The seed is printed first:
`--seed` replays the plan (which task, where, which aborts); thread timing does not replay.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple

if __package__ in (None, ""):  # run as a file: make `tests.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.soak import probes  # noqa: E402
from tests.soak.driver import Campaign  # noqa: E402
from tests.soak.peers import PeerProcess  # noqa: E402
from tests.soak.report import Report  # noqa: E402

DEFAULT_SECONDS = 180.0
TASKS_PER_DEFAULT_RUN = 10_000
RSS_GROWTH_LIMIT = 20 * probes.MIB


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="run this long (default 3)")
    length.add_argument("--seconds", type=float, help="run this long (the CI run: 20)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run's plan")
    parser.add_argument("--tasks", type=int, default=None,
                        help="tasks to launch (default: 10,000 per 3 minutes)")
    parser.add_argument("--verbose", action="store_true", help="also print per-target outcomes")
    args = parser.parse_args(argv)
    args.duration = args.seconds or (args.minutes * 60 if args.minutes else DEFAULT_SECONDS)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    if args.tasks is None:
        args.tasks = max(1, round(TASKS_PER_DEFAULT_RUN * args.duration / DEFAULT_SECONDS))
    return args


def run_campaign(args: argparse.Namespace, workdir: str, seconds: float, tasks: int) -> Tuple[
        Campaign, List[str]]:
    """One campaign with its own peer process; returns it and the peers' problems. After a
    hang it returns at once: the peers stay up (a hung close() may still use them)."""
    peers = PeerProcess()
    try:
        campaign = Campaign(peers.addresses, workdir, seconds, tasks, args.seed)
        campaign.run()
    except BaseException:
        peers.close()
        raise
    return campaign, [] if campaign.hung else peers.close()


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    print("soak: seed %d, %.0f s, about %d tasks (replay: python -m tests.soak.campaign "
          "--seed %d --seconds %g)" % (args.seed, args.duration, args.tasks, args.seed,
                                       args.duration), flush=True)
    faulthandler.dump_traceback_later(args.duration * 1.5 + 300, exit=True)  # a last resort
    workdir = tempfile.mkdtemp(prefix="ftcore-soak-")
    private_tmp = os.path.join(workdir, "tmp")  # ftcore's temp files, if any, land here
    os.mkdir(private_tmp)
    saved_tmpdir = os.environ.get("TMPDIR")
    tempfile.tempdir = os.environ["TMPDIR"] = private_tmp
    report = Report(args, RSS_GROWTH_LIMIT)
    try:
        with probes.LogWatch() as logs, probes.ResourceWarnings() as resource_warnings:
            warm, _ = run_campaign(args, workdir, 2.0, 60)  # loads every lazy import first
            _exit_if_hung(report, warm, workdir)
            report.warm_up(warm)
            report.baseline()
            sampler = probes.Sampler()
            began = time.monotonic()
            campaign, peer_problems = run_campaign(args, workdir, args.duration, args.tasks)
            sampler.stop()
            _exit_if_hung(report, campaign, workdir)
            report.run(campaign, time.monotonic() - began, sampler.trend(), peer_problems)
            report.after(private_tmp)
            report.logs(logs, resource_warnings.messages)
    finally:
        faulthandler.cancel_dump_traceback_later()
        tempfile.tempdir = None
        if saved_tmpdir is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_tmpdir
        shutil.rmtree(workdir, ignore_errors=True)
    return report.verdict()


def _exit_if_hung(report: Report, campaign: Campaign, workdir: str) -> None:
    """A hung close() cannot be cleaned up after: show every stack and leave at once (the
    peer process stops by itself when its stdin closes)."""
    if not campaign.hung:
        return
    faulthandler.dump_traceback(all_threads=True)
    report.hang(campaign)
    sys.stdout.flush()
    sys.stderr.flush()
    shutil.rmtree(workdir, ignore_errors=True)
    os._exit(3)


if __name__ == "__main__":
    sys.exit(main())
