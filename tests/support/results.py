"""The one way a test takes a task's failure."""

from __future__ import annotations

from typing import Any

import pytest

from ftcore import FtError
from tests.support.waits import WAIT


def fail_of(task: Any, timeout: float = WAIT) -> FtError:
    """The `FtError` a task ended with (asserting that it failed, within `timeout`)."""
    with pytest.raises(FtError) as info:
        task.result(timeout)
    return info.value
