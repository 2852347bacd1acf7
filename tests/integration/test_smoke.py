"""
The smallest end-to-end check: C{twistd gearman} starts, answers the admin
protocol and runs a job between two raw connections, and so does gearmand.
"""

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import startGearmand, startOurs
from tests.mixins import SynchronousTestCaseMixin


class SmokeMixin(SynchronousTestCaseMixin):
    """
    One job through a server started by L{start}.
    """

    def start(self):
        raise NotImplementedError()

    def test_job(self) -> None:
        """
        A worker grabs a submitted job and its result reaches the client.
        """
        server = self.start()
        worker = server.connect()
        client = server.connect()
        self.addCleanup(worker.close)
        self.addCleanup(client.close)
        worker.sendPacket(1, b"reverse")
        worker.sync()
        client.sendPacket(7, b"reverse", b"", b"hello")
        self.assertEqual(client.readPacket(), (8, b"T:1"))
        worker.sendPacket(30)
        self.assertEqual(worker.readPacket(), (31, b"T:1\0reverse\0\0hello"))
        worker.sendPacket(13, b"T:1", b"olleh")
        self.assertEqual(client.readPacket(), (13, b"T:1\0olleh"))
        self.assertEqual(client.admin(b"status\n"), b"reverse\t0\t0\t1\n.\n")


class OursSmokeTests(SmokeMixin, SynchronousTestCase):
    def start(self):
        return startOurs(self)


class GearmandSmokeTests(SmokeMixin, SynchronousTestCase):
    def start(self):
        return startGearmand(self)
