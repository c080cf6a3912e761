"""The task lifecycle transition table (ftcore._core.state)."""

from __future__ import annotations

import itertools

import pytest

from ftcore._core.state import ENDED, IllegalTransition, State, check_transition

from .support import no_loop_thread_leak  # noqa: F401

S = State
LEGAL = {
    (S.CREATED, S.RUNNING),
    (S.CREATED, S.FAILED),
    (S.CREATED, S.ABORTED),
    (S.RUNNING, S.OPEN),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.ABORTED),
    (S.OPEN, S.SUCCEEDED),
    (S.OPEN, S.FAILED),
    (S.OPEN, S.ABORTED),
}
ALL = sorted(itertools.product(State, State), key=lambda p: (p[0].name, p[1].name))


@pytest.mark.parametrize("current,new", [p for p in ALL if p in LEGAL], ids=str)
def test_legal_transition(current: State, new: State) -> None:
    assert check_transition(current, new) is new


@pytest.mark.parametrize("current,new", [p for p in ALL if p not in LEGAL], ids=str)
def test_illegal_transition_raises(current: State, new: State) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, new)
    assert current.name in str(info.value) and new.name in str(info.value)


def test_ended_states_are_terminal() -> None:
    assert ENDED == {S.SUCCEEDED, S.FAILED, S.ABORTED}
    for end in ENDED:
        for new in State:
            with pytest.raises(IllegalTransition):
                check_transition(end, new)


def test_illegal_transition_is_a_runtime_error() -> None:
    assert issubclass(IllegalTransition, RuntimeError)
