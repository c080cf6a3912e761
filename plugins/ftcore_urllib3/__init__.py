"""HTTP transport on urllib3 (request, downloadFile, uploadFile).

Importing this module is cheap: urllib3 and ssl are imported when the runtime first needs its
HTTP transport, so a host without urllib3 still loads every other plugin, and HTTP calls then
fail with an errMsg that names the package to install.
"""

from __future__ import annotations

from typing import Any

from ftcore import Errno, FtError, hookimpl

INSTALL_HINT = "urllib3 is not installed: pip install 'ftcore[http]'"


@hookimpl(trylast=True)
def ftcore_http_transport_make(runtime: Any) -> Any:
    try:
        import urllib3  # noqa: F401
    except ImportError:
        raise FtError(Errno.TRANSPORT_UNAVAILABLE, INSTALL_HINT) from None
    from .transport import Urllib3Transport

    return Urllib3Transport(runtime.net, runtime.config["maxConcurrent"]["http"])
