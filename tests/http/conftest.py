"""Fixtures for the request tests: a private Runtime per test, closed (and checked) after it."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import ftcore
from tests.http.helpers import ftcore_threads


@pytest.fixture
def make_runtime() -> Iterator[Callable[..., ftcore.Runtime]]:
    """`make_runtime(config=None) -> Runtime` (entry points off); closed at teardown."""
    runtimes: List[ftcore.Runtime] = []

    def make(config: Optional[Dict[str, Any]] = None, **kwargs: Any) -> ftcore.Runtime:
        rt = ftcore.Runtime(config=config, entrypoints=False, **kwargs)
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
