"""The runtime fixtures most folders use (registered for every test by tests/conftest.py).

    make_runtime(config=None, **kwargs) -> Runtime    entry points off; closed at teardown
    rt                                                one such runtime
    quiet_log                                         fails the test if ftcore logged a warning

`new_runtime(config=None, **kwargs)` makes one the test closes itself.

At teardown every runtime is closed and no ftcore thread may be left: a leaked loop or
worker thread fails the test that leaked it, not a later one.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import ftcore


def ftcore_threads() -> List[threading.Thread]:
    """Live threads started by ftcore (loop, dial and resolver workers)."""
    return [t for t in threading.enumerate() if t.name.startswith("ftcore-")]


def new_runtime(config: Optional[Dict[str, Any]] = None, **kwargs: Any) -> ftcore.Runtime:
    """A runtime with entry points off (only the builtin and the given plugins)."""
    kwargs.setdefault("entrypoints", False)
    return ftcore.Runtime(config=config, **kwargs)


@pytest.fixture
def make_runtime() -> Iterator[Callable[..., ftcore.Runtime]]:
    runtimes: List[ftcore.Runtime] = []

    def make(config: Optional[Dict[str, Any]] = None, **kwargs: Any) -> ftcore.Runtime:
        rt = new_runtime(config, **kwargs)
        runtimes.append(rt)
        return rt

    yield make
    for rt in runtimes:
        rt.close()
    leftover = ftcore_threads()
    assert not leftover, "threads left after Runtime.close(): %s" % leftover


@pytest.fixture
def rt(make_runtime: Callable[..., ftcore.Runtime]) -> ftcore.Runtime:
    return make_runtime()


@pytest.fixture
def quiet_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if ftcore logged a warning or an exception."""
    caplog.set_level(logging.WARNING, logger="ftcore")
    yield
    bad = [
        r for r in caplog.records if r.name.startswith("ftcore") and r.levelno >= logging.WARNING
    ]
    assert not bad, "ftcore logged: %r" % [r.getMessage() for r in bad]
