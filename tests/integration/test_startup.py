"""
Start-up of C{twistd gearman} and C{twistd gearman-worker} in real
processes: each failure is one line, a non-zero exit status and no
traceback; what the worker imports; the Unix socket's mode; C{--version}.
"""

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from typing import List, Sequence

from twisted.trial.unittest import SynchronousTestCase

from gearman_tw import __version__
from tests.integration.servers import REPO, RUN_TWISTD, freePort, startOurs, twistdArgv, waitFor
from tests.mixins import SynchronousTestCaseMixin
from tests.test_worker_tap import writeProject

#: Runs twistd without the current folder on the import path, as the
#: C{twistd} script does (C{python -c} would put it first).
AS_SCRIPT = "import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; " + RUN_TWISTD


def scriptArgv(*args: str, missing: Sequence[str] = ()) -> List[str]:
    """
    The command line of C{twistd -n} with C{args}, run as the C{twistd}
    script runs (L{AS_SCRIPT}), in which importing the modules named in
    C{missing} fails as if they were not installed.
    """
    poison = "".join("sys.modules[%r] = None; " % (name,) for name in missing)
    return twistdArgv(*args, twistd=(sys.executable, "-c", "import sys; " + poison + AS_SCRIPT))


class StartFailureMixin(SynchronousTestCaseMixin):
    """
    Runs twistd to a failure and checks what it printed.
    """

    def runTwistd(self, *args: str, missing: Sequence[str] = (), cwd=None, timeout: float = 60):
        """
        Run twistd with C{args} until it exits; its output, both streams.
        """
        result = subprocess.run(
            scriptArgv(*args, missing=missing),
            env=dict(os.environ, PYTHONPATH=REPO),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            timeout=timeout,
        )
        self.output = result.stdout.decode("utf-8", "replace")
        self.returncode = result.returncode
        return self.output

    def assertOneLine(self, text: str, about: str = "") -> str:
        """
        twistd failed, and its output holds C{text} on one line, is the only
        line that mentions C{about} (C{text} by default), and has no
        traceback.

        @return: that line.
        """
        output = self.output
        self.assertNotEqual(self.returncode, 0, output)
        self.assertNotIn("Traceback", output)
        lines = [line for line in output.splitlines() if (about or text) in line]
        self.assertEqual(len(lines), 1, output)
        self.assertIn(text, lines[0], output)
        return lines[0]


class ServerStartFailureTests(StartFailureMixin, SynchronousTestCase):
    """
    C{twistd gearman} that cannot start says why in one line.
    """

    def test_portInUse(self) -> None:
        """
        A port in use: one critical line naming the address, status 1, no
        traceback.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        self.runTwistd("gearman", "--port", str(port), "--listen", "127.0.0.1")
        self.assertOneLine(
            "Cannot start the job server: cannot listen on 127.0.0.1:%d: Address already in use" % (port,),
            about="Address already in use",
        )
        self.assertEqual(self.returncode, 1)

    def test_replayFailure(self) -> None:
        """
        A persistent queue that cannot be replayed (here a SQLite file that
        is not a database) stops the server after start-up in one line, and
        twistd exits with status 1, not 0.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "broken.db")
        with open(path, "wb") as f:
            f.write(b"not a database " * 512)
        self.runTwistd("gearman", "--port", "0", "--listen", "127.0.0.1", "--queue", "sqlite:" + path)
        self.assertOneLine("Cannot start the job server: cannot open %s: file is not a database" % (path,))
        self.assertEqual(self.returncode, 1)

    def test_badListenAddress(self) -> None:
        """
        A C{--listen} value that is neither an IP address nor a host name is
        a usage error.
        """
        self.runTwistd("gearman", "--port", "0", "--listen", "999.1.1.1")
        self.assertOneLine("--listen takes an IP address or a host name, not '999.1.1.1'", about="999.1.1.1")

    def test_unknownListenName(self) -> None:
        """
        A C{--listen} host name that does not resolve fails at start-up in
        one line.
        """
        self.runTwistd("gearman", "--port", "0", "--listen", "no-such-host.invalid")
        self.assertOneLine(
            "Cannot start the job server: cannot listen on no-such-host.invalid:0: ", about="no-such-host"
        )

    def test_badEndpoint(self) -> None:
        """
        An C{--endpoint} or C{--http-endpoint} description Twisted cannot
        parse is a usage error naming it.
        """
        for option, description, why in [
            ("--endpoint", "foo:bar", "Unknown endpoint type: 'foo'"),
            ("--endpoint", "tcp:notanumber", "invalid literal"),
            ("--http-endpoint", "tcp:1:colour=red", "colour"),
        ]:
            self.runTwistd("gearman", option, description)
            line = self.assertOneLine("%s %s is not a valid endpoint description: " % (option, description))
            self.assertIn(why, line)

    def test_unixSocketDirectoryMissing(self) -> None:
        """
        A Unix socket in a folder that does not exist: one line naming it.
        """
        path = os.path.join(tempfile.mkdtemp(), "missing", "g.sock")
        self.runTwistd("gearman", "--endpoint", "unix:" + path)
        self.assertOneLine(
            "Cannot start the job server: cannot listen on unix:%s:mode=660: No such file or directory" % (path,),
            about="No such file or directory",
        )

    def test_tlsMissing(self) -> None:
        """
        Without pyOpenSSL, C{--ssl} and C{ssl:} endpoints are usage errors
        that say what to install.
        """
        from tests.tlscerts import makeCertificate, writePEM

        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        cert, key = writePEM(directory, "server", *makeCertificate("server"))
        self.runTwistd(
            "gearman", "--port", "0", "--ssl", "--ssl-certificate", cert, "--ssl-key", key, missing=["OpenSSL"]
        )
        self.assertOneLine(
            "--ssl needs pyOpenSSL and service_identity (pip install pyOpenSSL service_identity)",
            about="pip install",
        )
        for option in ("--endpoint", "--http-endpoint"):
            description = "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s" % (key, cert)
            self.runTwistd("gearman", option, description, missing=["OpenSSL"])
            self.assertOneLine(
                "%s %s needs pyOpenSSL and service_identity (pip install pyOpenSSL service_identity)"
                % (option, description),
                about="pip install",
            )

    def test_sqliteDirectoryMissing(self) -> None:
        """
        An SQLite queue in a folder that does not exist: one line, status 1.
        """
        path = os.path.join(tempfile.mkdtemp(), "missing", "q.db")
        self.runTwistd("gearman", "--port", "0", "--listen", "127.0.0.1", "--queue", "sqlite:" + path)
        self.assertOneLine(
            "Cannot start the job server: cannot open %s: no such directory %s" % (path, os.path.dirname(path)),
            about="no such directory",
        )
        self.assertEqual(self.returncode, 1)

    def test_redisRefused(self) -> None:
        """
        A Redis that refuses the connection: one line, at once rather than
        after the command timeout.
        """
        port = freePort()
        started = time.monotonic()
        self.runTwistd("gearman", "--port", "0", "--listen", "127.0.0.1", "--queue", "redis://127.0.0.1:%d/0" % (port,))
        self.assertLess(time.monotonic() - started, 8)
        self.assertOneLine(
            "Cannot start the job server: cannot reach Redis at 127.0.0.1:%d: connection refused" % (port,),
            about="Redis",
        )
        self.assertEqual(self.returncode, 1)

    def test_txredisapiMissing(self) -> None:
        """
        A Redis queue without txredisapi is a usage error saying what to
        install; nothing starts.
        """
        self.runTwistd(
            "gearman", "--port", "0", "--queue", "redis://127.0.0.1:1/0", missing=["txredisapi"], timeout=30
        )
        self.assertOneLine("the Redis queue needs txredisapi: pip install txredisapi", about="txredisapi")
        self.assertNotIn("listening", self.output)


class UnixSocketModeTests(SynchronousTestCase):
    """
    The mode of the Unix socket a real server creates.
    """

    def socketMode(self, *description: str) -> int:
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "g.sock")
        startOurs(self, "--endpoint", ":".join(("unix:" + path,) + description))
        self.assertTrue(waitFor(lambda: os.path.exists(path)))
        return stat.S_IMODE(os.stat(path).st_mode)

    def test_default(self) -> None:
        """
        By default only the owner and the group may connect: 0660.
        """
        self.assertEqual(oct(self.socketMode()), oct(0o660))

    def test_chosen(self) -> None:
        """
        C{mode=} in the description sets another mode.
        """
        self.assertEqual(oct(self.socketMode("mode=0600")), oct(0o600))


PACKAGE = {
    "myapp/__init__.py": "",
    "myapp/tasks.py": "def reverse(job):\n    return job.data[::-1]\n",
    "myapp/broken.py": "1 / 0\n",
    "myapp/needy.py": "import no_such_dependency_xyz\n",
}


class WorkerStartTests(StartFailureMixin, SynchronousTestCase):
    """
    C{twistd gearman-worker} run from a project's folder.
    """

    def setUp(self) -> None:
        self.project = writeProject(self, PACKAGE)

    def test_importsFromCurrentFolder(self) -> None:
        """
        C{--function reverse=myapp.tasks:reverse} finds C{myapp} in the
        current folder, as C{python -m} would, and serves it.
        """
        server = startOurs(self)
        log = open(os.path.join(self.project, "worker.log"), "wb")
        self.addCleanup(log.close)
        worker = subprocess.Popen(
            scriptArgv(
                "gearman-worker",
                "--server",
                "127.0.0.1:%d" % (server.port,),
                "--function",
                "reverse=myapp.tasks:reverse",
            ),
            env=dict(os.environ, PYTHONPATH=REPO),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.project,
        )

        def stop() -> None:
            if worker.poll() is None:
                worker.kill()
            worker.wait(10)

        self.addCleanup(stop)
        admin = server.connect()
        self.addCleanup(admin.close)
        registered = waitFor(lambda: worker.poll() is not None or b"reverse\t0\t0\t1" in admin.admin(b"status\n"))
        with open(log.name, "rb") as f:
            self.assertIsNone(worker.poll(), f.read().decode("utf-8", "replace"))
        self.assertTrue(registered)
        client = server.connect()
        self.addCleanup(client.close)
        client.sendPacket(7, b"reverse", b"", b"hello")
        self.assertEqual(client.readPacket()[0], 8)
        self.assertEqual(client.readPacket(), (13, b"T:1\0olleh"))

    def test_missingModule(self) -> None:
        """
        A module that does not exist: "no module named ...".
        """
        self.runTwistd("gearman-worker", "--function", "r=myapp.nosuch:reverse", cwd=self.project)
        self.assertOneLine("cannot load myapp.nosuch:reverse: no module named myapp.nosuch")

    def test_missingAttribute(self) -> None:
        """
        A module without the name: "... has no attribute ...".
        """
        self.runTwistd("gearman-worker", "--function", "r=myapp.tasks:nosuch", cwd=self.project)
        self.assertOneLine("cannot load myapp.tasks:nosuch: myapp.tasks has no attribute nosuch")

    def test_importRaised(self) -> None:
        """
        A module whose import raises, or imports something missing: the
        exception, in one line.
        """
        self.runTwistd("gearman-worker", "--function", "r=myapp.broken:f", cwd=self.project)
        self.assertOneLine(
            "cannot load myapp.broken:f: importing myapp.broken raised ZeroDivisionError: division by zero"
        )
        self.runTwistd("gearman-worker", "--function", "r=myapp.needy:f", cwd=self.project)
        self.assertOneLine(
            "cannot load myapp.needy:f: importing myapp.needy raised ModuleNotFoundError: "
            "No module named 'no_such_dependency_xyz'"
        )


class VersionTests(SynchronousTestCase):
    """
    C{--version} after either plugin name prints gearman_tw's version.
    """

    def test_versions(self) -> None:
        """
        C{twistd gearman --version} and C{twistd gearman-worker --version}
        print ours, and exit 0.
        """
        for plugin in ("gearman", "gearman-worker"):
            result = subprocess.run(
                scriptArgv(plugin, "--version"),
                env=dict(os.environ, PYTHONPATH=REPO),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=60,
            )
            self.assertEqual(result.returncode, 0, result.stdout)
            self.assertIn(b"gearman_tw %s" % (__version__.encode("ascii"),), result.stdout)
