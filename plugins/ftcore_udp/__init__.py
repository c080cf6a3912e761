"""UDP transport on stdlib sockets, driven by the runtime loop."""
