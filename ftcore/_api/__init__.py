"""The API semantics, one module per API (request, downloadFile, uploadFile, WebSocket, UDP),
and the Runtime that exposes them. Built on `_core`; transports are reached through hooks.
"""
