"""
Sphinx configuration for the gearman_tw documentation.

The API reference is built by pydoctor from the package's epytext
docstrings, as Twisted's documentation does: the
C{pydoctor.sphinx_ext.build_apidocs} extension runs pydoctor when the HTML
builder starts, writes the reference to C{api/} under the output directory,
and registers pydoctor's C{objects.inv} with intersphinx, so that
C{:class:} and C{:func:} roles in these pages link into it.
"""

import logging
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from gearman_tw._version import __version__  # noqa: E402

project = "gearman_tw"
author = "the gearman_tw developers"
copyright = "2026, the gearman_tw developers"
version = release = __version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "pydoctor.sphinx_ext.build_apidocs",
]
exclude_patterns = ["_build"]
html_theme = "alabaster"

# No remote inventories: the build must work without network access.  The
# only intersphinx entry is the local one build_apidocs adds for pydoctor.
intersphinx_mapping: dict = {}

_packageDir = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "gearman_tw"))

# build_apidocs adds --make-html and --quiet itself.
pydoctor_args = [
    f"--project-name={project}",
    f"--project-version={version}",
    "--docformat=epytext",
    "--html-output={outdir}/api",
    f"--project-base-dir={os.path.dirname(_packageDir)}",
    _packageDir,
]
# Relative to the HTML output directory.
pydoctor_url_path = "api/"

# pydoctor's docstring warnings do not fail the build (with -W, Sphinx would
# treat each of them as an error).  They are printed, prefixed "pydoctor:",
# and should be fixed, but some cannot be fixed here: without network access
# there is no intersphinx for Python or Twisted, so links to them cannot
# resolve.  Set this to True to make them fatal again.
pydoctorWarningsFatal = False


class _PydoctorWarnings(logging.Filter):
    """
    Print pydoctor's warnings to stderr instead of passing them on to Sphinx
    as warnings, which C{-W} turns into errors.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        print(f"pydoctor: {record.getMessage()}", file=sys.stderr)
        return False


def _makeAPIDirectory(app, exception):
    """
    Create C{api/} in the output directory if no Sphinx page went there.

    At the end of the build, build_apidocs moves whatever Sphinx wrote to
    C{api/} aside and puts pydoctor's output in its place; it fails if
    there is nothing to move.  (A placeholder C{api/index.rst} page would
    do the same.)
    """
    if app.builder.name == "html":
        os.makedirs(os.path.join(app.outdir, "api"), exist_ok=True)


def setup(app):
    # Before build_apidocs's own handler, which has the default priority.
    app.connect("build-finished", _makeAPIDirectory, priority=400)
    if not pydoctorWarningsFatal:
        logging.getLogger("sphinx.pydoctor.sphinx_ext.build_apidocs").addFilter(_PydoctorWarnings())
