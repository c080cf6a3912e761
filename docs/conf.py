"""Sphinx configuration for ftcore (built with ``sphinx-build -W --keep-going``)."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "plugins"), os.path.join(HERE, "_ext")]

import ftcore  # noqa: E402

project = "ftcore"
author = "the ftcore authors"
copyright = "the ftcore authors"  # noqa: A001
release = version = ftcore.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "ftcore_tables",
    "ftcore_lifecycles",
]
exclude_patterns = ["_build", "examples"]
default_role = "code"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}
nitpicky = False
highlight_language = "python"
html_theme = "alabaster"
html_theme_options = {"description": "The FinClip network API for Python hosts"}
