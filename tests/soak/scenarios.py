"""What every kind of task shares: the runtime it runs on (`Slot`), the campaign it calls back
(`Env`), and the chaos around a task's end, through the public API only.

Why: the campaign's point is what happens around the edges of a task's life: an abort from
the caller thread or from inside a listener, a runtime closed under it, a callback that calls
back into ftcore (abort another task, launch a new one, `result()` of a finished one). Each
task draws its choices from its own RNG (`rng`), seeded by the campaign's, so a seed replays
the plan (thread timing does not replay). The kinds themselves: `http_tasks`, `socket_tasks`.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Set

from ftcore import FtError
from tests.peers.http_app import pattern_bytes
from tests.soak.ledger import Record

P_CALLER_ABORT = 0.12  # abort (or close) from the driver thread at a random moment
P_TIMEOUT_OPTION = 0.3  # a per-task `timeout` instead of the runtime's networkTimeout
P_ABORT_OTHER = 0.04  # from complete: abort another live task of the same runtime
P_ABORT_OTHER_RUNTIME = 0.02  # ... of another runtime
P_FOLLOW_UP = 0.04  # from complete: launch a new task on the same runtime
P_RESULT_OF_FINISHED = 0.05  # from complete: result(0) of a finished task
TIMEOUT_MS = (300, 2000)
CALLER_ABORT_S = (0.0, 0.05, 1.5)  # now, in the first 50 ms, or in the first 1.5 s


@dataclass
class Source:
    """A file the campaign put in a runtime's USER_DATA_PATH for uploadFile."""

    path: str
    size: int
    sha256: str


def make_sources(user_dir: str, sizes: List[int]) -> List[Source]:
    sources = []
    for size in sizes:
        data = pattern_bytes(size, size)
        path = os.path.join(user_dir, "upload-%d.bin" % size)
        with open(path, "wb") as out:
            out.write(data)
        sources.append(Source(path, size, hashlib.sha256(data).hexdigest()))
    return sources


@dataclass
class Slot:
    """One runtime of the campaign and what the scenarios need of it."""

    index: int
    rt: Any
    sandbox: str
    user: str
    sources: List[Source]
    live: Dict[int, Record] = field(default_factory=dict)  # not yet done
    records: List[Record] = field(default_factory=list)  # judged when the runtime is closed
    recent: Deque[Any] = field(default_factory=lambda: deque(maxlen=8))  # completed tasks
    kept: Set[str] = field(default_factory=set)  # files the campaign asked ftcore to keep
    temps: Set[str] = field(default_factory=set)  # tempFilePaths (removed by close())
    strays: Dict[str, float] = field(default_factory=dict)  # unexplained file -> first seen
    close_at: float = 0.0  # when the campaign closes it (time.monotonic)
    loop_at_close: Dict[str, int] = field(default_factory=dict)  # pending_counts() then


class Env:
    """What the scenarios need from the campaign (implemented by `driver.Campaign`)."""

    tally: Any

    def schedule(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run `action` on the driver (caller) thread after `delay_s`."""
        raise NotImplementedError

    def random_live(self, slot: Slot, rng: Any, same_runtime: bool) -> Optional[Record]:
        raise NotImplementedError

    def follow_up(self, slot: Slot, rng: Any) -> None:
        """Launch one more task of a random kind on `slot` (from a callback)."""
        raise NotImplementedError


def maybe_abort_later(env: Env, record: Record, rng: Any) -> None:
    if rng.random() >= P_CALLER_ABORT:
        return
    bound = rng.choice(CALLER_ABORT_S)

    def abort() -> None:
        task = record.task
        if task is not None:
            env.tally.count("abort from the caller thread")
            task.abort()

    env.schedule(rng.uniform(0, bound), abort)


def after_complete(env: Env, slot: Slot, record: Record, rng: Any) -> None:
    """Re-entrant calls from a complete callback (API.md §11: none may deadlock)."""
    tally = env.tally
    roll = rng.random()
    if roll < P_ABORT_OTHER + P_ABORT_OTHER_RUNTIME:
        other = env.random_live(slot, rng, same_runtime=roll < P_ABORT_OTHER)
        task = other.task if other is not None else None
        if task is not None:
            same = roll < P_ABORT_OTHER
            tally.count("abort another task from complete (%s runtime)" % (
                "same" if same else "other"))
            (task.abort if hasattr(task, "abort") else task.close)()  # a UDPSocket closes
    elif roll < P_ABORT_OTHER + P_ABORT_OTHER_RUNTIME + P_FOLLOW_UP:
        env.follow_up(slot, rng)
    elif roll < P_ABORT_OTHER + P_ABORT_OTHER_RUNTIME + P_FOLLOW_UP + P_RESULT_OF_FINISHED:
        finished = [task for task in list(slot.recent) if task.done()]
        if finished:
            tally.count("result(0) of a finished task from complete")
            try:
                finished[-1].result(0)
            except FtError:
                pass
            except Exception as error:  # noqa: BLE001  (what the contract forbids: recorded)
                record.problem("result(0) of a finished task raised (%r)" % error)
    if record.task is not None:
        slot.recent.append(record.task)

