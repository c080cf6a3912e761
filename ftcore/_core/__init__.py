"""Runtime plumbing that every API shares: task lifecycle and its state table, listener
registries, concurrency slots, options, config, the plugin manager and the sandbox.

Imports only from the public contracts above it (`ftcore.errors`, `ftcore.loop`,
`ftcore.transports`, `ftcore.hookspecs`), never from `_api` or `_app`.
"""
