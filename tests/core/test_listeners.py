"""The listener registry: a backlog for one event name never touches the others."""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from ftcore._core.listeners import Listeners


def test_an_unheard_name_leaves_other_names_on_the_direct_path() -> None:
    scheduled: List[Callable[..., Any]] = []
    reg = Listeners(lambda fn, *args: scheduled.append(lambda: fn(*args)))
    got: List[Dict[str, Any]] = []
    reg.emit("HeadersReceived", {"n": 0})  # nobody listens: kept
    reg.add("Message", got.append)
    reg.emit("Message", {"n": 1})
    assert got == [{"n": 1}] and not scheduled  # delivered at once, nothing replayed
    late: List[Dict[str, Any]] = []
    reg.add("HeadersReceived", late.append)
    reg.emit("HeadersReceived", {"n": 2})  # waits behind the pending replay, in order
    assert late == []
    for run in scheduled:
        run()
    assert late == [{"n": 0}, {"n": 2}]
    reg.emit("HeadersReceived", {"n": 3})
    assert late[-1] == {"n": 3}


def test_interrupt_stops_the_dispatch_under_way_only() -> None:
    reg = Listeners(lambda fn, *args: fn(*args))
    heard: List[str] = []
    reg.add("Message", lambda res: (heard.append("first"), reg.interrupt()))
    reg.add("Message", lambda res: heard.append("second"))
    reg.emit("Message", {})
    assert heard == ["first"]  # the first ended its task: the second never hears that event
    reg.emit("Message", {})
    assert heard == ["first", "first"]  # a new dispatch starts afresh
