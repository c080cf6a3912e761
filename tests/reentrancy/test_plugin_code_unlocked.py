"""Plugin code runs with no lock of ours held: a transport factory that waits for another thread
using the runtime does not deadlock (the runtime used to make transports under its lock)."""

from __future__ import annotations

from typing import Any, List

import pytest

import ftcore
from tests.reentrancy.support import WAIT, close_bounded, run_bounded

pytestmark = pytest.mark.timeout(60)


class _WaitingFactory:
    """Makes no transport (the builtin one follows) but first waits for a thread that takes
    every runtime lock a caller can reach."""

    def __init__(self) -> None:
        self.rt: Any = None
        self.made: List[str] = []

    def _wait_for_another_thread(self, kind: str) -> None:
        rt = self.rt

        def use() -> None:
            rt.live_tasks()
            rt.addInterceptor("no-such-api", {})
            rt.removeInterceptor("no-such-api")

        run_bounded(use, WAIT, "a thread using the runtime while its %s transport is made" % kind)
        self.made.append(kind)

    @ftcore.hookimpl
    def ftcore_http_transport_make(self, runtime: Any) -> None:
        self._wait_for_another_thread("http")

    @ftcore.hookimpl
    def ftcore_udp_transport_make(self, runtime: Any) -> None:
        self._wait_for_another_thread("udp")


def test_a_transport_factory_may_wait_for_a_thread_that_uses_the_runtime(http_server: Any) -> None:
    factory = _WaitingFactory()
    rt = factory.rt = ftcore.Runtime(entrypoints=False, plugins=[factory])
    try:
        res = run_bounded(
            lambda: rt.request(url=http_server.url + "/echo").result(WAIT), 2 * WAIT, "request"
        )
        assert res["statusCode"] == 200
        udp = run_bounded(rt.createUDPSocket, 2 * WAIT, "createUDPSocket")  # the caller's thread
        udp.close()
        assert factory.made == ["http", "udp"]
    finally:
        close_bounded(rt)
