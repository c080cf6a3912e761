"""Interceptors (uni-app's model) on the policy hooks: `invoke` before a task, result hooks after.

The global interceptor (`addInterceptor(None, ...)`) runs before the API's own. The hooks
come from `Runtime.interceptors_for`, a copy: no lock is held while they run.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ftcore import Errno, FtError, hookimpl


@hookimpl(tryfirst=True)
def ftcore_options_prepare(runtime: Any, api: str, options: Dict[str, Any]) -> None:
    for hooks in runtime.interceptors_for(api):
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
    for hooks in runtime.interceptors_for(api):
        for name in ("success" if ok else "fail", "complete"):
            hook = hooks.get(name)
            if hook is not None:
                replaced = hook(res)
                if isinstance(replaced, dict):
                    res = replaced
    return None if res is original else res

