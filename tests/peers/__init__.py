"""Real loopback peers that ftcore's transports are tested against.

Every peer binds port 0 on loopback, runs in threads named ``ftpeer-...`` and
releases every socket and thread when closed. ``fixtures`` wires them into pytest.
"""
