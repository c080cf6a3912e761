"""Addresses: the IP-literal check and the RFC 8305 order of resolved addresses.

A literal never goes to the resolver (no thread, no DNS); a name's addresses are tried in
the order Happy Eyeballs asks for: the family of the first answer first, then alternating.
"""

from __future__ import annotations

import socket
from typing import Any, List, Optional, Sequence, Tuple

__all__ = ["Sockaddr", "Target", "ip_family", "strip_brackets", "interleave"]

Sockaddr = Tuple[Any, ...]
Target = Tuple[int, Sockaddr]  # (address family, socket address)


def ip_family(host: str) -> Optional[int]:
    """`AF_INET` or `AF_INET6` if `host` is an IP literal (no brackets), else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError, TypeError):
            continue
        return family
    return None


def strip_brackets(host: str) -> str:
    """`[::1]` -> `::1` (URL and user forms of an IPv6 literal)."""
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def interleave(targets: Sequence[Target]) -> List[Target]:
    """RFC 8305 §4: duplicates dropped, families alternating, starting with the first's."""
    seen = set()
    first: List[Target] = []
    other: List[Target] = []
    lead = targets[0][0] if targets else None
    for family, sockaddr in targets:
        key = (family, sockaddr[:2])
        if key in seen:
            continue
        seen.add(key)
        (first if family == lead else other).append((family, sockaddr))
    ordered: List[Target] = []
    for index in range(max(len(first), len(other))):
        ordered.extend(group[index] for group in (first, other) if index < len(group))
    return ordered
