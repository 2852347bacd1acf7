"""
libgearman's gearadmin against both servers: every flag, same output (fds,
pids and the version normalised).
"""

import re

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import requireProgram, run, startGearmand, startOurs


class GearadminTests(SynchronousTestCase):
    """
    The same gearadmin session against gearmand and against gearman_tw.
    """

    def session(self, server) -> list:
        gearadmin = requireProgram("gearadmin")
        gearman = requireProgram("gearman")
        address = ["-h", "127.0.0.1", "-p", str(server.port)]
        run([gearman, *address, "-b", "-u", "uniq1", "-f", "queued"], input=b"x")
        run([gearman, *address, "-b", "-I", "-f", "queued"], input=b"y")
        outputs = []
        for flags in (
            ["--create-function", "made"],
            ["--status"],
            ["--priority-status"],
            ["--workers"],
            ["--show-jobs"],
            ["--show-unique-jobs"],
            ["--server-version"],
            ["--server-verbose"],
            ["--getpid"],
            ["--cancel-job", "T:2"],
            ["--show-jobs"],
            ["--drop-function", "made"],
            ["--drop-function", "nothing"],
            ["--status"],
        ):
            result = run([gearadmin, *address, *flags])
            text = result.stdout + result.stderr
            text = re.sub(rb"(?m)^\d+ 127\.0\.0\.1", b"FD 127.0.0.1", text)
            if flags == ["--show-unique-jobs"]:
                # The CLI gives the priority job a random UUID, whose hash
                # order varies from run to run.
                text = re.sub(rb"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", b"UUID", text)
                text = b"\n".join(sorted(text.split(b"\n")))
            if flags == ["--getpid"]:
                self.assertEqual(text.strip(), str(server.pid).encode())
                text = b"PID"
            if flags == ["--server-version"]:
                self.assertTrue(text.startswith(b"1.1.20"))
                text = b"VERSION"
            outputs.append((flags, result.returncode, text))
        return outputs

    def test_sameOutput(self) -> None:
        """
        Every gearadmin flag prints the same against both servers.
        """
        theirs = self.session(startGearmand(self))
        ours = self.session(startOurs(self))
        for (flags, code, expected), (_, ourCode, got) in zip(theirs, ours):
            self.assertEqual((ourCode, got), (code, expected), flags)
        status = dict((tuple(f), out) for f, _, out in ours)
        self.assertIn(b"queued\t2\t0\t0\n", status[("--status",)])
