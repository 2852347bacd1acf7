"""
The C{twistd gearman} process: endpoints and signals (start-up failures are
in L{tests.integration.test_startup}).
"""

import os
import signal
import socket
import subprocess
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import RawConnection, freePort, requireProgram, startOurs, stopProcess, waitFor


class TwistdTests(SynchronousTestCase):
    """
    Tests for the job server run by twistd.
    """

    def runningJob(self, server):
        worker = server.connect()
        client = server.connect()
        self.addCleanup(worker.close)
        self.addCleanup(client.close)
        worker.sendPacket(1, b"f")
        worker.sync()
        client.sendPacket(7, b"f", b"", b"x")
        self.assertEqual(client.readPacket(), (8, b"T:1"))
        worker.sendPacket(9)
        self.assertEqual(worker.readPacket(), (11, b"T:1\0f\0x"))
        return worker, client

    def test_sigtermWaitsForRunningJob(self) -> None:
        """
        On SIGTERM the server stops listening, lets the running job finish and
        deliver its result, then exits cleanly.
        """
        server = startOurs(self, "--drain-timeout", "20")
        worker, client = self.runningJob(server)
        server.process.send_signal(signal.SIGTERM)
        self.assertTrue(waitFor(lambda: b"Closed" in open(server.logPath, "rb").read()))
        self.assertIsNone(server.process.poll())
        worker.sendPacket(13, b"T:1", b"done")
        self.assertEqual(client.readPacket(), (13, b"T:1\0done"))
        # twistd ends by re-raising the signal that stopped it.
        self.assertEqual(server.process.wait(15), -signal.SIGTERM)

    def test_sigusr1Graceful(self) -> None:
        """
        SIGUSR1 closes the listener but serves open connections until no job
        is queued or running, then exits.
        """
        server = startOurs(self)
        worker, client = self.runningJob(server)
        client.sendPacket(18, b"f", b"", b"later")
        self.assertEqual(client.readPacket(), (8, b"T:2"))
        server.process.send_signal(signal.SIGUSR1)

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            except OSError:
                return True
            return False

        self.assertTrue(waitFor(refused))
        worker.sendPacket(13, b"T:1", b"one")
        self.assertEqual(client.readPacket(), (13, b"T:1\0one"))
        worker.sendPacket(9)
        self.assertEqual(worker.readPacket(), (11, b"T:2\0f\0later"))
        self.assertIsNone(server.process.poll())
        worker.sendPacket(13, b"T:2", b"")
        self.assertEqual(server.process.wait(15), 0)

    def test_unixEndpoint(self) -> None:
        """
        C{--endpoint unix:PATH} serves Gearman on a UNIX socket next to TCP.
        """
        directory = tempfile.mkdtemp()
        path = os.path.join(directory, "gearman.sock")
        server = startOurs(self, "--endpoint", "unix:" + path)
        self.assertTrue(waitFor(lambda: os.path.exists(path)))
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"status\n")
        reply = b""
        while not reply.endswith(b".\n"):
            data = sock.recv(4096)
            self.assertTrue(data)
            reply += data
        self.assertEqual(reply, b".\n")
        tcp = server.connect()
        self.addCleanup(tcp.close)
        self.assertEqual(tcp.admin(b"status\n"), b".\n")

    def test_adminShutdown(self) -> None:
        """
        With C{--admin-shutdown}, C{shutdown} from a loopback peer answers OK
        and stops the server.
        """
        server = startOurs(self, "--admin-shutdown")
        admin = server.connect()
        self.addCleanup(admin.close)
        self.assertEqual(admin.admin(b"shutdown\r\n"), b"OK\r\n")
        self.assertEqual(server.process.wait(15), 0)

    def test_adminShutdownOverUnixSocket(self) -> None:
        """
        A UNIX socket peer is local: with C{--admin-shutdown} its
        C{shutdown} stops the server; C{workers} shows it as C{unix}.
        """
        path = os.path.join(tempfile.mkdtemp(), "g.sock")
        server = startOurs(self, "--admin-shutdown", "--endpoint", "unix:" + path)
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.settimeout(5)

        def connected() -> bool:
            # The file appears at bind(), a moment before listen().
            try:
                sock.connect(path)
            except (FileNotFoundError, ConnectionRefusedError):
                return False
            return True

        self.assertTrue(waitFor(connected))
        sock.sendall(b"workers\n")
        self.assertIn(b" unix - :\n", sock.recv(4096))
        sock.sendall(b"shutdown\n")
        self.assertEqual(sock.recv(4096), b"OK\r\n")
        self.assertEqual(server.process.wait(15), 0)

    def test_shutdownRefusedByDefault(self) -> None:
        """
        Without C{--admin-shutdown}, C{shutdown} is an unknown command, as in
        gearmand 1.1.20, and the server keeps running.
        """
        server = startOurs(self)
        admin = server.connect()
        self.addCleanup(admin.close)
        self.assertEqual(
            admin.admin(b"shutdown\r\n"), b"ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n"
        )
        self.assertIsNone(server.process.poll())

    def test_garbageIsolated(self) -> None:
        """
        Garbage on one connection closes only that connection; a queued job
        and another connection are untouched, and the process lives on.
        """
        server = startOurs(self)
        client = server.connect()
        self.addCleanup(client.close)
        client.sendPacket(18, b"f", b"", b"kept")
        self.assertEqual(client.readPacket(), (8, b"T:1"))
        for garbage in (b"\0XYZ" + b"\xff" * 20, b"\0REQ\0\0\0\0\0\0\0\0", b"\0REQ\0\0\0\x07\0\0\0\x01x"):
            bad = RawConnection(server.port)
            self.addCleanup(bad.close)
            bad.send(garbage)
            self.assertTrue(bad.isClosed())
        self.assertEqual(client.admin(b"status\n"), b"f\t1\t0\t0\n.\n")
        self.assertIsNone(server.process.poll())

    def test_gearmanReactor(self) -> None:
        """
        twistd gearman runs on L{GearmanReactor} unless twistd's
        C{--reactor} chose another, and serves jobs on either; the reactor
        is also a twistd reactor plugin (C{--reactor gearman}).
        """
        for options, name in (
            ((), "gearman_tw.server.reactor.GearmanReactor"),
            (("--reactor", "epoll"), "twisted.internet.epollreactor.EPollReactor"),
            (("--reactor", "gearman"), "gearman_tw.server.reactor.GearmanReactor"),
        ):
            server = startOurs(self, twistdOptions=options)
            client = server.connect()
            self.addCleanup(client.close)
            client.sendPacket(16, b"ping")
            self.assertEqual(client.readPacket(), (17, b"ping"))
            self.assertIn("reactor class: %s." % (name,), server.log())

    def test_httpCurl(self) -> None:
        """
        With --http-port, curl -d gets a worker's result over HTTP, as with
        gearmand's HTTP protocol.
        """
        curl = requireProgram("curl")
        gearman = requireProgram("gearman")
        httpPort = freePort()
        server = startOurs(self, "--http-port", str(httpPort))
        worker = subprocess.Popen(
            [gearman, "-h", "127.0.0.1", "-p", str(server.port), "-w", "-f", "reverse", "--", "rev"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(stopProcess, worker)
        admin = server.connect()
        self.addCleanup(admin.close)
        self.assertTrue(waitFor(lambda: b"reverse\t0\t0\t1" in admin.admin(b"status\n")))
        result = subprocess.run(
            [curl, "-s", "-d", "Hello world!", "http://127.0.0.1:%d/reverse" % (httpPort,)],
            stdout=subprocess.PIPE,
            timeout=30,
        )
        # rev reverses each line; curl -d sends no newline.
        self.assertEqual(result.stdout, b"!dlrow olleH")


class ConnectionLimitProcessTests(SynchronousTestCase):
    """
    C{--max-connections-per-address} in a real server process.
    """

    def test_perAddress(self) -> None:
        """
        With a limit of 2, a third connection from 127.0.0.1 is closed at
        once while the first two are served; closing one makes room.
        """
        server = startOurs(self, "--max-connections-per-address", "2")

        def served():
            attempt = server.connect()
            try:
                attempt.sync()
            except Exception:
                attempt.close()
                return None
            self.addCleanup(attempt.close)
            return attempt

        # The start-up probe's connection may not be closed on the server
        # side yet: wait until two are served.
        first = waitFor(served, 10)
        second = waitFor(served, 10)
        self.assertTrue(first and second)
        third = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        self.addCleanup(third.close)
        self.assertEqual(third.recv(100), b"")
        first.close()

        self.assertTrue(waitFor(served, 10))
