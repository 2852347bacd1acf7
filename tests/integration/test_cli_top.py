"""
C{gearman-tw top} in a real terminal: a tmux session of its own (its own
server socket), read with C{capture-pane}, driven with C{send-keys}.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

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


class TopMixin(SynchronousTestCaseMixin):
    """
    The live view against either server.
    """

    def start(self):
        raise NotImplementedError()

    def setUp(self) -> None:
        self.tmuxPath = requireProgram("tmux")
        self.gearman = requireProgram("gearman")
        self.server = self.start()
        directory = tempfile.mkdtemp(prefix="gearman-top-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.socket = os.path.join(directory, "tmux.sock")
        self.addCleanup(
            lambda: subprocess.run([self.tmuxPath, "-S", self.socket, "kill-server"], capture_output=True, timeout=10)
        )

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.tmuxPath, "-S", self.socket, *args], capture_output=True, timeout=10)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "top").stdout.decode("utf-8", "replace")

    def top(self, *args: str) -> None:
        """
        Run C{gearman-tw top ARGS} in a 100x30 terminal; once it exits the
        pane says C{EXIT=<status>}.
        """
        command = " ".join(
            ["env", "PYTHONPATH=" + shlex.quote(REPO), shlex.quote(sys.executable), "-m", "gearman_tw", "top"]
            + [shlex.quote(a) for a in args]
        )
        result = self.tmux(
            "new-session", "-d", "-s", "top", "-x", "100", "-y", "30", command + "; echo EXIT=$?; sleep 60"
        )
        self.assertEqual(result.returncode, 0, result.stderr)

    def gearmanWorker(self, *args: str) -> None:
        process = subprocess.Popen(
            [self.gearman, "-h", "127.0.0.1", "-p", str(self.server.port), "-w", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(stopProcess, process)

    def test_liveView(self) -> None:
        """
        The view lists the functions with their queued, running and worker
        counts, follows changes, says which server cannot be reached, and
        q ends it with status 0, the terminal as it was.
        """
        address = ["-h", "127.0.0.1", "-p", str(self.server.port)]
        for _ in range(3):
            run([self.gearman, *address, "-b", "-f", "piled"], input=b"x")
        dead = freePort()
        up = "127.0.0.1:%d" % (self.server.port,)
        self.top("-h", up, "-h", "127.0.0.1:%d" % (dead,), "--interval", "0.2")
        refused = "cannot reach 127.0.0.1:%d: connection refused" % (dead,)
        self.assertTrue(
            waitFor(
                lambda: (
                    re.search(r"(?m)^%s\s+piled\s+3\s+0\s+0$" % (re.escape(up),), self.screen())
                    and refused in self.screen()
                )
            ),
            self.screen(),
        )
        screen = self.screen()
        self.assertIn("1 functions, 3 queued, 0 running, 0 workers", screen)
        self.assertRegex(screen, r"(?m)^SERVER\s+FUNCTION\s+QUEUED\s+RUNNING\s+WORKERS$")
        self.gearmanWorker("-f", "other", "--", "cat")
        self.assertTrue(
            waitFor(lambda: re.search(r"(?m)^%s\s+other\s+0\s+0\s+1$" % (re.escape(up),), self.screen())), self.screen()
        )
        self.tmux("send-keys", "-t", "top", "q")
        self.assertTrue(waitFor(lambda: "EXIT=" in self.screen()), self.screen())
        screen = self.screen()
        self.assertIn("EXIT=0", screen)
        self.assertNotIn("FUNCTION", screen)

    def test_resize(self) -> None:
        """
        A smaller terminal gets a smaller screen, not an error.
        """
        self.top("-p", str(self.server.port), "--interval", "0.2")
        self.assertTrue(waitFor(lambda: "FUNCTION" in self.screen()), self.screen())
        self.tmux("resize-window", "-t", "top", "-x", "30", "-y", "4")
        size = self.tmux("display-message", "-p", "-t", "top", "#{pane_width}x#{pane_height}").stdout
        self.assertEqual(size, b"30x4\n")
        # Redrawn for the new size: the title cut to 29 columns.
        self.assertTrue(
            waitFor(
                lambda: self.screen().splitlines()[:1] == [("gearman-tw top - 127.0.0.1:%d" % (self.server.port,))[:29]]
            ),
            self.screen(),
        )
        self.tmux("send-keys", "-t", "top", "q")
        self.assertTrue(waitFor(lambda: "EXIT=0" in self.screen()), self.screen())


class OursTopTests(TopMixin, SynchronousTestCase):
    def start(self):
        return startOurs(self)


class GearmandTopTests(TopMixin, SynchronousTestCase):
    def start(self):
        return startGearmand(self)


class NotATerminalTests(SynchronousTestCase):
    """
    Without a terminal, C{top} says so.
    """

    def test_pipe(self) -> None:
        """
        Standard output a pipe: one line, status 2.
        """
        result = subprocess.run(
            [sys.executable, "-m", "gearman_tw", "top"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=dict(os.environ, PYTHONPATH=REPO),
            timeout=30,
        )
        self.assertEqual(
            (result.returncode, result.stderr),
            (2, b"gearman-tw: top needs a terminal (gearman-tw status lists the same once)\n"),
        )
