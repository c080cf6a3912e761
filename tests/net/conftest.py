from tests.net.support import data_file, loop_thread, net  # noqa: F401  (fixtures)
