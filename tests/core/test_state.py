"""Lifecycles driven by their tables: random event sequences on real tasks, sockets and slots.

Each property runs a real object (a Task, a SocketTask over a scripted transport, an HTTP slot
claim) through a random sequence of what can happen to it, in any order, then ends it (the
runtime closes, the claims are released) and checks what users rely on: the object ends in
exactly one final state and stays there (the error state is sticky), success/fail and complete
run at most once (exactly once for a task that ended), a socket that was created fires onClose
exactly once, `readyState` always matches the state, and an event its table does not allow
raises `IllegalTransition` and changes nothing. The runtimes are embedded (`autostart=False`):
the test thread is the loop, so every interleaving hypothesis draws is the one that runs.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import ftcore
from ftcore import Errno, FtError, State
from ftcore._api.socket import SocketTask
from ftcore._core.slots import Claim, ClaimState, Slots
from ftcore._core.state import ENDED, SOCKET, TASK, UNSETTLED, Event, IllegalTransition, Table
from ftcore._core.task import Task

from .support import no_loop_thread_leak  # noqa: F401

EXAMPLES = settings(max_examples=100, deadline=None)


def _illegal(table: Table[Any, Any], state: Any, events: Any) -> List[Any]:
    return [event for event in events if event not in table.moves[state]]


def _assert_illegal_moves_raise(obj: Any, table: Table[Any, Any], events: Any) -> None:
    """Every event the table has no move for in the current state raises and changes nothing."""
    before = obj._state
    for illegal in _illegal(table, before, events):
        with pytest.raises(IllegalTransition):
            obj._fire(illegal)
        assert obj._state is before


class _Log:
    """Callbacks and listeners that record (name, res, the task's state and readyState then)."""

    def __init__(self, task: Callable[[], Any]) -> None:
        self._task = task
        self.calls: List[Tuple[str, Dict[str, Any], State, int]] = []

    def cb(self, name: str) -> Callable[[Dict[str, Any]], None]:
        def record(res: Dict[str, Any]) -> None:
            task = self._task()
            ready = getattr(task, "readyState", -1)
            self.calls.append((name, res, task.state, ready))

        return record

    def options(self) -> Dict[str, Any]:
        return {name: self.cb(name) for name in ("success", "fail", "complete")}

    def names(self, among: Tuple[str, ...] = ("success", "fail", "complete")) -> List[str]:
        return [call[0] for call in self.calls if call[0] in among]


def _drain(rt: ftcore.Runtime) -> None:
    for _ in range(100):
        if not rt.loop.has_ready():
            return
        rt.loop.run_once(0)
    raise AssertionError("the loop never went idle")


def _runtime(*plugins: Any) -> ftcore.Runtime:
    return ftcore.Runtime(plugins=list(plugins), entrypoints=False, autostart=False)


# -- Task ---------------------------------------------------------------------------------------


class _Scripted(Task):
    """A task whose outcome the test reports, as a transport would, once it has started."""

    api = "request"

    def __init__(self, runtime: ftcore.Runtime, options: Dict[str, Any]) -> None:
        super().__init__(runtime, options)
        self.started = False
        self.cancelled = 0
        self.moves: List[Tuple[State, Event, State]] = []

    def _fire(self, event: Event) -> State:
        before = self._state
        after = super()._fire(event)
        self.moves.append((before, event, after))
        return after

    def _start(self, options: Dict[str, Any]) -> None:
        self.started = True

    def _cancel(self) -> None:
        self.cancelled += 1


# Each step: something happens, then (True) the loop runs a pass.
TASK_STEPS = st.lists(
    st.tuples(st.sampled_from(["succeed", "fail", "abort", "illegal"]), st.booleans()),
    max_size=8,
)


@EXAMPLES
@given(
    start=st.sampled_from(["refused", "unstarted", "started", "started"]),
    steps=TASK_STEPS,
)
def test_a_task_ends_once_whatever_happens(start: str, steps: List[Tuple[str, bool]]) -> None:
    rt = _runtime()
    log = _Log(lambda: task)
    task = _Scripted(rt, log.options())
    try:
        refused = start == "refused"
        task.launch(FtError(Errno.INVALID_OPTION, "refused") if refused else None)
        if start != "unstarted":
            rt.loop.run_once(0)
        for action, then_a_pass in steps:
            state = task.state
            if action == "succeed" and task.started:  # the transport reports, on the loop
                task._succeed({"n": 1})
            elif action == "fail" and task.started:
                task._fail(FtError(Errno.NETWORK, "lost"))
            elif action == "abort":
                task.abort()
            elif action == "illegal":
                _assert_illegal_moves_raise(task, TASK, Event)
            _after_a_step(rt, "task", task, state, then_a_pass)
            assert task.state is (task.moves[-1][2] if task.moves else State.CREATED)
            _assert_settled_means_callbacks_ran(task, log)
    finally:
        rt.close()

    event("task went " + "-".join(["CREATED"] + [move[2].name for move in task.moves]))
    assert task.state in ENDED and task.done()
    assert [move[2] for move in task.moves if move[2] in ENDED] == [task.state]
    assert task.moves[-1][2] is task.state  # nothing moved after the end
    names = log.names()
    assert names in (["success", "complete"], ["fail", "complete"]), names
    assert all(call[2] is task.state for call in log.calls)  # they run once it has ended
    if task.state is State.SUCCEEDED:
        assert names[0] == "success" and task.result(0)["errMsg"] == "request:ok"
    else:
        with pytest.raises(FtError) as info:
            task.result(0)
        reason = "abort" if task.state is State.ABORTED else ("refused" if refused else "lost")
        assert names[0] == "fail" and info.value.errMsg == "request:fail " + reason
    assert task.cancelled == (1 if task.state is State.ABORTED else 0)
    assert task not in rt.live_tasks()


def _after_a_step(
    rt: ftcore.Runtime, what: str, task: Any, before: State, then_a_pass: bool
) -> None:
    """A loop pass if the step asked for one; a task or socket that had ended stays put."""
    if then_a_pass:
        rt.loop.run_once(0)
    if before in ENDED:
        assert task.state is before, "an ended %s moved" % what


def _assert_settled_means_callbacks_ran(task: Task, log: _Log) -> None:
    settled = task.state not in UNSETTLED
    assert task.done() is settled
    assert len(log.names(("complete",))) == (1 if settled else 0)


def test_a_late_outcome_changes_nothing() -> None:
    """The error state is sticky: a task that failed ignores a response arriving after."""
    rt = _runtime()
    log = _Log(lambda: task)
    task = _Scripted(rt, log.options())
    try:
        task.launch()
        _drain(rt)
        task._fail(FtError(Errno.TIMEOUT))
        task._succeed({})
        task._fail(FtError(Errno.NETWORK, "late"))
        task.abort()
        _drain(rt)
    finally:
        rt.close()
    assert task.state is State.FAILED and log.names() == ["fail", "complete"]
    assert task.moves == [
        (State.CREATED, Event.START, State.RUNNING),
        (State.RUNNING, Event.FAIL, State.FAILED),
    ]


# -- SocketTask ---------------------------------------------------------------------------------


class _Conn:
    """A `WsConnection` that keeps the transport's promises: events only on the loop, none from
    inside `connect`, `opened` at most once and first, nothing after `closed` or `abort()`."""

    def __init__(self, events: Any) -> None:
        self.events = events
        self.live = True
        self.opened = False
        self.failed = False

    def send(self, data: Any) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        pass  # the peer's answer comes as a "closed" step

    def abort(self, code: Optional[int] = None) -> None:
        self.live = False


class _Transport:
    def __init__(self) -> None:
        self.conns: List[_Conn] = []

    def connect(self, request: Any, events: Any) -> _Conn:
        conn = _Conn(events)
        self.conns.append(conn)
        return conn

    def close(self) -> None:
        pass


class _WsPlugin:
    def __init__(self, transport: _Transport) -> None:
        self.transport = transport

    @ftcore.hookimpl
    def ftcore_websocket_transport_make(self, runtime: Any) -> Any:
        return self.transport


def _report(conn: _Conn, event: str, *args: Any) -> None:
    """What the transport reports now (on the loop: the test thread), if it may by then."""
    if event == "late closed" and not conn.live:  # a sloppy transport racing abort() or
        conn.events.closed(*args)  # repeating itself: the core ignores it
        return
    event = "closed" if event == "late closed" else event
    if not conn.live or (conn.failed and event != "closed"):
        return  # nothing after closed or abort(); only closed after failed
    if event == "opened" and conn.opened or event == "message" and not conn.opened:
        return  # opened once, messages after it
    conn.opened = conn.opened or event == "opened"
    conn.failed = event == "failed"
    conn.live = event != "closed"
    getattr(conn.events, event)(*args)


# Each step: something happens, then (True) the loop runs a pass. The prefix starts the socket
# (or not) and takes half the runs to OPEN or CLOSING first, so that the late states are reached
# as often as the early ones.
SOCKET_STEPS = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(
                ["opened", "message", "message", "close", "close", "failed", "bad close"]
                + ["send", "abort", "timeout", "illegal"]
            ),
            st.tuples(
                st.sampled_from(["closed", "late closed"]),
                st.sampled_from([1000, 1002, 1006, 4000]),
            ),
        ),
        st.booleans(),
    ),
    max_size=10,
)


@EXAMPLES
@given(
    url=st.sampled_from(["ws://a.example/"] * 3 + ["http://refused/"]),
    prefix=st.sampled_from(["unstarted", "started", "open", "open, close"]),
    steps=SOCKET_STEPS,
)
def test_a_socket_ends_once_and_closes_once_if_created(
    url: str, prefix: str, steps: List[Tuple[Any, bool]]
) -> None:
    transport = _Transport()
    rt = _runtime(_WsPlugin(transport))
    log = _Log(lambda: task)
    task = rt.connectSocket(url=url, **log.options())
    assert isinstance(task, SocketTask)
    for name in ("Open", "Message", "Error", "Close"):
        getattr(task, "on" + name)(log.cb(name))
    moves: List[Tuple[State, State]] = []
    fire = task._fire

    def recording_fire(event: Event) -> State:
        before = task._state
        after = fire(event)
        moves.append((before, after))
        return after

    task._fire = recording_fire  # type: ignore[method-assign]
    try:
        if prefix != "unstarted":
            rt.loop.run_once(0)  # the loop starts it
        if prefix.startswith("open") and transport.conns:
            _report(transport.conns[0], "opened", {}, "")
            if prefix.endswith("close"):
                task.close()
                rt.loop.run_once(0)
        for action, then_a_pass in steps:
            state = task.state
            conn = transport.conns[0] if transport.conns else None
            if isinstance(action, tuple) and conn is not None:
                _report(conn, action[0], action[1], "")
            elif action == "opened" and conn is not None:
                _report(conn, "opened", {}, "")
            elif action == "message" and conn is not None:
                _report(conn, "message", "hi")
            elif action == "failed" and conn is not None:
                _report(conn, "failed", FtError(Errno.NETWORK, "lost"))
            elif action == "close":
                task.close()
            elif action == "bad close":
                task.close(code=1)  # refused: the socket stays as it was
            elif action == "send":
                task.send(data="x")
            elif action == "abort":
                task.abort()
            elif action == "timeout" and conn is not None:  # its timer fires
                task._on_timeout()
            elif action == "illegal":
                _assert_illegal_moves_raise(task, SOCKET, Event)
            _after_a_step(rt, "socket", task, state, then_a_pass)
            assert task.readyState == _ready_state(task.state)
    finally:
        rt.close()

    event("socket went " + "-".join(["CREATED"] + [after.name for _, after in moves]))
    assert task.state in ENDED and task.readyState == SocketTask.CLOSED and task.done()
    assert [after for _, after in moves if after in ENDED] == [task.state]
    assert moves[-1][1] is task.state  # nothing moved after the end
    created = any(after is State.CONNECTING for _, after in moves)
    assert url.startswith("ws:") or not created
    names = log.names()
    assert names == (["success", "complete"] if created else ["fail", "complete"]), names
    if created:
        assert log.calls[0][1]["socketTaskId"] == task.id
    closes = [call for call in log.calls if call[0] == "Close"]
    assert len(closes) == (1 if created else 0)
    # listeners saw readyState agree with the state; onClose, after the end, sees it CLOSED
    assert all(call[3] == _ready_state(call[2]) for call in log.calls if call[0][0].isupper())
    assert all(call[2] is task.state and call[3] == SocketTask.CLOSED for call in closes)
    opens = [i for i, call in enumerate(log.calls) if call[0] == "Open"]
    assert len(opens) <= 1 and all(i < log.calls.index(closes[0]) for i in opens)
    assert all(call[0] != "Message" or call[2] in (State.OPEN, State.CLOSING) for call in log.calls)
    assert task not in rt.live_tasks()


def _ready_state(state: State) -> int:
    if state in ENDED:
        return SocketTask.CLOSED
    return {State.OPEN: SocketTask.OPEN, State.CLOSING: SocketTask.CLOSING}.get(
        state, SocketTask.CONNECTING
    )


# -- HTTP slot claims ---------------------------------------------------------------------------

SLOT_ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["take", "release"]), st.integers(0, 5)),
        st.just(("pass", 0)),
    ),
    max_size=30,
)


@EXAMPLES
@given(limit=st.integers(1, 3), actions=SLOT_ACTIONS)
def test_slot_claims_start_once_in_order_and_never_leak(
    limit: int, actions: List[Tuple[str, int]]
) -> None:
    soon: List[Callable[[], Any]] = []
    slots = Slots(limit, soon.append)
    started: List[int] = []
    claims: List[Claim] = []
    for i in range(6):
        claims.append(Claim(slots, partial(started.append, i)))
    taken: List[int] = []
    waited: List[int] = []

    def run_pass() -> None:
        due, soon[:] = list(soon), []
        for fn in due:
            fn()

    for action, i in actions:
        claim = claims[i]
        if action == "pass":
            run_pass()
        elif action == "take" and i not in taken:
            taken.append(i)
            claim.take()
            if claim.state is ClaimState.WAITING:
                waited.append(i)
            else:
                assert started[-1] == i  # a free slot: it starts at once
        elif action == "release" and i in taken:
            if claim.state is ClaimState.RELEASED:
                with pytest.raises(IllegalTransition):  # released once; RELEASED is final
                    claim.release()
                assert claim.state is ClaimState.RELEASED
            else:
                claim.release()
        held = [c for c in claims if c.state is ClaimState.HELD]
        queued = [j for j in taken if claims[j].state is ClaimState.WAITING]
        assert slots.used == len(held) <= limit
        assert not queued or slots.used == limit  # nobody waits while a slot is free

    for i in taken:
        if claims[i].state is not ClaimState.RELEASED:
            claims[i].release()
    run_pass()
    assert slots.used == 0 and not soon
    assert all(claims[i].state is ClaimState.RELEASED for i in taken)
    assert all(c.state is ClaimState.WAITING for i, c in enumerate(claims) if i not in taken)
    assert len(started) == len(set(started))  # start runs at most once per claim
    late = [i for i in started if i in waited]
    assert late == [i for i in waited if i in late]  # those that waited start in their order


def test_a_claim_released_before_its_turn_never_starts() -> None:
    """A slot passed to a waiter is the waiter's at once: if its task ends before the next
    pass, releasing it passes the slot on and its start never runs."""
    soon: List[Callable[[], Any]] = []
    slots = Slots(1, soon.append)
    started: List[str] = []
    first, second, third = (Claim(slots, partial(started.append, n)) for n in "abc")
    for claim in (first, second, third):
        claim.take()
    first.release()
    assert second.state is ClaimState.HELD and started == ["a"]
    second.release()  # before its start ran: the slot goes on to the third
    for fn in soon:
        fn()
    assert started == ["a", "c"] and third.state is ClaimState.HELD and slots.used == 1


def test_a_table_refuses_a_target_without_a_row() -> None:
    with pytest.raises(ValueError, match="states without a row: OPEN"):
        Table("broken", State.CREATED, {State.CREATED: {Event.OPEN: State.OPEN}})
