"""
The C{gearman-tw} command against real job servers (ours and C gearmand),
with the libgearman CLI on the other side.
"""

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import REPO, requireProgram, run, startGearmand, startOurs, waitFor



class CommandMixin:
    """
    C{gearman-tw} subcommands.
    """

    def start(self):
        raise NotImplementedError()

    def setUp(self) -> None:
        self.server = self.start()
        self.gearman = requireProgram("gearman")

    def tw(self, *args: str, input: bytes = b"", check: bool = True):
        result = subprocess.run(
            [sys.executable, "-m", "gearman_tw", "-s", "127.0.0.1:%d" % self.server.port, *args],
            input=input,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=REPO),
            timeout=30,
        )
        if check:
            self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def background(self, argv):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=REPO))
        self.addCleanup(lambda: (process.kill(), process.wait(10)))
        return process

    def workers(self, function: str) -> int:
        for line in self.tw("status").stdout.decode().splitlines()[1:]:
            fields = line.split()
            if fields[0] == function:
                return int(fields[3])
        return 0

    def test_submit(self) -> None:
        """
        C{submit} prints a foreground result (data from stdin or argument);
        C{--background} prints the handle; a failing job exits non-zero.
        """
        self.background([self.gearman, "-h", "127.0.0.1", "-p", str(self.server.port), "-w", "-f", "rev", "--", "rev"])
        self.background([self.gearman, "-h", "127.0.0.1", "-p", str(self.server.port), "-w", "-f", "no", "--", "false"])
        self.assertTrue(waitFor(lambda: self.workers("rev") and self.workers("no")))
        self.assertEqual(self.tw("submit", "rev", input=b"hello\n").stdout, b"olleh\n")
        self.assertEqual(self.tw("submit", "rev", "abc", "--unique", "u1", "-p", "high").stdout, b"cba")
        handle = self.tw("submit", "--background", "later", "x").stdout
        self.assertTrue(handle.startswith(b"T:") and handle.endswith(b"\n"))
        failed = self.tw("submit", "no", "x", check=False)
        self.assertEqual(failed.returncode, 1)
        self.assertEqual(failed.stderr, b"gearman-tw: job failed\n")

    def test_worker(self) -> None:
        """
        C{worker FUNCTION COMMAND...} runs the command for each job.
        """
        self.background(
            [sys.executable, "-m", "gearman_tw", "-s", "127.0.0.1:%d" % self.server.port, "worker", "upper", "--client-id", "cli", "tr", "a-z", "A-Z"]
        )
        self.assertTrue(waitFor(lambda: self.workers("upper")))
        result = run([self.gearman, "-h", "127.0.0.1", "-p", str(self.server.port), "-f", "upper"], input=b"shout")
        self.assertEqual(result.stdout, b"SHOUT")
        self.assertIn(b" cli ", self.tw("workers").stdout)

    def test_admin(self) -> None:
        """
        The admin subcommands print readable tables and values.
        """
        self.tw("create-function", "made")
        handle = self.tw("submit", "-b", "made", "x").stdout.strip()
        self.assertEqual(
            self.tw("status").stdout.decode().split(),
            ["FUNCTION", "QUEUED", "RUNNING", "WORKERS", "made", "1", "0", "0"],
        )
        self.assertEqual(
            self.tw("priority-status").stdout.decode().split()[5:],
            ["made", "0", "1", "0", "0"],
        )
        self.assertIn(handle.decode(), self.tw("jobs").stdout.decode())
        self.assertEqual(self.tw("getpid").stdout, b"%d\n" % (self.server.pid,))
        self.assertTrue(self.tw("version").stdout.startswith(b"1.1.20"))
        self.assertEqual(self.tw("cancel", handle.decode()).stdout, b"cancelled " + handle + b"\n")
        missing = self.tw("cancel", "T:999", check=False)
        self.assertEqual((missing.returncode, missing.stderr), (1, b"gearman-tw: no such job: T:999\n"))
        self.tw("maxqueue", "made", "5")
        dropped = self.tw("drop-function", "nothing", check=False)
        self.assertEqual(dropped.returncode, 1)


    def test_badArguments(self) -> None:
        """
        Arguments the library refuses end the command with one line and
        status 1, not a traceback.
        """
        for args in (("worker", "-c", "0", "f", "cat"), ("submit", "--timeout", "0", "f", "x")):
            result = self.tw(*args, check=False)
            self.assertEqual(result.returncode, 1, args)
            self.assertEqual(result.stderr.count(b"\n"), 1, result.stderr)
            self.assertTrue(result.stderr.startswith(b"gearman-tw: "), result.stderr)


class OursCommandTests(CommandMixin, SynchronousTestCase):
    def start(self):
        return startOurs(self)


class GearmandCommandTests(CommandMixin, SynchronousTestCase):
    def start(self):
        return startGearmand(self)


class TLSCommandTests(SynchronousTestCase):
    """
    C{gearman-tw} with C{tls:} servers: it verifies the server's
    certificate, and can present its own.
    """

    def setUp(self) -> None:
        from tests.tlscerts import Certificates

        self.certificates = Certificates(self)
        self.server = startOurs(self, *self.certificates.serverArgs(mutual=True))

    def tw(self, server: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "gearman_tw", "-s", server, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=REPO),
            timeout=30,
        )

    def test_verified(self) -> None:
        """
        With the server's CA and a client certificate, a worker and a
        submission work over mutual TLS, and so do admin commands.
        """
        c = self.certificates
        server = c.description(self.server.port, c.caPath, c.client, host="localhost")
        worker = subprocess.Popen(
            [sys.executable, "-m", "gearman_tw", "-s", server, "worker", "upper", "tr", "a-z", "A-Z"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=REPO),
        )
        self.addCleanup(lambda: (worker.kill(), worker.wait(10)))
        self.assertTrue(waitFor(lambda: b"upper" in self.tw(server, "workers").stdout))
        result = self.tw(server, "submit", "upper", "shout")
        self.assertEqual((result.returncode, result.stdout), (0, b"SHOUT"), result.stderr)
        self.assertTrue(self.tw(server, "version").stdout.startswith(b"1.1.20"))

    def test_refused(self) -> None:
        """
        A server whose certificate is not trusted (the platform's store by
        default), a client without the certificate the server requires,
        or an C{ssl:} description end the command with one line saying why.
        """
        c = self.certificates
        port = self.server.port
        for server, why in [
            (c.description(port, client=c.client), b"server certificate not trusted: self-signed certificate in"),
            (c.description(port, c.otherCAPath, c.client), b"server certificate not trusted: self-signed certificate in"),
            (c.description(port, c.caPath), b"alert certificate required"),
            ("ssl:host=127.0.0.1:port=%d" % (port,), b"use tls:host=HOST:port=PORT"),
        ]:
            result = self.tw(server, "version")
            self.assertEqual(result.returncode, 1, server)
            self.assertTrue(result.stderr.startswith(b"gearman-tw: "), result.stderr)
            self.assertEqual(result.stderr.count(b"\n"), 1, result.stderr)
            self.assertIn(why, result.stderr)
