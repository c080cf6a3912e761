"""WebSocket support for ftcore: a sans-IO RFC 6455 / RFC 7692 codec and its loop transport.

The codec (`connection`, `reader`, `writer`, `frames`, `handshake`, `deflate`, `masking`)
never touches a socket; `transport` drives it on the runtime's selectors loop. Importing this
package is cheap: the transport (and `ssl`) load on the first `connectSocket`.
"""

from __future__ import annotations

from typing import Any

from ftcore import hookimpl


@hookimpl(trylast=True)
def ftcore_websocket_transport_make(runtime: Any) -> Any:
    """The builtin WebSocket transport; any plugin returning its own wins over it."""
    from .transport import LoopWsTransport

    return LoopWsTransport(runtime.net)
