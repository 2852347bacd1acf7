"""
A standby that takes over, on MySQL/MariaDB (C{twistd gearman --queue
mysql://... --standby}): the tests of L{tests.integration.test_standby}
with two real servers sharing the tables of a real MariaDB server instead
of a Redis namespace.  Only the lease holder listens; kill -9 it and the
other takes over within the bound with every acknowledged job; stop it
cleanly and the other takes over at once; pause it (SIGSTOP) and, once it
resumes, it acknowledges and stores nothing and exits with status 1.
"""

from tests.integration import test_standby, test_standby_load
from tests.integration.servers import requireProgram
from tests.mysqlserver import MariaDBServer


class MySQLStandbyProcessTests(test_standby.StandbyProcessTests):
    """
    Two C{twistd gearman --standby} servers and a real MariaDB server.
    """

    def setUp(self) -> None:
        self.mysql = MariaDBServer()
        self.addCleanup(self.mysql.stop)
        self.url = self.mysql.url(table="ha")

    def test_leaseInDatabase(self) -> None:
        """
        The lease is the row of C{<table>_lease}, held by the server that
        listens.
        """
        first = self.server()
        self.active(first)
        [(holder,)] = self.mysql.sql("SELECT holder FROM ha_lease")
        self.assertIn(b":%d:" % (first.pid,), bytes(holder))


class MySQLStandbyLoadTests(test_standby_load.StandbyLoadTests):
    """
    kill -9 of the serving server under load, with libgearman workers, our
    worker and our client, the queue's lease and jobs in a real MariaDB
    server.
    """

    def setUp(self) -> None:
        requireProgram("gearman")
        self.mysql = MariaDBServer()
        self.addCleanup(self.mysql.stop)
        self.url = self.mysql.url(table="ha")
