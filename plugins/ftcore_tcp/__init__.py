"""TCP transport for `createTCPSocket`: an adapter over the stream layer (`ftcore._net`).

Importing this package is cheap: the transport loads on the first `connect`.
"""

from __future__ import annotations

from typing import Any

from ftcore import hookimpl


@hookimpl(trylast=True)
def ftcore_tcp_transport_make(runtime: Any) -> Any:
    """The builtin TCP transport; any plugin returning its own wins over it."""
    from .transport import LoopTcpTransport

    return LoopTcpTransport(runtime.net)
