"""Unit tests of the ftcore core: loop, lifecycle, errors, plugins, config and policies."""
