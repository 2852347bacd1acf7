"""
Tests for L{gearman_tw.admin}.
"""

from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.admin import (
    AdminError,
    FunctionStatus,
    GearmanAdminClient,
    PriorityStatus,
    QueuedJob,
    Worker,
)
from gearman_tw.errors import ConnectionLost


class AdminClientTests(SynchronousTestCase):
    """
    Tests for L{GearmanAdminClient} over a StringTransport.
    """

    def setUp(self) -> None:
        self.transport = StringTransport()
        self.admin = GearmanAdminClient()
        self.admin.makeConnection(self.transport)

    def reply(self, data: bytes) -> None:
        self.admin.dataReceived(data)

    def test_status(self) -> None:
        """
        C{status} rows become L{FunctionStatus}; a tab in a function name
        does not confuse the parser.
        """
        d = self.admin.status()
        self.assertEqual(self.transport.value(), b"status\r\n")
        self.reply(b"f\t3\t1\t2\na\tb\t0\t0\t0\n.\n")
        rows = self.successResultOf(d)
        self.assertEqual(rows, [FunctionStatus(b"f", 3, 1, 2), FunctionStatus(b"a\tb", 0, 0, 0)])
        self.assertEqual(rows[0].queued, 2)

    def test_priorityStatus(self) -> None:
        """
        C{prioritystatus} rows become L{PriorityStatus}.
        """
        d = self.admin.priorityStatus()
        self.reply(b"f\t1\t2\t3\t4\n.\n")
        self.assertEqual(self.successResultOf(d), [PriorityStatus(b"f", 1, 2, 3, 4)])

    def test_workers(self) -> None:
        """
        C{workers} rows become L{Worker}, client ids with spaces included.
        """
        d = self.admin.workers()
        self.reply(b"37 127.0.0.1 - :\r\n38 127.0.0.1 my id : f2 f1\n.\n")
        self.assertEqual(
            self.successResultOf(d),
            [Worker(37, "127.0.0.1", b"-", ()), Worker(38, "127.0.0.1", b"my id", (b"f2", b"f1"))],
        )

    def test_jobs(self) -> None:
        """
        C{show jobs} and C{show unique jobs}; an empty list is just C{.}.
        """
        jobs = self.admin.showJobs()
        uniques = self.admin.showUniqueJobs()
        empty = self.admin.showJobs()
        self.reply(b"H:1\t0\t0\t1\n.\nu1\n\n.\n.\n")
        self.assertEqual(self.successResultOf(jobs), [QueuedJob(b"H:1", 0, False, True)])
        self.assertEqual(self.successResultOf(uniques), [b"u1", b""])
        self.assertEqual(self.successResultOf(empty), [])

    def test_values(self) -> None:
        """
        C{version}, C{verbose} and C{getpid} answer with their values.
        """
        version = self.admin.version()
        verbose = self.admin.verbose()
        pid = self.admin.getpid()
        self.reply(b"OK 1.1.20\nOK ERROR\nOK 4242\n")
        self.assertEqual(self.successResultOf(version), "1.1.20")
        self.assertEqual(self.successResultOf(verbose), "ERROR")
        self.assertEqual(self.successResultOf(pid), 4242)

    def test_cancel(self) -> None:
        """
        C{cancel job} fires with whether the job existed.
        """
        known = self.admin.cancelJob(b"H:1")
        unknown = self.admin.cancelJob("H:2")
        self.assertEqual(self.transport.value(), b"cancel job H:1\r\ncancel job H:2\r\n")
        self.reply(b"OK\r\nERR UNKNOWN_JOB\r\n")
        self.assertTrue(self.successResultOf(known))
        self.assertFalse(self.successResultOf(unknown))

    def test_errors(self) -> None:
        """
        C{ERR} lines fail with L{AdminError}, C{+} read as spaces.
        """
        d = self.admin.dropFunction("f")
        self.reply(b"ERR there are still connected workers or executing clients\r\n")
        error = self.failureResultOf(d, AdminError).value
        self.assertEqual(error.code, "there")
        d = self.admin.createFunction("x")
        self.reply(b"ERR INVALID_ARGUMENTS An+incomplete+set\r\n")
        error = self.failureResultOf(d, AdminError).value
        self.assertEqual((error.code, error.text), ("INVALID_ARGUMENTS", "An incomplete set"))

    def test_maxQueue(self) -> None:
        """
        maxQueue sends only the limits given.
        """
        self.admin.maxQueue("f")
        self.admin.maxQueue("f", 5)
        self.admin.maxQueue("f", 1, 2, 3)
        self.assertEqual(
            self.transport.value(), b"maxqueue f\r\nmaxqueue f 5\r\nmaxqueue f 1 2 3\r\n"
        )

    def test_badArguments(self) -> None:
        """
        Arguments that are not single words fail without sending anything.
        """
        self.failureResultOf(self.admin.cancelJob(b"a b"), ValueError)
        self.failureResultOf(self.admin.createFunction(""), ValueError)
        self.failureResultOf(self.admin.command(b"status\nworkers", True, list), ValueError)
        self.assertEqual(self.transport.value(), b"")

    def test_connectionLost(self) -> None:
        """
        Outstanding commands fail with L{ConnectionLost}.
        """
        d = self.admin.status()
        self.reply(b"f\t1\t0\t0\n")
        self.admin.connectionLost(Failure(Exception("gone")))
        self.failureResultOf(d, ConnectionLost)
