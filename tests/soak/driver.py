"""The campaign's driver: tasks launched at a steady rate on rotating runtimes, chaos
scheduled on the caller thread, runtimes closed at random moments and judged once closed.

Why a driver thread of its own: the caller side of the API (launching, `abort()`, `close()`
from a thread that is not the loop) is half of what the soak exercises; each runtime's
`close()` runs on a thread of its own, so launching goes on meanwhile.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import os
import random
import shutil
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import ftcore
from tests.soak import probes
from tests.soak.http_tasks import start_http
from tests.soak.ledger import REFUSED, Record, Tally
from tests.soak.peers import Addresses
from tests.soak.scenarios import Env, Slot, make_sources
from tests.soak.socket_tasks import start_socket, start_udp
from tests.soak.targets import (
    DOWNLOAD_MAX_BYTES,
    UPLOAD_SIZES,
    download_targets,
    request_targets,
    socket_targets,
    udp_targets,
    upload_targets,
)

# The mix. TCP (ft.createTCPSocket, API.md §9) joins here when it lands: a weight and a
# start_tcp (socket_tasks.py, like start_udp: connect, write, onMessage, close), its peers
# (peers.py: an echo, and HostileServer scripts that stall or reset), its targets
# (targets.py), "tcp" in ledger.KINDS, and in Record.judge one onClose per socket, as UDP.
KINDS: Dict[str, Tuple[float, Callable[..., None]]] = {
    "request": (40, start_http),
    "download": (20, start_http),
    "upload": (15, start_http),
    "websocket": (15, start_socket),
    "udp": (10, start_udp),
}
LIVE_RUNTIMES = 2  # runtimes taking tasks at any moment; each is replaced when closed
MIN_LIFE_S = 3.0
MAX_IN_FLIGHT = 64  # tasks not yet done, over every runtime
OVERDUE_S = 20.0  # a task still running this long after launch is stuck (timeouts are <= 2.5 s)
STRAY_S = 5.0  # a file no finished download explains, older than any download can be
CLOSE_HANG_S = 60.0  # a runtime's close() taking longer is a hang


class Campaign(Env):
    """Launches tasks at a steady rate on rotating runtimes, with chaos, for `seconds`."""

    def __init__(self, peers: Addresses, workdir: str, seconds: float, tasks: int,
                 seed: int) -> None:
        self.workdir = workdir
        self.seconds = seconds
        self.task_goal = tasks
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.targets: Dict[str, List[Any]] = {
            "request": request_targets(peers),
            "download": download_targets(peers),
            "upload": upload_targets(peers),
            "websocket": socket_targets(peers),
            "udp": udp_targets(peers),
        }
        self.runtime_figures: List[Dict[str, Any]] = []
        self.hung: Optional[str] = None
        self._lock = threading.Lock()
        self._launched = 0
        self._in_flight = 0
        self._seq = itertools.count(1)
        self._runtime_seq = itertools.count(1)
        self._slots: List[Slot] = []  # taking tasks
        self._closers: List[Tuple[threading.Thread, int, float]] = []  # (thread, runtime, began)
        self._actions: List[Tuple[float, int, Callable[[], None]]] = []  # a heap
        self._overdue_seen: set = set()

    # -- Env: what scenarios call ---------------------------------------------------------

    def schedule(self, delay_s: float, action: Callable[[], None]) -> None:
        with self._lock:
            heapq.heappush(self._actions, (time.monotonic() + delay_s, next(self._seq), action))

    def random_live(self, slot: Slot, rng: Any, same_runtime: bool) -> Optional[Record]:
        pool = [slot] if same_runtime else [s for s in list(self._slots) if s is not slot]
        records = [r for s in pool for r in list(s.live.values())]
        return rng.choice(records) if records else None

    def follow_up(self, slot: Slot, rng: Any) -> None:
        self.tally.count("new task launched from a complete callback")
        self.launch(slot, random.Random(rng.getrandbits(64)))

    # -- launching ------------------------------------------------------------------------

    def launch(self, slot: Slot, rng: random.Random) -> None:
        kind = _weighted(rng, list(KINDS), [weight for weight, _ in KINDS.values()])
        targets = self.targets[kind]
        target = _weighted(rng, targets, [t.weight for t in targets])
        record = Record(next(self._seq), kind, target.name, functools.partial(self._done, slot))
        with self._lock:
            self._launched += 1
            self._in_flight += 1
        slot.records.append(record)
        slot.live[record.seq] = record
        try:
            KINDS[kind][1](self, slot, record, target, rng)
        except Exception as error:  # noqa: BLE001  (sorted out below)
            if not (isinstance(error, RuntimeError) and slot.rt.closed):
                record.problem("launching raised (%r)" % error)
            if record.task is None:  # the API call itself refused: no task exists
                record.outcome = REFUSED
            record.finish()

    def _done(self, slot: Slot, record: Record) -> None:
        slot.live.pop(record.seq, None)
        with self._lock:
            self._in_flight -= 1

    # -- the run --------------------------------------------------------------------------

    def run(self) -> None:
        start = time.monotonic()
        end = start + self.seconds
        next_chores = start
        while not self.hung:
            now = time.monotonic()
            if now >= end:
                break
            self._rotate(now)
            self._run_due(now)
            with self._lock:
                quota = int(self.task_goal * (now - start) / self.seconds) - self._launched
                room = MAX_IN_FLIGHT - self._in_flight
            for _ in range(max(0, min(quota, room))):
                slot = self.rng.choice(self._slots)
                self.launch(slot, random.Random(self.rng.getrandbits(64)))
            if now >= next_chores:
                next_chores = now + 1.0
                self._watch(now)
            time.sleep(0.002)
        for slot in list(self._slots):  # the last closes land wherever the tasks are
            self._close_later(slot)
        self._slots.clear()
        with self._lock:
            self._actions.clear()
        for thread, index, _ in self._closers:
            thread.join(CLOSE_HANG_S)
            if thread.is_alive():
                self.hung = "runtime %d: close() still running after %ds" % (index, CLOSE_HANG_S)
                return

    def _rotate(self, now: float) -> None:
        for slot in [s for s in self._slots if now >= s.close_at]:
            self._slots.remove(slot)
            self._close_later(slot)
        while len(self._slots) < LIVE_RUNTIMES:
            self._slots.append(self._open_runtime(now))

    def _run_due(self, now: float) -> None:
        while True:
            with self._lock:
                if not self._actions or self._actions[0][0] > now:
                    return
                action = heapq.heappop(self._actions)[2]
            action()

    def _watch(self, now: float) -> None:
        """Once a second: a closer that hangs, a task that outlived every timeout."""
        self._closers = [c for c in self._closers if c[0].is_alive()]
        for _, index, began in self._closers:
            if now - began > CLOSE_HANG_S:
                self.hung = "runtime %d: close() still running after %ds" % (index, CLOSE_HANG_S)
        for slot in list(self._slots):
            for record in list(slot.live.values()):
                if now - record.born > OVERDUE_S and record.seq not in self._overdue_seen:
                    self._overdue_seen.add(record.seq)
                    self.tally.add_problem("runtime %d %r: still running after %ds" % (
                        slot.index, record, OVERDUE_S))
            self._look_for_strays(slot, now)

    def _look_for_strays(self, slot: Slot, now: float) -> None:
        """A file in the sandbox that no success explains is a download in flight, or what a
        failed one left behind; once it outlives every download, it is the latter (close()
        would remove it from the temp area, and hide it)."""
        explained = slot.kept | slot.temps | {s.path for s in slot.sources}
        files = {os.path.join(slot.sandbox, f) for f in probes.leftover_files(slot.sandbox)}
        unexplained = files - explained
        for path in unexplained:
            first = slot.strays.setdefault(path, now)
            if first and now - first > STRAY_S:
                slot.strays[path] = 0.0  # reported once
                self.tally.add_problem("runtime %d: a file no download explains, for %ds (%s)" % (
                    slot.index, STRAY_S, os.path.relpath(path, slot.sandbox)))
        for path in set(slot.strays) - unexplained:
            del slot.strays[path]

    # -- runtimes -------------------------------------------------------------------------

    def _open_runtime(self, now: float) -> Slot:
        rng = self.rng
        index = next(self._runtime_seq)
        sandbox = os.path.join(self.workdir, "rt-%d" % index)
        timeout = rng.choice((800, 1500, 2500))
        config = {
            "networkTimeout": {
                key: timeout for key in ("request", "connectSocket", "uploadFile", "downloadFile")
            },
            "maxConcurrent": {"http": rng.choice((4, 10, 16)), "socket": rng.choice((5, 32))},
            "limits": {"downloadMaxBytes": DOWNLOAD_MAX_BYTES, "wsMaxMessageBytes": 2**20},
            "sandbox": sandbox,
        }
        rt = ftcore.Runtime(config=config, entrypoints=False)  # the builtin plugins only
        user = rt.env["USER_DATA_PATH"]
        slot = Slot(index, rt, sandbox, user, make_sources(user, list(UPLOAD_SIZES)))
        lifetime = rng.uniform(self.seconds / 12, self.seconds / 4)
        slot.close_at = now + max(MIN_LIFE_S, lifetime)
        _watch_loop_close(slot)
        return slot

    def _close_later(self, slot: Slot) -> None:
        thread = threading.Thread(
            target=self._close, args=(slot,), name="soak-closer-%d" % slot.index, daemon=True)
        self._closers.append((thread, slot.index, time.monotonic()))
        thread.start()

    def _close(self, slot: Slot) -> None:
        """Close the runtime (from its own thread, so the driver goes on), then judge it."""
        in_flight = len(slot.live)
        began = time.monotonic()
        slot.rt.close()
        took = time.monotonic() - began
        tally = self.tally
        for record in slot.records:
            tally.fold(record, slot.index)
        problems = []
        if any(slot.loop_at_close.values()):
            problems.append("the loop still held something at close() (%s)" % slot.loop_at_close)
        expected = {s.path for s in slot.sources} | slot.kept
        files = {os.path.join(slot.sandbox, f) for f in probes.leftover_files(slot.sandbox)}
        stray, lost = sorted(files - expected), sorted(slot.kept - files)
        if stray:
            problems.append("files in the sandbox after close() that nobody asked to keep "
                            "(%d: %s)" % (len(stray), stray[:5]))
        if lost:
            problems.append("downloaded files gone after close() (%d: %s)" % (
                len(lost), lost[:5]))
        for text in problems:
            tally.add_problem("runtime %d: %s" % (slot.index, text))
        with self._lock:
            self.runtime_figures.append({
                "index": slot.index, "tasks": len(slot.records), "in_flight": in_flight,
                "close_s": took, "kept": len(slot.kept), "loop": dict(slot.loop_at_close),
            })
        slot.records.clear()
        slot.recent.clear()
        shutil.rmtree(slot.sandbox, ignore_errors=True)


def _watch_loop_close(slot: Slot) -> None:
    """Record the loop's `pending_counts()` just before `rt.close()` closes it: `close()`
    empties the queues, so afterwards they are empty by construction."""
    loop = slot.rt.loop
    real_close = loop.close

    def close() -> None:
        slot.loop_at_close = loop.pending_counts()
        real_close()

    loop.close = close


def _weighted(rng: random.Random, items: List[Any], weights: List[float]) -> Any:
    return rng.choices(items, weights)[0]

