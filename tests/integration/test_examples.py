"""
The programs in examples/ (which the docs include) run as documented.
"""

import os
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import REPO, startOurs, stopProcess, twistdArgv


class ExamplesTests(SynchronousTestCase):
    """
    examples/worker.tac serves examples/submit.py and examples/admin.py.
    """

    def setUp(self) -> None:
        self.server = startOurs(self)
        self.address = "127.0.0.1:%d" % (self.server.port,)
        self.env = dict(os.environ, PYTHONPATH=REPO, GEARMAN_SERVER=self.address)
        worker = subprocess.Popen(
            twistdArgv("-y", os.path.join(REPO, "examples", "worker.tac")),
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(stopProcess, worker)
        conn = self.server.connect()
        self.addCleanup(conn.close)
        deadline = time.monotonic() + 15
        while b"countdown\t0\t0\t2" not in conn.admin(b"status\n"):
            self.assertLess(time.monotonic(), deadline, "the example worker did not register")
            time.sleep(0.05)

    def example(self, name: str) -> str:
        result = subprocess.run(
            [sys.executable, os.path.join(REPO, "examples", name), self.address],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.decode()

    def test_submit(self) -> None:
        """
        examples/submit.py prints each result as its comments say.
        """
        self.assertEqual(
            self.example("submit.py"),
            "!dlrow olleH\n"
            "progress 0/3\nprogress 1/3\nprogress 2/3\nprogress 3/3\ncounted 3\n"
            "eno owt\n"
            "background job known: True\n",
        )

    def test_admin(self) -> None:
        """
        examples/admin.py prints the version and a line per function.
        """
        output = self.example("admin.py").splitlines()
        self.assertTrue(output[0].startswith("server version 1.1.20"))
        self.assertIn("countdown: 0 queued, 0 running, 2 workers", output)

    def test_readme(self) -> None:
        """
        The Python example in README.md runs and prints the result.
        """
        with open(os.path.join(REPO, "README.md")) as f:
            readme = f.read()
        code = readme.split("```python\n", 1)[1].split("```", 1)[0]
        code = code.replace("127.0.0.1:4730", self.address)
        path = os.path.join(tempfile.mkdtemp(), "readme.py")
        with open(path, "w") as f:
            f.write(code)
        result = subprocess.run(
            [sys.executable, path], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"b'!dlrow olleH'\n")
