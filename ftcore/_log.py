"""ftcore's logger, ``logging.getLogger("ftcore")``, with `logging` imported only when
something is logged: importing it (with `traceback`, `string` and `textwrap`) costs more than the
rest of making a runtime, and a runtime working as it should logs nothing."""

from __future__ import annotations

from typing import Any

__all__ = ["logger"]


class _Logger:
    """The two calls ftcore makes. Each looks the real logger up, so whatever the host sets on
    the "ftcore" logger applies, whenever it sets it; records name ftcore's caller's line."""

    __slots__ = ()

    def exception(self, msg: str, *args: Any) -> None:
        _ftcore_logger().exception(msg, *args, stacklevel=2)

    def warning(self, msg: str, *args: Any) -> None:
        _ftcore_logger().warning(msg, *args, stacklevel=2)


def _ftcore_logger() -> Any:
    import logging

    return logging.getLogger("ftcore")


logger = _Logger()
