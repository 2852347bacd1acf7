"""
Sphinx configuration for the gearman_tw documentation.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from gearman_tw._version import __version__  # noqa: E402

project = "gearman_tw"
author = "the gearman_tw developers"
copyright = "2026, the gearman_tw developers"
version = release = __version__
extensions = ["sphinx.ext.autodoc"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
