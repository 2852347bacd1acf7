"""
Crash tests of C{twistd gearman --queue postgresql://...}: the shared
durability tests (kill -9 under load, the lifecycle and stored results
surviving), and the database restarting or freezing under a running server.
"""

import signal
import threading
import time
from typing import List

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import startOurs
from tests.integration.test_durability import JOB_CREATED, SUBMIT_JOB_BG, DurabilityMixin
from tests.pgserver import PostgresServer

ERROR = 19


class PostgreSQLDurabilityTests(DurabilityMixin, SynchronousTestCase):
    """
    The durability tests against a PostgreSQL server of each test's own.
    """

    def queueURL(self) -> str:
        self.pg = PostgresServer()
        self.addCleanup(self.pg.stop)
        return self.pg.url(table="crash")


class PostgreSQLRestartTests(SynchronousTestCase):
    """
    A running server whose database restarts or stops answering: the
    answer agrees with what is stored.
    """

    def setUp(self) -> None:
        self.pg = PostgresServer()
        self.addCleanup(self.pg.stop)

    def drain(self, server) -> List[bytes]:
        """
        The data of every job a worker is given, each completed.
        """
        return [data for _, _, data in DurabilityMixin.drain(self, server)]  # type: ignore[arg-type]

    def test_databaseCrashesWhileServing(self) -> None:
        """
        Submissions made while the database is down (killed, then started
        again within the queue's timeout) get JOB_CREATED once it is back,
        and their jobs run.
        """
        server = startOurs(self, "--queue", self.pg.url())
        client = server.connect()
        self.addCleanup(client.close)
        client.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"before")
        self.assertEqual(client.readPacket()[0], JOB_CREATED)
        self.pg.kill()
        for n in range(3):
            client.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"during%d" % n)
        # Held while the database is down.
        self.assertEqual(client.quiet(1.0), b"")
        restarter = threading.Thread(target=self.pg.start)
        restarter.start()
        self.addCleanup(restarter.join, 30)
        self.assertEqual([ptype for ptype, _ in client.readPackets(3)], [JOB_CREATED] * 3)
        self.assertEqual(sorted(self.drain(server)), [b"before", b"during0", b"during1", b"during2"])

    def test_frozenPastTimeout(self) -> None:
        """
        With the database frozen (SIGSTOP) past the queue's timeout, every
        client gets QUEUE_ERROR within it, and none of those jobs runs
        after a restart: a client that retries gets its job once.
        """
        server = startOurs(self, "--queue", self.pg.url(timeout="2"))
        clients = [server.connect() for _ in range(3)]
        for client in clients:
            self.addCleanup(client.close)
            # The server answers once it has replayed the queue.
            client.sync()
        self.pg.pause()
        self.addCleanup(self.pg.resume)
        began = time.monotonic()
        for n, client in enumerate(clients):
            client.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"frozen%d" % n)
        for client in clients:
            ptype, payload = client.readPacket(timeout=30)
            self.assertEqual((ptype, payload.split(b"\0")[0]), (ERROR, b"QUEUE_ERROR"))
        self.assertLess(time.monotonic() - began, 8)
        self.pg.resume()
        self.assertIn(server.stop(), (0, -signal.SIGTERM))
        restarted = startOurs(self, "--queue", self.pg.url(timeout="2"))
        self.assertEqual(self.drain(restarted), [])
