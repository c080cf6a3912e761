"""`Runtime.close()` from several threads at once: every caller returns only once the runtime
is closed (its loop thread gone), not just the first."""

from __future__ import annotations

import threading
from typing import List

import pytest

from ftcore import Runtime
from tests.support.runtimes import new_runtime
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(60)


def test_a_close_racing_another_returns_once_the_runtime_is_closed() -> None:
    rt: Runtime = new_runtime()
    in_shutdown = threading.Event()
    leave_shutdown = threading.Event()

    def slow_close() -> None:  # on the loop thread, inside the first close's shutdown
        in_shutdown.set()
        leave_shutdown.wait(WAIT)

    rt.loop.call_soon_threadsafe(slow_close)
    first = threading.Thread(target=rt.close)
    first.start()
    assert in_shutdown.wait(WAIT)
    returned: List[bool] = []
    second = threading.Thread(target=lambda: returned.append(rt.close() is None))
    second.start()
    second.join(0.2)
    assert second.is_alive() and not returned  # waits for the first close
    leave_shutdown.set()
    second.join(WAIT)
    assert returned == [True]
    assert rt.closed and rt._thread is not None and not rt._thread.is_alive()
    first.join(WAIT)
    assert not first.is_alive()
