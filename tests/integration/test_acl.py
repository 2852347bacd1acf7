"""
The access policy in a real server process: TLS client certificates as
identities, reloading on SIGHUP, and refusing a bad policy at start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import (
    REPO,
    RawConnection,
    freePort,
    packet,
    requireProgram,
    run,
    startOurs,
    twistdArgv,
    waitFor,
)
from tests.tlscerts import makeCertificate, writePEM

SUBMIT_JOB_BG = 18
JOB_CREATED = 8
ERROR = 19
CAN_DO = 1


def submitReply(connection: RawConnection, function: bytes) -> tuple:
    connection.sendPacket(SUBMIT_JOB_BG, function, b"", b"data")
    return connection.readPacket()


class PolicyProcessTests(SynchronousTestCase):
    """
    C{--access-policy} in a running server.
    """

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.path = os.path.join(self.directory, "policy.toml")

    def write(self, text: str) -> None:
        # Replace, as an editor or a deployment would.
        temporary = self.path + ".new"
        with open(temporary, "w") as f:
            f.write(text)
        os.replace(temporary, self.path)

    def test_reloadOnHangup(self) -> None:
        """
        SIGHUP puts a changed policy in force for connections already open;
        a broken one is logged and the policy in force kept.
        """
        self.write("[[allow]]\nwho = '*'\nsubmit = 'a'\n")
        server = startOurs(self, "--access-policy", self.path, "--verbose", "INFO")
        client = server.connect()
        self.addCleanup(client.close)
        self.assertEqual(submitReply(client, b"a")[0], JOB_CREATED)
        ptype, payload = submitReply(client, b"b")
        self.assertEqual((ptype, payload), (ERROR, b"PERMISSION_DENIED\0address:127.0.0.1 may not submit to b"))
        self.write("[[allow]]\nwho = '*'\nsubmit = ['a', 'b']\n")
        os.kill(server.pid, signal.SIGHUP)
        self.assertTrue(waitFor(lambda: "Access policy reloaded" in server.log(), 10))
        self.assertEqual(submitReply(client, b"b")[0], JOB_CREATED)
        self.write("[[allow]\n")
        os.kill(server.pid, signal.SIGHUP)
        self.assertTrue(waitFor(lambda: "Keeping the access policy in force" in server.log(), 10))
        self.assertEqual(submitReply(client, b"b")[0], JOB_CREATED)
        self.assertIsNone(server.process.poll())

    def test_libgearmanRefused(self) -> None:
        """
        libgearman's C{gearman} tool, refused by the policy, reports the
        server's reason, and nothing is queued; an allowed submission goes
        through.
        """
        gearman = requireProgram("gearman")
        self.write("[[allow]]\nwho = '*'\nsubmit = 'public.*'\n")
        server = startOurs(self, "--access-policy", self.path)
        port = str(server.port)
        refused = run([gearman, "-h", "127.0.0.1", "-p", port, "-f", "private", "-b", "data"])
        self.assertIn(b"PERMISSION_DENIED", refused.stderr)
        self.assertIn(b"address:127.0.0.1 may not submit to private", refused.stderr)
        run([gearman, "-h", "127.0.0.1", "-p", port, "-f", "public.news", "-b", "data"])
        admin = server.connect()
        self.addCleanup(admin.close)
        self.write("[[allow]]\nwho = '*'\nadmin = '*'\n")
        os.kill(server.pid, signal.SIGHUP)
        self.assertTrue(waitFor(lambda: admin.admin(b"status\n").startswith(b"public.news\t1"), 10))
        self.assertNotIn(b"private", admin.admin(b"status\n"))

    def test_badPolicyAtStart(self) -> None:
        """
        A policy that cannot be used stops twistd at start with one line
        saying why, and a non-zero status.
        """
        self.write("[[allow]]\nwho = 'somebody'\n")
        result = subprocess.run(
            twistdArgv("gearman", "--port", str(freePort()), "--listen", "127.0.0.1", "--access-policy", self.path),
            env=dict(os.environ, PYTHONPATH=REPO),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(b"must start with cert:, token: or address:", result.stdout)
        self.assertNotIn(b"Traceback", result.stdout)

    def test_certificateNames(self) -> None:
        """
        Over mutual TLS, the common name of a peer's certificate is its
        identity: a web front end may submit but not work, a worker may
        work but not submit.
        """
        authority = makeCertificate("Test CA", ca=True)
        serverCert, serverKey = writePEM(self.directory, "server", *makeCertificate("localhost", authority))
        caPath, _ = writePEM(self.directory, "ca", *authority)
        web = writePEM(self.directory, "web", *makeCertificate("web-1", authority))
        worker = writePEM(self.directory, "worker", *makeCertificate("worker-1", authority))
        self.write(
            "[[allow]]\nwho = 'cert:web-*'\nsubmit = 'resize'\n"
            "[[allow]]\nwho = 'cert:worker-*'\nwork = 'resize'\n"
        )
        server = startOurs(
            self,
            "--ssl",
            "--ssl-certificate", serverCert,
            "--ssl-key", serverKey,
            "--ssl-ca-file", caPath,
            "--access-policy", self.path,
        )

        def connect(pair) -> ssl.SSLSocket:  # type: ignore[no-untyped-def]
            context = ssl.create_default_context(cafile=caPath)
            context.load_cert_chain(*pair)
            sock = context.wrap_socket(
                socket.create_connection(("127.0.0.1", server.port), timeout=10), server_hostname="localhost"
            )
            self.addCleanup(sock.close)
            return sock

        def reply(sock: ssl.SSLSocket, data: bytes) -> bytes:
            sock.sendall(data)
            got = b""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                got += sock.recv(4096)
                if len(got) >= 12 and len(got) >= 12 + int.from_bytes(got[8:12], "big"):
                    return got
            raise AssertionError("no reply: %r" % (got,))

        frontEnd = connect(web)
        self.assertEqual(reply(frontEnd, packet(SUBMIT_JOB_BG, b"resize", b"", b"x"))[4:8], b"\0\0\0\x08")
        refused = reply(frontEnd, packet(CAN_DO, b"resize") + packet(16, b"sync"))
        self.assertIn(b"PERMISSION_DENIED\0cert:web-1, address:127.0.0.1 may not work on resize", refused)
        back = connect(worker)
        refused = reply(back, packet(SUBMIT_JOB_BG, b"resize", b"", b"x"))
        self.assertIn(b"cert:worker-1, address:127.0.0.1 may not submit to resize", refused)
        assigned = reply(back, packet(CAN_DO, b"resize") + packet(9))
        self.assertEqual(assigned[4:8], b"\0\0\0\x0b")  # JOB_ASSIGN
