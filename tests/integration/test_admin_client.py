"""
L{GearmanAdminClient} against real job servers: ours and C gearmand.
"""

import os
import signal

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from gearman_tw.admin import AdminError, AdminTimeout, FunctionStatus, PriorityStatus, connectAdmin
from gearman_tw.client import LOW, GearmanClient
from gearman_tw.errors import ConnectionLost, ServerUnavailable
from tests.integration.servers import startGearmand, startOurs
from tests.mixins import TestCaseMixin


class AdminClientMixin(TestCaseMixin):
    """
    Every admin command through L{GearmanAdminClient}.
    """

    timeout = 60

    def start(self):
        raise NotImplementedError()

    @inlineCallbacks
    def setUp(self):
        self.server = self.start()
        self.address = "127.0.0.1:%d" % (self.server.port,)
        self.admin = yield connectAdmin(self.address, reactor=reactor, timeout=30)
        self.addCleanup(self.admin.close)

    @inlineCallbacks
    def test_commands(self):
        """
        Functions, jobs and process information read back as data objects.
        """
        yield self.admin.createFunction("made")
        client = GearmanClient(["127.0.0.1:%d" % (self.server.port,)])
        client.startService()
        self.addCleanup(client.stopService)
        handle = yield client.submitJob("queued", b"x", priority=LOW, background=True)
        status = yield self.admin.status()
        self.assertEqual(
            sorted(status, key=lambda row: row.function),
            [FunctionStatus(b"made", 0, 0, 0), FunctionStatus(b"queued", 1, 0, 0)],
        )
        priority = yield self.admin.priorityStatus()
        self.assertIn(PriorityStatus(b"queued", 0, 0, 1, 0), priority)
        jobs = yield self.admin.showJobs()
        self.assertEqual([(j.handle, j.persisted) for j in jobs], [(handle, True)])
        workers = yield self.admin.workers()
        self.assertEqual(len(workers), 2)
        self.assertTrue(all(w.ip == "127.0.0.1" and w.functions == () for w in workers))
        self.assertEqual((yield self.admin.getpid()), self.server.pid)
        self.assertTrue((yield self.admin.version()).startswith("1.1.20"))
        self.assertEqual((yield self.admin.verbose()), "ERROR")
        self.assertTrue((yield self.admin.cancelJob(handle)))
        self.assertFalse((yield self.admin.cancelJob(b"T:999")))
        yield self.admin.dropFunction("made")
        error = yield self.assertFailure(self.admin.dropFunction("nothing"), AdminError)
        self.assertEqual(error.code, "function")
        yield self.admin.maxQueue("queued", 1)

    @inlineCallbacks
    def test_serverStopped(self):
        """
        Once the server is gone, a command fails with L{ConnectionLost}
        instead of hanging, and so does the next; connecting again fails
        with L{ServerUnavailable} naming the server and the refusal.
        """
        self.assertTrue((yield self.admin.version()))
        self.server.stop()
        yield self.assertFailure(self.admin.status(), ConnectionLost)
        yield self.assertFailure(self.admin.version(), ConnectionLost)
        error = yield self.assertFailure(
            connectAdmin(self.address, reactor=reactor, timeout=10), ServerUnavailable
        )
        self.assertIn(self.address, str(error))
        self.assertIn("refused", str(error))

    @inlineCallbacks
    def test_serverStalls(self):
        """
        A server that stops answering fails the waiting command with
        L{AdminTimeout} after the connection's timeout, and the commands
        pipelined behind it with L{ConnectionLost}.
        """
        admin = yield connectAdmin(self.address, reactor=reactor, timeout=0.5)
        self.addCleanup(admin.close)
        os.kill(self.server.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, self.server.pid, signal.SIGCONT)
        version = admin.version()
        status = admin.status()
        error = yield self.assertFailure(version, AdminTimeout)
        self.assertEqual((error.command, error.seconds), ("version", 0.5))
        yield self.assertFailure(status, ConnectionLost)
        yield self.assertFailure(admin.getpid(), ConnectionLost)


class OursAdminClientTests(AdminClientMixin, TestCase):
    def start(self):
        return startOurs(self)


class GearmandAdminClientTests(AdminClientMixin, TestCase):
    def start(self):
        return startGearmand(self)
