"""Per-runtime state kept on the Runtime under typed keys, as pytest's `Stash` does.

A module that needs state per runtime (the global socket's listeners, the TLS settings made
from the config) owns a `StashKey` and keeps its value in `runtime.stash`: the state dies with
the runtime, no module holds a dictionary keyed by runtimes, and the Runtime need not know
what the modules keep.
"""

from __future__ import annotations

from typing import Any, Dict, Generic, Optional, TypeVar

__all__ = ["Stash", "StashKey"]

T = TypeVar("T")


class StashKey(Generic[T]):
    """A key of a `Stash`, made once by the module that owns it; `T` is its value's type."""

    __slots__ = ()


class Stash:
    """Values by `StashKey`; safe from any thread (each call is one dict operation)."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: Dict[StashKey[Any], Any] = {}

    # The values are stored as Any: `StashKey[T]` types them (a typing.cast would cost two
    # calls, and `get` runs once per request).

    def get(self, key: StashKey[T]) -> Optional[T]:
        return self._values.get(key)

    def setdefault(self, key: StashKey[T], value: T) -> T:
        """The value of `key`, set to `value` if it has none yet (the first setter wins)."""
        return self._values.setdefault(key, value)
