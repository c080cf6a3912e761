"""The builtin policies: header rules, timeouts, domain lists, sandbox paths, interceptors.

Each module is its own plugin, so a host can block one (``pm.set_blocked(name)``) or override
it without touching the others.
"""
