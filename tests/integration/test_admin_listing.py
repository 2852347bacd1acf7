"""
Long admin listings against our server process: every other connection is
served while one connection's listings go out.
"""

import socket
import struct
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import packet, startOurs

SUBMIT_JOB_BG = 18
ECHO_REQ = 16


class ListingStallTests(SynchronousTestCase):
    """
    A few bytes of admin commands do not freeze the server.
    """

    def connect(self, port: int) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.addCleanup(connection.close)
        return connection

    def queue(self, connection: socket.socket, count: int) -> None:
        """
        Queue C{count} background jobs and wait for their JOB_CREATEDs.
        """
        connection.sendall(b"".join(packet(SUBMIT_JOB_BG, b"f", b"", b"x%d" % i) for i in range(count)))
        data = b""
        created = 0
        deadline = time.monotonic() + 60
        while created < count and time.monotonic() < deadline:
            data += connection.recv(1 << 20)
            while len(data) >= 12:
                size = struct.unpack(">I", data[8:12])[0]
                if len(data) < 12 + size:
                    break
                data = data[12 + size :]
                created += 1
        self.assertEqual(created, count)

    def test_showJobsDoesNotStall(self) -> None:
        """
        With 60,000 jobs queued, five pipelined C{show jobs} (50 bytes)
        keep an ECHO from another connection waiting no more than 0.5 s
        (each took over a second of the whole server before), and the
        listings arrive whole, one after the other.
        """
        count = 60000
        server = startOurs(self)
        self.queue(self.connect(server.port), count)
        admin = self.connect(server.port)
        pinger = self.connect(server.port)
        admin.sendall(b"show jobs\n" * 5)
        worst = 0.0
        for _ in range(30):
            sent = time.monotonic()
            pinger.sendall(packet(ECHO_REQ, b"hi"))
            reply = b""
            while len(reply) < 14:
                reply += pinger.recv(100)
            worst = max(worst, time.monotonic() - sent)
            time.sleep(0.02)
        self.assertLess(worst, 0.5)
        listings = b""
        while listings.count(b"\n.\n") < 5:
            chunk = admin.recv(1 << 20)
            self.assertTrue(chunk)
            listings += chunk
        parts = listings.split(b"\n.\n")
        self.assertEqual([part.count(b"\n") + 1 for part in parts[:5]], [count] * 5)
        self.assertEqual(parts[5], b"")
