"""UDP transport on stdlib sockets, driven by the runtime loop (see `ftcore_udp.endpoint`)."""

from __future__ import annotations

from typing import Any

from ftcore import hookimpl


@hookimpl(trylast=True)
def ftcore_udp_transport_make(runtime: Any) -> Any:
    from .endpoint import LoopUdpTransport

    return LoopUdpTransport(runtime.loop)
