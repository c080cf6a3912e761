"""Per-task bookkeeping: every callback and event a task produced, in order, and the checks.

Why: "every task completed exactly once" is checked from what the callbacks actually saw,
not from ftcore's own state. Each task has a `Record` whose `events` string grows by one
letter per callback or event; once the task's runtime is closed the record is judged, folded
into the `Tally` and dropped (records of thousands of tasks would otherwise grow the very
memory figure the campaign measures).

Letters: S success, F fail, C complete, O onOpen, M onMessage, E onError, X onClose,
L onListening.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Optional

HTTP_KINDS = ("request", "download", "upload")
KINDS = HTTP_KINDS + ("websocket", "udp")  # "tcp" when createTCPSocket lands (driver.KINDS)
SUCCESS, FAILURE, REFUSED = "success", "fail", "refused"
PROBLEM_SAMPLES = 3  # problems of one kind printed in full; the rest are only counted


def reason_of(res: Dict[str, Any]) -> str:
    """The errMsg after "<api>:fail ", without the details that vary (paths, addresses)."""
    message = str(res.get("errMsg", ""))
    reason = message.split(":fail ", 1)[1] if ":fail " in message else message
    for stop in (": ", " (", " '", ' "', " http", " ws:"):
        reason = reason.split(stop, 1)[0]
    return reason[:48] or "?"


class Record:
    """One task (or UDP socket) as the campaign saw it. Its callbacks run on one loop thread."""

    __slots__ = (
        "seq", "kind", "target", "task", "events", "res", "outcome", "reason",
        "problems", "done", "on_done", "sent", "received", "listening_off", "closed_by_us",
        "file_path", "check", "chunked", "chunks", "progress", "born",
    )

    def __init__(self, seq: int, kind: str, target: str, on_done: Callable[["Record"], None]
                 ) -> None:
        self.seq = seq
        self.kind = kind
        self.target = target
        self.task: Any = None  # dropped once done, so finished tasks are freed
        self.events = ""
        self.res: Optional[Dict[str, Any]] = None  # the success/fail dict, until complete
        self.outcome = ""
        self.reason = ""
        self.problems: List[str] = []
        self.done = False
        self.on_done = on_done
        self.sent: List[Any] = []  # WebSocket messages / UDP datagrams sent
        self.received: List[Any] = []
        self.listening_off = False  # a listener was removed on purpose: its checks are off
        self.closed_by_us = False
        self.file_path: Optional[str] = None  # downloadFile filePath, resolved
        self.check: Any = None  # what a success must carry (targets.Check)
        self.chunked = False  # enableChunked: the body comes in chunks, checked by `judge`
        self.chunks: List[bytes] = []
        self.progress = -1  # the last progress event's value
        self.born = time.monotonic()

    def __repr__(self) -> str:
        return "<%s #%d %s events=%r>" % (self.kind, self.seq, self.target, self.events)

    def problem(self, text: str) -> None:
        self.problems.append(text)

    # -- the callbacks --------------------------------------------------------------------

    def settled(self, ok: bool, res: Dict[str, Any]) -> None:
        """success (ok) or fail."""
        if self.events.count("S") + self.events.count("F"):
            self.problem("success/fail called again (events %r)" % self.events)
        if "C" in self.events:
            self.problem("success/fail after complete")
        self.events += "S" if ok else "F"
        self.res = res
        self.outcome = SUCCESS if ok else FAILURE
        self.reason = "" if ok else reason_of(res)

    def completed(self, res: Dict[str, Any]) -> None:
        if "C" in self.events:
            self.problem("complete called again")
        elif self.res is None:
            self.problem("complete before success/fail")
        elif res is not self.res:
            self.problem("complete got another dict than success/fail")
        self.events += "C"
        self.res = None

    def event(self, letter: str) -> None:
        self.events += letter
        if letter == "M" and "X" in self.events:
            self.problem("message event after onClose")

    def finish(self) -> None:
        """The task is over as far as the campaign waits for it (it still watches for more)."""
        if self.done:
            return
        self.done = True
        self.task = None
        self.sent, self.received = [], []  # checked by now; up to 64 KiB each
        self.on_done(self)

    # -- the verdict, once the runtime is closed ------------------------------------------

    def judge(self) -> None:
        events = self.events
        if self.outcome == REFUSED:
            if events:
                self.problem("callbacks ran for a task whose launch was refused (%r)" % events)
            return
        settle = "".join(letter for letter in events if letter in "SFC")
        closes = events.count("X")
        if settle not in ("SC", "FC") and self.kind != "udp":
            self.problem("success/fail then complete did not run once each (%r)" % settle)
        # A listener may be attached after success (the caller's thread is not the loop's):
        # the events it missed are replayed to it then, so these are judged at the end.
        if self.kind == "download" and settle == "SC" and not self.listening_off:
            if self.progress != 100:
                self.problem("the last progress event of a success was not 100 (%d)" % (
                    self.progress))
        if self.chunked and settle == "SC" and self.check is not None:
            trouble = self.check({"body": b"".join(self.chunks)})
            if trouble:
                self.problem("the chunks of a success are wrong (%s)" % trouble)
        self.chunks = []
        if self.kind == "websocket":
            want = 1 if settle.startswith("S") else 0
            if closes != want:
                self.problem("onClose fired the wrong number of times (%d, want %d)" % (
                    closes, want))
            if events.count("O") > 1:
                self.problem("onOpen fired more than once (%d)" % events.count("O"))
        elif self.kind == "udp":
            if settle:
                self.problem("a UDP socket got task callbacks (%r)" % settle)
            if closes != 1:
                self.problem("onClose did not fire exactly once (%d)" % closes)


class Tally:
    """What every judged record added up to; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.launched: Counter = Counter()  # kind
        self.outcomes: Counter = Counter()  # (kind, outcome)
        self.reasons: Counter = Counter()  # (kind, reason) of failures
        self.targets: Counter = Counter()  # (kind, target, outcome)
        self.actions: Counter = Counter()  # chaos actions taken, by name
        self.figures: Counter = Counter()  # other counts (messages, datagrams, bytes)
        self.problem_count = 0
        self.problem_kinds: Counter = Counter()  # the text after "runtime N <task>: "
        self.problems: Dict[str, List[str]] = {}  # kind -> the first few in full

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.actions[name] += n

    def figure(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.figures[name] += n

    def add_problem(self, text: str) -> None:
        kind = text.split(": ", 1)[-1]
        kind = kind.split(" (", 1)[0][:90]
        with self._lock:
            self.problem_count += 1
            self.problem_kinds[kind] += 1
            samples = self.problems.setdefault(kind, [])
            if len(samples) < PROBLEM_SAMPLES:
                samples.append(text)

    def fold(self, record: Record, runtime: int) -> None:
        record.judge()
        with self._lock:
            kind = record.kind
            outcome = record.outcome or "unsettled"
            self.launched[kind] += 1
            self.outcomes[kind, outcome] += 1
            self.targets[kind, record.target, outcome] += 1
            if outcome == FAILURE:
                self.reasons[kind, record.reason] += 1
        for text in record.problems:
            self.add_problem("runtime %d %r: %s" % (runtime, record, text))
