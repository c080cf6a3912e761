"""The same semantic tests over every HTTP transport: the core owns the semantics."""
