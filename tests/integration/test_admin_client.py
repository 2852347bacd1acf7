"""
L{GearmanAdminClient} against real job servers: ours and C gearmand.
"""

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from gearman_tw.admin import AdminError, FunctionStatus, PriorityStatus, connectAdmin
from gearman_tw.client import LOW, GearmanClient
from tests.integration.servers import startGearmand, startOurs


class AdminClientMixin:
    """
    Every admin command through L{GearmanAdminClient}.
    """

    timeout = 60

    def start(self):
        raise NotImplementedError()

    @inlineCallbacks
    def setUp(self):
        self.server = self.start()
        self.admin = yield connectAdmin(reactor, "127.0.0.1:%d" % (self.server.port,))
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


class OursAdminClientTests(AdminClientMixin, TestCase):
    def start(self):
        return startOurs(self)


class GearmandAdminClientTests(AdminClientMixin, TestCase):
    def start(self):
        return startGearmand(self)
