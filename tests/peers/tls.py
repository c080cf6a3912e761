"""Certificates for the TLS peers, made by trustme.

Why: TLS must be real (handshake, chain and host name checks), yet tests need no
network and no files outside a temp directory. ``TLSMaterial`` holds one CA,
a server certificate for ``localhost``, ``127.0.0.1`` and ``::1``, and the CA
PEM written to ``cafile`` (what ftcore's ``tls.cafile`` option takes).
An "untrusted" material is the same thing made by a second CA that no client
is told about, so verification fails exactly as with a self-signed server.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Sequence

import trustme

SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass
class TLSMaterial:
    ca: trustme.CA
    server_cert: trustme.LeafCert
    cafile: str

    def server_context(self, alpn: Sequence[str] = ("http/1.1",)) -> ssl.SSLContext:
        """A server-side context presenting the leaf certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        return context


def make_tls_material(directory: str, name: str = "ca") -> TLSMaterial:
    """Create a CA and a loopback server certificate; write ``<directory>/<name>.pem``."""
    ca = trustme.CA(organization_name=f"ftcore test {name}")
    cert = ca.issue_cert(*SERVER_NAMES)
    cafile = os.path.join(directory, f"{name}.pem")
    ca.cert_pem.write_to_path(cafile)
    return TLSMaterial(ca, cert, cafile)
