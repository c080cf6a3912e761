from tests.net.support import loop_thread, net  # noqa: F401  (fixtures)
