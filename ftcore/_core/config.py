"""The runtime configuration (API.md §6), checked once at construction.

A misspelt key or a wrong type raises `ValueError` naming it, so a host finds the mistake when
it builds the runtime instead of when the first request behaves oddly.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Optional

__all__ = ["load_config", "DOMAIN_KEYS", "TIMEOUT_KEYS", "TCP_BANNED_PORTS"]

TIMEOUT_KEYS = ("request", "connectSocket", "uploadFile", "downloadFile")
DOMAIN_KEYS = ("request", "socket", "uploadFile", "downloadFile", "udp", "tcp")

# FinClip's list (API.md §9): a port, or an inclusive [first, last] range.
TCP_BANNED_PORTS = [[1, 1023], 1099, 1433, 1521, 1719, 1720, 1723, 2049, 2375, 3128, 3306,
                    3389, 3659, 4045, 5060, 5061, 5432, 5984, 6000, 6379, 6566, 7001, 7002,
                    [8000, 8100], 8443, 8888, 9200, 9300, 10051, 10080, 11211, [27017, 27019]]

DEFAULTS: Dict[str, Any] = {
    "networkTimeout": {key: 60000 for key in TIMEOUT_KEYS},
    "domains": {},
    "maxConcurrent": {"http": 10, "socket": 5},
    "limits": {
        "downloadMaxBytes": 200 * 2**20,
        "wsMaxMessageBytes": 16 * 2**20,
        "streamBufferBytes": 2**20,  # undelivered bytes of a streamed body (API.md §10)
        "tcpCreatesPer5Min": 20,  # TCPSockets created per runtime (API.md §9)
        "tcpMaxBufferedBytes": 16 * 2**20,  # written to a TCPSocket, not yet sent
    },
    "tcp": {"bannedPorts": TCP_BANNED_PORTS},
    "sandbox": None,
    "tls": {"verify": True, "cafile": None},
}


def load_config(user: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The defaults overlaid with `user`, validated; never shares `user`'s objects."""
    config = copy.deepcopy(DEFAULTS)
    if user is None:
        return config
    _expect(user, dict, "config")
    for key, value in user.items():
        if key not in DEFAULTS:
            raise ValueError("unknown config key %r" % key)
        _CHECKS[key](value, key)
        if isinstance(value, dict) and key != "domains":
            config[key].update(value)
        else:
            config[key] = copy.deepcopy(value)
    return config


def _expect(value: Any, kind: Any, name: str) -> None:
    if isinstance(value, bool) and kind is not bool:
        raise ValueError("config %s must be %s, not bool" % (name, _kind_name(kind)))
    if not isinstance(value, kind):
        raise ValueError(
            "config %s must be %s, not %s" % (name, _kind_name(kind), type(value).__name__)
        )


def _kind_name(kind: Any) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return str(kind.__name__)


def _check_table(
    keys: Any, kind: Any, minimum: Optional[float] = None
) -> Callable[[Any, str], None]:
    def check(value: Any, name: str) -> None:
        _expect(value, dict, name)
        for key, item in value.items():
            if key not in keys:
                raise ValueError("unknown config key %r in %s" % (key, name))
            _expect(item, kind, "%s.%s" % (name, key))
            if minimum is not None and not item >= minimum:  # NaN too
                raise ValueError("config %s.%s must be at least %s" % (name, key, minimum))

    return check


def _check_domains(value: Any, name: str) -> None:
    _expect(value, dict, name)
    for key, entries in value.items():
        if key not in DOMAIN_KEYS:
            raise ValueError("unknown config key %r in %s" % (key, name))
        _expect(entries, (list, tuple), "%s.%s" % (name, key))
        for entry in entries:
            _expect(entry, str, "%s.%s entry" % (name, key))


def _check_tcp(value: Any, name: str) -> None:
    _expect(value, dict, name)
    for key, ports in value.items():
        if key != "bannedPorts":
            raise ValueError("unknown config key %r in %s" % (key, name))
        _expect(ports, (list, tuple), "tcp.bannedPorts")
        for entry in ports:
            _check_port_entry(entry)


def _check_port_entry(entry: Any) -> None:
    """A port (1-65535) or a [first, last] range of them."""
    if isinstance(entry, (list, tuple)):
        if len(entry) != 2 or any(isinstance(port, (list, tuple)) for port in entry):
            raise ValueError("config tcp.bannedPorts ranges are [first, last], not %r" % (entry,))
        for port in entry:
            _check_port_entry(port)
        if entry[0] > entry[1]:
            raise ValueError("config tcp.bannedPorts range %r ends before it starts" % (entry,))
        return
    _expect(entry, int, "tcp.bannedPorts entry")
    if not 1 <= entry <= 65535:
        raise ValueError("config tcp.bannedPorts entry %d is not a port (1-65535)" % entry)


def _check_sandbox(value: Any, name: str) -> None:
    if value is not None:
        _expect(value, str, name)


def _check_tls(value: Any, name: str) -> None:
    _expect(value, dict, name)
    for key, item in value.items():
        if key == "verify":
            _expect(item, bool, "tls.verify")
        elif key == "cafile":
            if item is not None:
                _expect(item, str, "tls.cafile")
        else:
            raise ValueError("unknown config key %r in tls" % key)


_CHECKS = {
    "networkTimeout": _check_table(TIMEOUT_KEYS, (int, float), 0),
    "domains": _check_domains,
    "maxConcurrent": _check_table(("http", "socket"), int, 1),
    "limits": _check_table(tuple(DEFAULTS["limits"]), int, 1),
    "sandbox": _check_sandbox,
    "tls": _check_tls,
    "tcp": _check_tcp,
}
