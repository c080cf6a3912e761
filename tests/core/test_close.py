"""`Runtime.close()` from several threads at once: every caller returns only once the runtime
is closed (its loop thread gone), not just the first; a close() from inside the shutdown, on
the closing thread, returns at once."""

from __future__ import annotations

import threading
from typing import Any, List

import pytest

from ftcore import Runtime
from tests.support.runtimes import new_runtime
from tests.support.waits import WAIT, wait_until

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


def test_a_close_from_a_listener_the_shutdown_calls_returns_at_once(ws_server: Any) -> None:
    """Host-driven: the closing thread aborts an open socket itself, and its onClose listener
    (run on that thread, outside a pass) calls close() again; that call must not wait for the
    close it is part of."""
    rt: Runtime = new_runtime(autostart=False)
    ws = rt.connectSocket(url=ws_server().url)
    opened = threading.Event()
    ws.onOpen(lambda res: opened.set())
    assert wait_until(lambda: opened.is_set() or rt.loop.run_once(0.01))
    heard: List[bool] = []

    def close_again(res: Any) -> None:
        rt.close()
        heard.append(rt.closed)

    ws.onClose(close_again)
    closing = threading.Thread(target=rt.close, daemon=True)
    closing.start()
    closing.join(WAIT)
    assert not closing.is_alive(), "close() waited for itself"
    assert heard == [True]
