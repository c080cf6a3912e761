"""The pytest side: the `ft_mock` fixture (loaded by the ``pytest11`` entry point, or with
``-p ftcore.testing``).

For the test's duration `ft_mock.runtime` stands in for the default `ftcore.ft`, as `responses`
and `respx` stand in for the network: code that did `from ftcore import ft` at import, as
mini-program code does, is served by the mock without taking a runtime as an argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional

import pytest

from .._api.default import stand_in
from ._http import HttpMock, MockRequest
from ._tcp import TcpMock
from ._transport import MockTransport
from ._ws import WsMock

if TYPE_CHECKING:
    from .._api.runtime import Runtime

__all__ = ["FtMock", "ft_mock", "ft_mock_config"]


class FtMock:
    """What the `ft_mock` fixture gives: a `MockTransport` and runtimes served by it.

    `runtime` is made on first use with the `ft_mock_config` fixture's config (the fixture makes
    it at once: it stands in for the default `ftcore.ft` during the test); every runtime made
    here is closed when the test ends.
    """

    def __init__(self, config: Optional[Dict[str, Any]] = None) -> None:
        self.transport = MockTransport()
        self.config = config
        self._runtime: Optional["Runtime"] = None
        self._runtimes: List["Runtime"] = []

    @property
    def http(self) -> HttpMock:
        return self.transport.http

    @property
    def ws(self) -> WsMock:
        return self.transport.ws

    @property
    def tcp(self) -> TcpMock:
        return self.transport.tcp

    @property
    def requests(self) -> List[MockRequest]:
        return self.transport.requests

    @property
    def runtime(self) -> "Runtime":
        """The test's runtime, wired to the mock; the default `ftcore.ft` routes to it while
        the `ft_mock` fixture is active."""
        if self._runtime is None:
            self._runtime = self.make_runtime(self.config)
        return self._runtime

    def make_runtime(
        self,
        config: Optional[Dict[str, Any]] = None,
        *,
        plugins: Iterable[Any] = (),
        autostart: bool = True,
    ) -> "Runtime":
        """Another runtime on the same mock (closed at teardown like `runtime`)."""
        runtime = self.transport.make_runtime(config, plugins=plugins, autostart=autostart)
        self._runtimes.append(runtime)
        return runtime

    def verify(self) -> None:
        """See `MockTransport.verify`."""
        self.transport.verify()

    def close(self) -> None:
        runtimes, self._runtimes = self._runtimes, []
        for runtime in reversed(runtimes):
            runtime.close()


@pytest.fixture
def ft_mock_config() -> Optional[Dict[str, Any]]:
    """The config of ``ft_mock.runtime`` (None: the defaults). Override it to configure::

    @pytest.fixture
    def ft_mock_config():
        return {"domains": {"request": ["api.example.com"]}}
    """
    return None


@pytest.fixture
def ft_mock(ft_mock_config: Optional[Dict[str, Any]]) -> Iterator[FtMock]:
    """A `MockTransport` (``.http``, ``.ws``, ``.tcp``, ``.requests``) and ``.runtime`` wired to it,
    which also serves the default ``ftcore.ft`` until the test ends."""
    mock = FtMock(ft_mock_config)
    try:
        with stand_in(mock.runtime):
            yield mock
    finally:
        mock.close()  # after the default is routed back: nothing new reaches these runtimes
