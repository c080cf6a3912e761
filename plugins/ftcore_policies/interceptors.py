"""Interceptors (uni-app's model) on the policy hooks: `invoke` before a task, result hooks after.

The global interceptor (`addInterceptor(None, ...)`) runs before the API's own.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, Optional

from ftcore import Errno, FtError, hookimpl

Hooks = Dict[str, Callable[..., Any]]


@hookimpl(tryfirst=True)
def ftcore_options_prepare(runtime: Any, api: str, options: Dict[str, Any]) -> None:
    for hooks in _interceptors(runtime, api):
        invoke = hooks.get("invoke")
        if invoke is None:
            continue
        outcome = invoke(options)
        if outcome is False:
            raise FtError(Errno.INTERCEPTED)
        if isinstance(outcome, dict) and outcome is not options:
            options.clear()
            options.update(outcome)


@hookimpl
def ftcore_result_rewrite(
    runtime: Any, api: str, res: Dict[str, Any], ok: bool
) -> Optional[Dict[str, Any]]:
    original = res
    for hooks in _interceptors(runtime, api):
        for name in ("success" if ok else "fail", "complete"):
            hook = hooks.get(name)
            if hook is not None:
                replaced = hook(res)
                if isinstance(replaced, dict):
                    res = replaced
    return None if res is original else res


def _interceptors(runtime: Any, api: str) -> Iterator[Hooks]:
    if not runtime.interceptors:  # the usual case, checked without the lock: twice per task
        return iter(())
    with runtime._lock:
        chosen = [runtime.interceptors.get(key) for key in (None, api)]
    return (hooks for hooks in chosen if hooks)
