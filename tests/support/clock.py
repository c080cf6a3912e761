"""Timeouts tested by moving a manual clock instead of sleeping and timing the sleep."""

from __future__ import annotations

from typing import Any

from ftcore.loop import ManualClock
from tests.support.waits import flush


def run_past_deadline(rt: Any, clock: ManualClock, task: Any, deadline_s: float) -> None:
    """Show that `task` is still running just before its deadline and ends once it passes.

    The loop must have started the task first (its timer is armed on the loop's clock when
    the task starts), which one `flush` of the loop guarantees."""
    flush(rt.loop)
    clock.advance(deadline_s - 0.001)
    flush(rt.loop)
    assert not task.done(), "the task ended before its deadline"
    clock.advance(0.002)
