from tests.files.support import make_rt  # noqa: F401  (fixture)
