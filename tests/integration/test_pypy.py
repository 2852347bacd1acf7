"""
The job server runs unchanged under PyPy (the venv `make pypy` builds).
"""

import os
import subprocess

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.integration.servers import REPO, requireProgram, run, startOurs, stopProcess

PYPY = os.path.join(REPO, ".venv-pypy", "bin", "python")


class PyPyTests(SynchronousTestCase):
    """
    A job through our server under PyPy, with libgearman CLI peers.
    """

    def test_job(self) -> None:
        """
        The libgearman CLI runs a job through the server under PyPy, and
        gearadmin reads its status.
        """
        if not os.access(PYPY, os.X_OK):
            if os.environ.get("CI"):
                self.fail("no PyPy venv: run `make pypy`")
            raise SkipTest("no PyPy venv: run `make pypy`")
        gearman = requireProgram("gearman")
        server = startOurs(self, python=PYPY)
        version = run([PYPY, "-c", "import sys; print(sys.implementation.name)"])
        self.assertEqual(version.stdout, b"pypy\n")
        address = ["-h", "127.0.0.1", "-p", str(server.port)]
        worker = subprocess.Popen(
            [gearman, *address, "-w", "-f", "rev", "--", "rev"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.addCleanup(stopProcess, worker)
        result = run([gearman, *address, "-f", "rev"], input=b"pypy\n")
        self.assertEqual(result.stdout, b"ypyp\n")
        status = run([requireProgram("gearadmin"), *address, "--status"])
        self.assertEqual(status.stdout, b"rev\t0\t0\t1\n.\n")
