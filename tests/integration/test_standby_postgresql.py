"""
A standby that takes over, on PostgreSQL (C{twistd gearman --queue
postgresql://... --standby}): the tests of L{tests.integration.test_standby}
with two real servers sharing the tables of a real PostgreSQL server
instead of a Redis namespace.  Only the lease holder listens; kill -9 it
and the other takes over within the bound with every acknowledged job;
stop it cleanly and the other takes over at once; pause it (SIGSTOP) and,
once it resumes, it acknowledges and stores nothing and exits with status 1.
"""

from tests.integration import test_standby, test_standby_load
from tests.integration.servers import requireProgram
from tests.pgserver import PostgresServer


class PostgreSQLStandbyProcessTests(test_standby.StandbyProcessTests):
    """
    Two C{twistd gearman --standby} servers and a real PostgreSQL server.
    """

    def setUp(self) -> None:
        self.pg = PostgresServer()
        self.addCleanup(self.pg.stop)
        self.url = self.pg.url(table="ha")

    def test_leaseInDatabase(self) -> None:
        """
        The lease is the row of C{<table>_lease}, held by the server that
        listens, and expiring by the database's clock within the lease's
        time.
        """
        first = self.server()
        self.active(first)
        [(holder, left)] = self.pg.execute(
            "SELECT holder, extract(epoch FROM expires - clock_timestamp()) FROM ha_lease"
        )
        self.assertIn(b":%d:" % (first.pid,), bytes(holder))
        self.assertTrue(0 < left <= test_standby.LEASE, left)


class PostgreSQLStandbyLoadTests(test_standby_load.StandbyLoadTests):
    """
    kill -9 of the serving server under load, with libgearman workers, our
    worker and our client, the queue's lease and jobs in a real PostgreSQL
    server.
    """

    def setUp(self) -> None:
        requireProgram("gearman")
        self.pg = PostgresServer()
        self.addCleanup(self.pg.stop)
        self.url = self.pg.url(table="ha")
