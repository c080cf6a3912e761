from tests.net.support import data_file, loop_thread, make_pair, net  # noqa: F401  (fixtures)
