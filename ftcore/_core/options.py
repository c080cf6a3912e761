"""Options as every API call takes them: one JS-style dict and/or keywords (API.md §1)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..errors import Errno, FtError

__all__ = ["Options", "merge_options", "options_error"]

Options = Optional[Dict[str, Any]]


def merge_options(options: Options, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """A new options dict from the JS-style dict and keywords (keywords win), so the caller may
    change its own dict meanwhile. Options that are not a dict count as none here:
    `options_error` says how the call fails."""
    if not isinstance(options, dict):
        return dict(kwargs)
    merged = dict(options)
    merged.update(kwargs)
    return merged


def options_error(options: Any) -> Optional[FtError]:
    """The failure of a call whose options are neither a dict nor None (API.md: wrong options
    fail through `fail`, never by raising from the call)."""
    if options is None or isinstance(options, dict):
        return None
    return FtError(
        Errno.INVALID_OPTION,
        "invalid option: options must be a dict, not %s" % type(options).__name__,
    )
