"""
The C{gearman-tw} command against real job servers (ours and C gearmand),
with the libgearman CLI on the other side, and against no server at all.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import (
    REPO,
    freePort,
    requireProgram,
    run,
    startGearmand,
    startOurs,
    stopProcess,
    waitFor,
)
from tests.mixins import SynchronousTestCaseMixin

TW = [sys.executable, "-m", "gearman_tw"]
ENV = dict(os.environ, PYTHONPATH=REPO)


def said(f) -> bytes:
    """
    What a child process wrote to the file C{f} so far; read without
    moving the offset the child writes at.
    """
    return os.pread(f.fileno(), 1 << 20, 0)


def twRun(*args: str, input: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TW, *args], input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, timeout=timeout
    )


class CommandMixin(SynchronousTestCaseMixin):
    """
    C{gearman-tw} commands, the same against either server.
    """

    def start(self):
        raise NotImplementedError()

    def setUp(self) -> None:
        self.server = self.start()
        self.gearman = requireProgram("gearman")
        self.address = ["-h", "127.0.0.1", "-p", str(self.server.port)]

    def tw(self, *args: str, input: bytes = b"", check: bool = True):
        result = twRun(*args, *self.address, input=input)
        if check:
            self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def background(self, argv, stderr=subprocess.DEVNULL):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr, env=ENV)
        self.addCleanup(stopProcess, process)
        return process

    def gearmanWorker(self, *args: str):
        return self.background([self.gearman, *self.address, "-w", *args])

    def stderrFile(self):
        f = tempfile.TemporaryFile()
        self.addCleanup(f.close)
        return f

    def read(self, f) -> bytes:
        return said(f)

    def workers(self, function: str) -> int:
        for line in self.tw("status").stdout.decode().splitlines()[1:]:
            fields = line.split()
            if fields[0] == function:
                return int(fields[3])
        return 0

    def test_submit(self) -> None:
        """
        C{submit} prints a foreground result (data from stdin or argument);
        C{-b} prints the handle; a failing job exits non-zero.
        """
        self.gearmanWorker("-f", "rev", "--", "rev")
        self.gearmanWorker("-f", "no", "--", "false")
        self.assertTrue(waitFor(lambda: self.workers("rev") and self.workers("no")))
        self.assertEqual(self.tw("submit", "rev", input=b"hello\n").stdout, b"olleh\n")
        self.assertEqual(self.tw("submit", "rev", "abc", "--unique", "u1", "-I").stdout, b"cba")
        self.assertEqual(self.tw("submit", "rev", "abc", "--priority", "low").stdout, b"cba")
        handle = self.tw("submit", "-b", "later", "x").stdout
        self.assertTrue(handle.startswith(b"T:") and handle.endswith(b"\n"))
        failed = self.tw("submit", "no", "x", check=False)
        self.assertEqual(failed.returncode, 1)
        self.assertEqual(failed.stderr, b"gearman-tw: job failed\n")

    def test_sameAsGearman(self) -> None:
        """
        A gearman command line, given to gearman-tw as it is, prints what
        gearman prints: jobs from arguments, lines (-n, -N), no input (-s),
        a prefix (-P), several functions (-f -f).
        """
        self.gearmanWorker("-f", "rev", "--", "rev")
        self.gearmanWorker("-f", "up", "--", "tr", "a-z", "A-Z")
        self.assertTrue(waitFor(lambda: self.workers("rev") and self.workers("up")))
        for args, stdin in [
            (["-f", "rev", "abc", "def"], b""),
            (["-f", "rev", "-N"], b"ab\ncd\nef\n"),
            (["-n", "-f", "rev"], b"ab\ncd\n"),
            (["-s", "-f", "rev"], b"ignored"),
            (["-P", "-f", "up", "shout"], b""),
            (["-f", "up", "-u", "k1", "x"], b""),
        ]:
            theirs = run([self.gearman, *self.address, *args], input=stdin)
            ours = twRun(*self.address, *args, input=stdin)
            self.assertEqual((ours.returncode, ours.stdout), (theirs.returncode, theirs.stdout), args)
            self.assertEqual(ours.stderr, b"", args)
        # gearman prints several functions' results as they end; we print
        # them in the order of -f.
        self.assertEqual(twRun(*self.address, "-f", "rev", "-f", "up", "-N", input=b"ab\ncd\n").stdout, b"baABdcCD")

    def test_worker(self) -> None:
        """
        C{worker FUNCTION COMMAND...} runs the command for each job; options
        may follow the command's words when C{--} sets them apart.
        """
        self.background([*TW, *self.address, "worker", "upper", "tr", "a-z", "A-Z", "--client-id", "cli"])
        self.assertTrue(waitFor(lambda: self.workers("upper")))
        result = run([self.gearman, *self.address, "-f", "upper"], input=b"shout")
        self.assertEqual(result.stdout, b"SHOUT")
        self.assertIn(b" cli ", self.tw("workers").stdout)

    def test_workerCountFunctionsLines(self) -> None:
        """
        C{-f} repeated serves several functions with one command (which
        learns which from C{GEARMAN_FUNCTION}); C{-c N} exits after N jobs;
        C{-N} sends each output line as it comes (WORK_DATA), as
        C{gearman -w -N} does, and then an empty result (gearman's is
        whatever its line buffer holds).
        """
        script = 'case "$GEARMAN_FUNCTION" in up) tr a-z A-Z;; *) printf "a\\nb\\n";; esac'
        worker = self.background(
            [*TW, "worker", "-f", "up", "-f", "lines", "-N", "-c", "2", *self.address, "--", "sh", "-c", script]
        )
        self.assertTrue(waitFor(lambda: self.workers("up") and self.workers("lines")))
        self.assertEqual(run([self.gearman, *self.address, "-f", "up", "abc"]).stdout, b"ABC")
        self.assertEqual(run([self.gearman, *self.address, "-f", "lines", "x"]).stdout, b"ab")
        self.assertEqual(worker.wait(15), 0)

    def test_workerFailureShown(self) -> None:
        """
        A failing command's standard error reaches the worker's, with a
        line naming the job, the command and its exit status; the client
        is told the job failed.
        """
        errors = self.stderrFile()
        worker = self.background(
            [*TW, *self.address, "worker", "-c", "1", "broken", "--", "sh", "-c", "echo 'oops: no disk' >&2; exit 3"],
            stderr=errors,
        )
        self.assertTrue(waitFor(lambda: self.workers("broken")))
        failed = self.tw("submit", "broken", "x", check=False)
        self.assertEqual((failed.returncode, failed.stderr), (1, b"gearman-tw: job failed\n"))
        self.assertEqual(worker.wait(15), 0)
        lines = self.read(errors).decode().splitlines()
        self.assertIn("oops: no disk", lines)
        self.assertTrue(
            any(
                line.startswith("gearman-tw: job T:")
                and line.endswith(
                    "(broken) failed: sh -c 'echo '\"'\"'oops: no disk'\"'\"' >&2; exit 3' exited with status 3"
                )
                for line in lines
            ),
            lines,
        )

    def test_workerServerState(self) -> None:
        """
        A worker says when its server goes away and cannot be reached
        again, once per change, not once per connection or attempt.
        """
        errors = self.stderrFile()
        self.background([*TW, *self.address, "worker", "--concurrency", "3", "f", "cat"], stderr=errors)
        self.assertTrue(waitFor(lambda: self.workers("f") == 3))
        self.server.stop()
        name = "127.0.0.1:%d" % (self.server.port,)
        self.assertTrue(waitFor(lambda: b"cannot reach" in self.read(errors)))
        # Several attempts per connection happen meanwhile (backoff from 1 s).
        time.sleep(4)
        lines = self.read(errors).decode().splitlines()
        self.assertEqual(lines.count("gearman-tw: connected to job server %s" % (name,)), 1, lines)
        lost = "gearman-tw: lost the connection to job server %s" % (name,)
        self.assertEqual(len([line for line in lines if line.startswith(lost)]), 1, lines)
        self.assertEqual(
            lines.count("gearman-tw: cannot reach job server %s: connection refused; retrying" % (name,)), 1, lines
        )
        self.assertEqual(len(lines), 3, lines)

    def test_admin(self) -> None:
        """
        The admin commands print readable tables and values, as JSON with
        C{--json}, and take gearadmin's spelling too.
        """
        self.tw("create-function", "made")
        handle = self.tw("submit", "-b", "-u", "key1", "made", "x").stdout.strip()
        self.assertEqual(
            self.tw("status").stdout.decode().split(),
            ["FUNCTION", "QUEUED", "RUNNING", "WORKERS", "made", "1", "0", "0"],
        )
        self.assertEqual(self.tw("--status").stdout, self.tw("status").stdout)
        self.assertEqual(
            self.tw("priority-status").stdout.decode().split()[5:],
            ["made", "0", "1", "0", "0"],
        )
        self.assertIn(handle.decode(), self.tw("jobs").stdout.decode())
        self.assertEqual(self.tw("unique-jobs").stdout, b"UNIQUE\nkey1\n")
        self.assertEqual(self.tw("--show-unique-jobs").stdout, b"UNIQUE\nkey1\n")
        self.assertEqual(self.tw("getpid").stdout, b"%d\n" % (self.server.pid,))
        self.assertTrue(self.tw("version").stdout.startswith(b"1.1.20"))
        self.assertTrue(self.tw("--server-version").stdout.startswith(b"1.1.20"))
        self.assertTrue(self.tw("verbose").stdout.strip().isalpha())
        self.assertEqual(
            json.loads(self.tw("status", "--json").stdout),
            [
                {
                    "server": "127.0.0.1:%d" % (self.server.port,),
                    "result": [{"function": "made", "queued": 1, "running": 0, "workers": 0, "total": 1}],
                }
            ],
        )
        self.assertEqual(json.loads(self.tw("jobs", "--json").stdout)[0]["result"][0]["handle"], handle.decode())
        self.assertEqual(self.tw("cancel", handle.decode()).stdout, b"cancelled " + handle + b"\n")
        missing = self.tw("cancel", "T:999", check=False)
        self.assertEqual((missing.returncode, missing.stderr), (1, b"gearman-tw: no such job: T:999\n"))
        self.tw("maxqueue", "made", "5")
        dropped = self.tw("drop-function", "nothing", check=False)
        self.assertEqual(dropped.returncode, 1)
        self.assertTrue(
            dropped.stderr.startswith(b"gearman-tw: 127.0.0.1:%d: ERR" % (self.server.port,)), dropped.stderr
        )

    def test_severalServers(self) -> None:
        """
        With several servers, every one is asked and reported, one that is
        down too (exit status 1); the others still answer.
        """
        dead = freePort()
        up = "127.0.0.1:%d" % (self.server.port,)
        self.tw("create-function", "made")
        result = twRun("status", "-h", up, "-h", "127.0.0.1:%d" % (dead,))
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr, b"gearman-tw: cannot reach 127.0.0.1:%d: connection refused\n" % (dead,))
        self.assertEqual(
            [line.split() for line in result.stdout.decode().splitlines()],
            [["SERVER", "FUNCTION", "QUEUED", "RUNNING", "WORKERS"], [up, "made", "0", "0", "0"]],
        )
        result = twRun("version", "--json", "-h", "127.0.0.1:%d" % (dead,), "-h", up)
        self.assertEqual(result.returncode, 1)
        answers = json.loads(result.stdout)
        self.assertEqual([a["server"] for a in answers], ["127.0.0.1:%d" % (dead,), up])
        self.assertEqual(answers[0]["error"], "cannot reach 127.0.0.1:%d: connection refused" % (dead,))
        self.assertTrue(answers[1]["result"].startswith("1.1.20"))

    def test_badArguments(self) -> None:
        """
        Arguments the library refuses end the command with one line and
        status 1, a wrong command line with one line and status 2; not a
        traceback either way.
        """
        for args, status in (
            (("worker", "--concurrency", "0", "f", "cat"), 2),
            (("submit", "-u", "u" * 64, "f", "x"), 1),
            (("worker", "f", "no-such-command-here"), 2),
            (("submit", "--timeout", "0", "f", "x"), 2),
            (("submit", "-p", "high", "f", "x"), 2),
        ):
            result = self.tw(*args, check=False)
            self.assertEqual(result.returncode, status, (args, result.stderr))
            self.assertEqual(result.stderr.count(b"\n"), 1, result.stderr)
            self.assertTrue(result.stderr.startswith(b"gearman-tw: "), result.stderr)


class OursCommandTests(CommandMixin, SynchronousTestCase):
    def start(self):
        return startOurs(self)


class GearmandCommandTests(CommandMixin, SynchronousTestCase):
    def start(self):
        return startGearmand(self)


class NoServerTests(SynchronousTestCase):
    """
    Against a port nobody listens on.
    """

    def setUp(self) -> None:
        self.port = freePort()
        self.name = "127.0.0.1:%d" % (self.port,)

    def timed(self, *args: str) -> tuple:
        """
        Run gearman-tw; return the result and how much longer it took than
        printing its help (starting Python and Twisted, slow on a busy
        machine).
        """
        started = time.monotonic()
        twRun("-H")
        baseline = time.monotonic() - started
        started = time.monotonic()
        result = twRun(*args)
        return result, time.monotonic() - started - baseline

    def test_submitFailsAtOnce(self) -> None:
        """
        A submission to a server that refuses connections fails at once
        (it used to wait 10.5 s) naming the server and why; so does an
        admin command.
        """
        for args in (["submit", "f", "x"], ["-f", "f", "x"], ["status"]):
            result, extra = self.timed(*args, "-p", str(self.port))
            self.assertLess(extra, 4, args)
            self.assertEqual(
                (result.returncode, result.stderr),
                (1, b"gearman-tw: cannot reach %s: connection refused\n" % (self.name.encode(),)),
                args,
            )

    def test_submitTimeout(self) -> None:
        """
        C{-t} is milliseconds, as in gearman: a job nobody works on fails
        after it.
        """
        server = startOurs(self)
        result, extra = self.timed("submit", "-t", "300", "-p", str(server.port), "nobody", "x")
        self.assertLess(extra, 4)
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"did not finish within 0.3 s", result.stderr)

    def test_workerSaysUnreachable(self) -> None:
        """
        A worker whose server cannot be reached says so once, however many
        connections and attempts, and nothing more when it is stopped.
        """
        with tempfile.TemporaryFile() as errors:
            worker = subprocess.Popen(
                [*TW, "worker", "-p", str(self.port), "--concurrency", "3", "f", "cat"],
                stdout=subprocess.DEVNULL,
                stderr=errors,
                env=ENV,
            )
            try:
                self.assertTrue(waitFor(lambda: b"cannot reach" in said(errors)))
                # Each of the three connections tries again meanwhile.
                time.sleep(3)
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(15)
            self.assertEqual(
                said(errors).decode().splitlines(),
                ["gearman-tw: cannot reach job server %s: connection refused; retrying" % (self.name,)],
            )


class ShutdownTests(SynchronousTestCase):
    """
    C{gearman-tw shutdown}.
    """

    def test_ours(self) -> None:
        """
        Our server, started with C{--admin-shutdown}, stops.
        """
        server = startOurs(self, "--admin-shutdown")
        result = twRun("shutdown", "-p", str(server.port))
        self.assertEqual((result.returncode, result.stderr), (0, b""))
        self.assertTrue(waitFor(lambda: server.process.poll() is not None))

    def test_gearmand(self) -> None:
        """
        gearmand 1.1.20 has no shutdown command: one line and status 1.
        """
        server = startGearmand(self)
        result = twRun("--shutdown", "-p", str(server.port))
        self.assertEqual(result.returncode, 1)
        self.assertTrue(result.stderr.startswith(b"gearman-tw: 127.0.0.1:%d: ERR" % (server.port,)), result.stderr)
        self.assertIsNone(server.process.poll())


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
        return twRun("-h", server, *args)

    def test_verified(self) -> None:
        """
        With the server's CA and a client certificate, a worker and a
        submission work over mutual TLS, and so do admin commands.
        """
        c = self.certificates
        server = c.description(self.server.port, c.caPath, c.client, host="localhost")
        worker = subprocess.Popen(
            [*TW, "-h", server, "worker", "upper", "tr", "a-z", "A-Z"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=ENV,
        )
        self.addCleanup(stopProcess, worker)
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
            (
                c.description(port, c.otherCAPath, c.client),
                b"server certificate not trusted: self-signed certificate in",
            ),
            (c.description(port, c.caPath), b"alert certificate required"),
            ("ssl:host=127.0.0.1:port=%d" % (port,), b"use tls:host=HOST:port=PORT"),
        ]:
            for args in (["version"], ["submit", "f", "x"]):
                result = self.tw(server, *args)
                self.assertEqual(result.returncode, 1, (server, args))
                self.assertTrue(result.stderr.startswith(b"gearman-tw: "), result.stderr)
                self.assertEqual(result.stderr.count(b"\n"), 1, result.stderr)
                self.assertIn(why, result.stderr)
