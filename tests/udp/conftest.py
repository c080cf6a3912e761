from tests.udp.support import quiet_log, rt  # noqa: F401  (fixtures)
