"""
ruff, with the configuration in the repository's C{pyproject.toml}, finds
nothing in the package, its twistd dropins, the tests, the benchmarks or
the scripts.  C{tests/test_typing.py} runs mypy beside it.
"""

import os
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from tests.test_typing import ROOT, requireModules, runModule

CONFIG = os.path.join(ROOT, "pyproject.toml")

#: What ruff checks, relative to the repository (as `make lint` does).
PATHS = ("gearman_tw", "tests", "twisted", "benchmarks", "scripts")

#: Seconds ruff may take (it takes well under one).
TIMEOUT = 120


def runRuff(testCase: SynchronousTestCase, *paths: str) -> "subprocess.CompletedProcess[str]":
    """
    Run ruff from this interpreter's environment over C{paths} (relative to
    the repository) with the repository's configuration, writing no cache.
    """
    # Plain output, and no user-wide settings.
    return runModule(
        testCase,
        "ruff",
        ["check", "--config", CONFIG, "--no-cache", "--output-format", "concise"] + list(paths),
        TIMEOUT,
        unset=("FORCE_COLOR", "CLICOLOR_FORCE", "RUFF_CACHE_DIR", "RUFF_OUTPUT_FORMAT"),
        NO_COLOR="1",
    )


class LintTests(SynchronousTestCase):
    """
    Tests for the code's lint.
    """

    def test_ruff(self) -> None:
        """
        ruff reports nothing in C{gearman_tw}, C{tests}, C{twisted},
        C{benchmarks} or C{scripts}.
        """
        requireModules("ruff")
        result = runRuff(self, *PATHS)
        if result.returncode != 0:
            self.fail("ruff exited with status %d:\n%s" % (result.returncode, result.stdout))
