"""A policy hook called as plain functions instead of through pluggy, for the per-task hooks.

A pluggy call costs several µs (argument checks, a copy of the implementations, `_multicall`'s
bookkeeping): a few per task are a large share of a small request. `chain(hook)` returns a
function taking the hook's arguments positionally, in the spec's order, that calls the
implementations directly with pluggy's semantics: last registered (or `tryfirst`) first, each
given the arguments it names, a firstresult hook stopping at the first non-None result (and
returning it, else None), any other returning the list of non-None results; an exception
propagates unchanged. A hook with a wrapper (`wrapper=True` or `hookwrapper=True`) is called
through pluggy, which runs wrappers.

Plugins may be registered or blocked after the runtime is made (`runtime.pm`): every call
compares the hook's implementations (pluggy's own list, `HookCaller._hookimpls`, which
registering changes in place: read here, never copied per call) with those it compiled, and
compiles again when they changed. While pluggy's tracing or call monitoring is on
(`pm.trace.root.setwriter`, `pm.add_hookcall_monitoring`: they replace the manager's
`_inner_hookexec`), calls go through pluggy, so those tools see every hook.
"""

from __future__ import annotations

from typing import Any, Callable, List, Sequence, Tuple

from pluggy import HookCaller, HookImpl
from pluggy._callers import _multicall

__all__ = ["chain"]

Call = Callable[..., Any]


def chain(hook: HookCaller) -> Call:
    """The implementations of `hook`, compiled on first call and again whenever they change."""
    assert hook.spec is not None, "only hooks with a spec can be compiled"
    argnames: Tuple[str, ...] = tuple(hook.spec.argnames)
    firstresult = bool(hook.spec.opts.get("firstresult", False))
    compiled: List[Tuple[Sequence[HookImpl], Call]] = [([], _nothing(firstresult))]
    manager = getattr(hook._hookexec, "__self__", None)  # the PluginManager
    live: List[HookImpl] = hook._hookimpls

    def call(*args: Any) -> Any:
        if getattr(manager, "_inner_hookexec", _multicall) is not _multicall:
            return hook(**dict(zip(argnames, args)))  # traced or monitored: pluggy's way
        current = compiled[0]  # one read: another thread may replace it meanwhile
        if live != current[0]:
            impls = hook.get_hookimpls()  # a copy: the snapshot the next calls compare with
            current = compiled[0] = (impls, _compile(hook, impls, argnames, firstresult))
        return current[1](*args)

    return call


def _compile(
    hook: HookCaller, impls: Sequence[HookImpl], argnames: Tuple[str, ...], firstresult: bool
) -> Call:
    if not impls:
        return _nothing(firstresult)
    if any(impl.wrapper or impl.hookwrapper for impl in impls):
        return lambda *args: hook(**dict(zip(argnames, args)))
    functions = [_adapt(impl, argnames) for impl in reversed(impls)]  # pluggy's call order
    if firstresult:
        if len(functions) == 1:
            return functions[0]

        def first(*args: Any) -> Any:
            for function in functions:
                result = function(*args)
                if result is not None:
                    return result
            return None

        return first

    def every(*args: Any) -> List[Any]:
        results = []
        for function in functions:
            result = function(*args)
            if result is not None:
                results.append(result)
        return results

    return every


def _adapt(impl: HookImpl, argnames: Tuple[str, ...]) -> Call:
    """`impl.function`, or a shim passing it only the arguments it names (pluggy allows an
    implementation to take a subset of the spec's arguments, in any order)."""
    function = impl.function
    if tuple(impl.argnames) == argnames:
        return function
    picks = tuple(argnames.index(name) for name in impl.argnames)
    return lambda *args: function(*[args[i] for i in picks])


def _nothing(firstresult: bool) -> Call:
    if firstresult:
        return lambda *args: None
    return lambda *args: []
