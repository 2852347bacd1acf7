"""
mypy, with the mypy-zope plugin and the repository's C{mypy.ini}, accepts
the type hints of the package (C{gearman_tw}), its twistd dropins
(C{twisted/plugins}) and the tests (C{tests}).  C{tests/test_lint.py} runs
ruff beside it.
"""

import importlib.util
import os
import subprocess
import sys
from typing import Sequence

from twisted.trial.unittest import SkipTest, SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "mypy.ini")

#: What mypy checks, relative to the repository (mypy.ini names the same).
PATHS = ("gearman_tw", "twisted/plugins", "tests")

#: Seconds mypy may take (with an empty cache it takes a few on 2 cores).
TIMEOUT = 300


def requireModules(*names: str) -> None:
    """
    Skip the test unless every module in C{names} is importable by this
    interpreter; fail instead in CI (where C{CI} is set), as
    C{tests.integration.servers.requireProgram} does.
    """
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        message = "%s not installed (see requirements-test.txt)" % (", ".join(missing),)
        if os.environ.get("CI"):
            raise AssertionError(message)
        raise SkipTest(message)


def runModule(
    testCase: SynchronousTestCase,
    module: str,
    args: Sequence[str],
    timeout: float,
    unset: Sequence[str] = (),
    **setenv: str,
) -> "subprocess.CompletedProcess[str]":
    """
    Run C{python -m module args} from this interpreter's environment in the
    repository, with the variables C{unset} removed from the environment and
    C{setenv} added, and return what it wrote (standard output and error
    together, as text).  Fail C{testCase}, with that output, if it does not
    finish within C{timeout} seconds.
    """
    env = dict(os.environ)
    for name in unset:
        env.pop(name, None)
    env.update(setenv)
    try:
        return subprocess.run(
            [sys.executable, "-m", module] + list(args),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        output = e.output or b""
        if isinstance(output, bytes):
            output = output.decode("utf-8", "replace")
        testCase.fail("%s did not finish within %d seconds:\n%s" % (module, timeout, output))


def runMypy(testCase: SynchronousTestCase, *paths: str) -> "subprocess.CompletedProcess[str]":
    """
    Run mypy from this interpreter over C{paths} (relative to the
    repository) with the repository's configuration and a cache of
    C{testCase}'s own.
    """
    cacheDir = os.path.abspath(testCase.mktemp())
    # Plain output, and no user-wide settings.
    return runModule(
        testCase,
        "mypy",
        ["--config-file", CONFIG, "--cache-dir", cacheDir] + list(paths),
        TIMEOUT,
        unset=("MYPY_FORCE_COLOR", "FORCE_COLOR", "MYPYPATH"),
    )


class TypingTests(SynchronousTestCase):
    """
    Tests for the package's type hints.
    """

    def test_mypy(self) -> None:
        """
        mypy reports no error in C{gearman_tw}, C{twisted/plugins} or
        C{tests}.
        """
        requireModules("mypy", "mypy_zope")
        result = runMypy(self, *PATHS)
        if result.returncode != 0 or "Success: no issues found" not in result.stdout:
            self.fail("mypy exited with status %d:\n%s" % (result.returncode, result.stdout))
