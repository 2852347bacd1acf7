"""
Crash and fault tests of C{twistd gearman --queue mysql://...} against a
real MariaDB server: the shared kill -9 tests, and the database itself
restarting or freezing under a running job server.
"""

import os
import re
import signal
import textwrap
import threading
import time
from typing import List
from urllib.parse import urlsplit

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import REPO, startOurs
from tests.integration.test_durability import (
    ERROR,
    JOB_CREATED,
    SUBMIT_JOB_BG,
    DurabilityMixin,
)
from tests.mysqlserver import MariaDBServer


class MySQLDurabilityTests(DurabilityMixin, SynchronousTestCase):
    """
    kill -9 of the job server: lifecycle and results survive in MariaDB.
    """

    def queueURL(self) -> str:
        self.mysql = MariaDBServer()
        self.addCleanup(self.mysql.stop)
        return self.mysql.url(table="crash")


class MySQLStorageFaultTests(SynchronousTestCase):
    """
    The database restarting or freezing under a running job server: the
    answer a client gets agrees with what is stored.
    """

    def setUp(self) -> None:
        self.mysql = MariaDBServer()
        self.addCleanup(self.mysql.stop)

    def drain(self, server) -> List[bytes]:
        """
        The data of every job a worker is given, each completed.
        """
        return [data for _, _, data in DurabilityMixin.drain(self, server)]  # type: ignore[arg-type]

    def test_databaseRestarts(self) -> None:
        """
        A submission made while the database is down gets JOB_CREATED once
        it is back (within the timeout), and the job is stored.
        """
        server = startOurs(self, "--queue", self.mysql.url())
        client = server.connect()
        self.addCleanup(client.close)
        client.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"before")
        self.assertEqual(client.readPacket()[0], JOB_CREATED)
        self.mysql.kill()
        client.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"during")
        restart = threading.Timer(1.0, self.mysql.start)
        restart.start()
        self.addCleanup(restart.join, 30)
        started = time.monotonic()
        ptype, _ = client.readPacket(timeout=15)
        self.assertEqual(ptype, JOB_CREATED)
        self.assertGreater(time.monotonic() - started, 0.9)
        restart.join(30)
        server.stop(signal.SIGKILL)
        restarted = startOurs(self, "--queue", self.mysql.url())
        self.assertEqual(sorted(self.drain(restarted)), [b"before", b"during"])

    def test_frozenPastTimeout(self) -> None:
        """
        With the database frozen (SIGSTOP) past the queue's timeout, every
        client gets QUEUE_ERROR within it, and none of those jobs runs
        after a restart; the server stores jobs again once it goes on.
        """
        server = startOurs(self, "--queue", self.mysql.url(timeout="2"))
        clients = [server.connect() for _ in range(3)]
        for client in clients:
            self.addCleanup(client.close)
            # The server answers once it has replayed the queue.
            client.sync()
        self.mysql.pause()
        self.addCleanup(self.mysql.resume)
        started = time.monotonic()
        for n, client in enumerate(clients):
            client.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"frozen%d" % n)
        for client in clients:
            ptype, payload = client.readPacket(timeout=30)
            self.assertEqual((ptype, payload.split(b"\0")[0]), (ERROR, b"QUEUE_ERROR"))
        self.assertLess(time.monotonic() - started, 3.5)
        time.sleep(1)
        self.mysql.resume()
        deadline = time.monotonic() + 20
        while True:
            clients[0].sendPacket(SUBMIT_JOB_BG, b"f", b"", b"after")
            ptype, _ = clients[0].readPacket(timeout=30)
            if ptype == JOB_CREATED or time.monotonic() > deadline:
                break
        self.assertEqual(ptype, JOB_CREATED)
        self.assertIn(server.stop(), (0, -signal.SIGTERM))
        restarted = startOurs(self, "--queue", self.mysql.url(timeout="2"))
        self.assertEqual(self.drain(restarted), [b"after"])


class DocumentedSetupTests(SynchronousTestCase):
    """
    The setup docs/queue-mysql.rst shows works as shown.
    """

    def test_setup(self) -> None:
        """
        The first SQL block of the page, run by an administrator, gives an
        account that C{twistd gearman} runs with, through the URL of the
        page's console block (on the test server's port): a job is stored
        and replayed after a crash, and the account's privileges suffice
        to take over gearmand's table.
        """
        with open(os.path.join(REPO, "docs", "queue-mysql.rst"), encoding="utf-8") as f:
            page = f.read()
        setup = re.search(r"\.\. code-block:: sql\n\n(.*?)\n\n", page, re.S)
        command = re.search(r"\$ twistd -n gearman --queue '(mysql://[^']+)'", page)
        assert setup is not None and command is not None
        mysql = MariaDBServer()
        self.addCleanup(mysql.stop)
        for statement in textwrap.dedent(setup.group(1)).split(";"):
            if statement.strip():
                mysql.sql(statement, database=None)
        database = urlsplit(command.group(1)).path.strip("/")
        mysql.sql(
            "CREATE TABLE gearman_queue(unique_key VARCHAR(64),function_name VARCHAR(255),priority INT,"
            "data LONGBLOB,when_to_run INT,unique key (unique_key, function_name)) ENGINE=MyISAM",
            database=database,
        )
        mysql.sql("INSERT INTO gearman_queue VALUES ('u', 'f', 1, 'from gearmand', 0)", database=database)
        url = command.group(1).replace(":3306/", ":%d/" % (mysql.port,))
        server = startOurs(self, "--queue", url)
        client = server.connect()
        self.addCleanup(client.close)
        client.sendPacket(SUBMIT_JOB_BG, b"f", b"", b"from us")
        self.assertEqual(client.readPacket()[0], JOB_CREATED)
        server.stop(signal.SIGKILL)
        restarted = startOurs(self, "--queue", url)
        self.assertEqual(
            [data for _, _, data in DurabilityMixin.drain(self, restarted)],  # type: ignore[arg-type]
            [b"from gearmand", b"from us"],
        )
