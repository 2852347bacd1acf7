"""
Tests for L{gearman_tw.admin}.
"""

import base64
from typing import List, Optional, Sequence, Tuple, Type

from twisted.internet._resolver import HostResolution
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import IAddress, IHostnameResolver, IHostResolution, IResolutionReceiver
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from gearman_tw.admin import (
    AdminError,
    AdminProtocolError,
    AdminTimeout,
    FunctionStatus,
    GearmanAdminClient,
    JobResult,
    PriorityStatus,
    QueuedJob,
    Worker,
    connectAdmin,
)
from gearman_tw.errors import ConnectionLost, GearmanError, ServerUnavailable


@implementer(IHostnameResolver)
class PendingResolver:
    """
    A name resolver that answers only when told to, by L{resolve}.
    """

    def __init__(self) -> None:
        self.pending: List[Tuple[IResolutionReceiver, int]] = []

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Optional[Sequence[Type[IAddress]]] = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        resolution = HostResolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        self.pending.append((resolutionReceiver, portNumber))
        return resolution

    def resolve(self, *hosts: str) -> None:
        """
        End the oldest resolution with IPv4 addresses C{hosts} (none: the
        name is unknown).
        """
        receiver, port = self.pending.pop(0)
        for host in hosts:
            receiver.addressResolved(IPv4Address("TCP", host, port))
        receiver.resolutionComplete()


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
        self.assertEqual(self.transport.value(), b"maxqueue f\r\nmaxqueue f 5\r\nmaxqueue f 1 2 3\r\n")

    def test_connectionLost(self) -> None:
        """
        Outstanding commands fail with L{ConnectionLost}.
        """
        d = self.admin.status()
        self.reply(b"f\t1\t0\t0\n")
        self.admin.connectionLost(Failure(Exception("gone")))
        self.failureResultOf(d, ConnectionLost)

    def test_badArguments(self) -> None:
        """
        A command line that is not one line raises L{ValueError} at once
        and sends nothing.
        """
        self.assertRaises(ValueError, self.admin.command, b"status\nworkers", True, list)
        self.assertRaises(ValueError, self.admin.command, b"", False, list)
        self.assertRaises(TypeError, self.admin.command, "status", True, list)
        self.assertEqual(self.transport.value(), b"")

    def test_argumentTypes(self) -> None:
        """
        Arguments of the wrong type raise L{TypeError} at once, naming the
        method, the argument and the type, and send nothing.
        """
        calls = [
            (self.admin.cancelJob, (1,), "cancelJob() handle must be bytes or str, not int"),
            (self.admin.cancelJob, (None,), "cancelJob() handle must be bytes or str, not NoneType"),
            (self.admin.createFunction, ([b"f"],), "createFunction() name must be bytes or str, not list"),
            (self.admin.dropFunction, (1.5,), "dropFunction() name must be bytes or str, not float"),
            (self.admin.maxQueue, (None,), "maxQueue() name must be bytes or str, not NoneType"),
            (self.admin.maxQueue, ("f", "5"), "maxQueue() high must be an int or None, not str"),
            (self.admin.maxQueue, ("f", 1, 2.0), "maxQueue() normal must be an int or None, not float"),
            (self.admin.maxQueue, ("f", 1, 2, True), "maxQueue() low must be an int or None, not bool"),
            (self.admin.shutdown, ("yes",), "shutdown() graceful must be a bool, not str"),
        ]
        for method, args, message in calls:
            error = self.assertRaises(TypeError, method, *args)
            self.assertEqual(str(error), message)
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(len(self.admin._pending), 0)

    def test_argumentValues(self) -> None:
        """
        Arguments that are not single words, negative or out-of-order queue
        limits and over-long commands raise L{ValueError} at once and send
        nothing.
        """
        calls = [
            (self.admin.cancelJob, (b"a b",)),
            (self.admin.cancelJob, ("",)),
            (self.admin.createFunction, (b"",)),
            (self.admin.createFunction, ("f\nshutdown",)),
            (self.admin.dropFunction, (b"f\r",)),
            (self.admin.dropFunction, (b"f\0g",)),
            (self.admin.createFunction, ("\udc80",)),
            (self.admin.createFunction, ("f" * 8200,)),
            (self.admin.maxQueue, ("f", -1)),
            (self.admin.maxQueue, ("f", 1, -2)),
            (self.admin.maxQueue, ("f", 2**31)),
            (self.admin.maxQueue, ("f", None, 5)),
            (self.admin.maxQueue, ("f", 1, None, 3)),
            (self.admin.maxQueue, ("f g", 1)),
        ]
        for method, args in calls:
            self.assertRaises(ValueError, method, *args)
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(len(self.admin._pending), 0)
        # The longest command a job server reads: 8192 bytes with its CRLF.
        self.admin.createFunction(b"f" * (8190 - len(b"create function ")))
        self.assertEqual(len(self.transport.value()), 8192)

    def test_errPrefix(self) -> None:
        """
        A list row that merely starts with C{ERR} is a row, not an error.
        """
        d = self.admin.status()
        self.reply(b"ERRands\t1\t0\t0\n.\n")
        self.assertEqual(self.successResultOf(d), [FunctionStatus(b"ERRands", 1, 0, 0)])


class ResultCommandTests(SynchronousTestCase):
    """
    L{GearmanAdminClient.result} and L{GearmanAdminClient.resultUnique}.
    """

    def setUp(self) -> None:
        self.transport = StringTransport()
        self.admin = GearmanAdminClient()
        self.admin.makeConnection(self.transport)

    def test_ended(self) -> None:
        """
        A stored result: its data from base64 over several lines, times as
        floats, C{-} as no unique.
        """
        d = self.admin.result(b"H:1")
        self.assertEqual(self.transport.value(), b"result H:1\r\n")
        self.admin.dataReceived(
            b"function f g\nhandle H:1\nunique -\noutcome exception\nfinished 5.250\nexpires 65.250\n"
            b"data " + base64.b64encode(b"\0bo")[:4] + b"\ndata " + base64.b64encode(b"\0bo")[4:] + b"\n.\n"
        )
        result = self.successResultOf(d)
        self.assertEqual(result, JobResult(b"f g", b"H:1", b"", "exception", b"\0bo", 5.25, 65.25))
        assert result is not None
        self.assertTrue(result.done)

    def test_live(self) -> None:
        d = self.admin.resultUnique("u")
        self.assertEqual(self.transport.value(), b"result unique u\r\n")
        self.admin.dataReceived(b"function f\nhandle H:1\nunique u\noutcome running\n.\n")
        result = self.successResultOf(d)
        self.assertEqual(result, JobResult(b"f", b"H:1", b"u", "running"))
        assert result is not None
        self.assertFalse(result.done)

    def test_unknown(self) -> None:
        """
        ERR UNKNOWN_JOB is None; other errors fail.
        """
        unknown = self.admin.result(b"H:1")
        denied = self.admin.result(b"H:2")
        self.admin.dataReceived(b"ERR UNKNOWN_JOB\r\nERR PERMISSION_DENIED not+yours\r\n")
        self.assertIsNone(self.successResultOf(unknown))
        self.assertEqual(self.failureResultOf(denied, AdminError).value.code, "PERMISSION_DENIED")

    def test_badReply(self) -> None:
        """
        A reply that is not a result (no outcome, data not base64) fails
        with AdminProtocolError.
        """
        for reply in (b"function f\nhandle H:1\n.\n", b"function f\nhandle H\nunique -\noutcome fail\ndata !!\n.\n"):
            transport = StringTransport()
            admin = GearmanAdminClient()
            admin.makeConnection(transport)
            d = admin.result(b"H:1")
            admin.dataReceived(reply)
            self.failureResultOf(d, AdminProtocolError)

    def test_badArguments(self) -> None:
        self.assertRaises(TypeError, self.admin.result, 7)
        self.assertRaises(ValueError, self.admin.result, b"a b")
        self.assertRaises(ValueError, self.admin.resultUnique, "")


class AdminErrorTests(SynchronousTestCase):
    """
    Tests for L{AdminError}.
    """

    def test_str(self) -> None:
        """
        C{str()} names the code and the text like the reply line.
        """
        self.assertEqual(str(AdminError("UNKNOWN_JOB")), "ERR UNKNOWN_JOB")
        self.assertEqual(
            str(AdminError("INVALID_ARGUMENTS", "An incomplete set")),
            "ERR INVALID_ARGUMENTS: An incomplete set",
        )
        self.assertEqual(str(AdminError("function", "not found")), "ERR function not found")

    def test_fromReply(self) -> None:
        """
        The error a reply fails with reads like that reply.
        """
        transport = StringTransport()
        admin = GearmanAdminClient()
        admin.makeConnection(transport)
        d = admin.createFunction("x")
        admin.dataReceived(b"ERR INVALID_ARGUMENTS An+incomplete+set\r\n")
        self.assertEqual(str(self.failureResultOf(d, AdminError).value), "ERR INVALID_ARGUMENTS: An incomplete set")


class CountingTransport(StringTransport):
    """
    A L{StringTransport} that counts how often it was closed.
    """

    closes = 0

    def loseConnection(self) -> None:
        self.closes += 1
        super().loseConnection()

    def abortConnection(self) -> None:
        self.closes += 1
        self.disconnected = True
        StringTransport.loseConnection(self)


class ClosedConnectionTests(SynchronousTestCase):
    """
    L{GearmanAdminClient} once its connection is closed or lost.
    """

    def setUp(self) -> None:
        self.transport = CountingTransport()
        self.admin = GearmanAdminClient()
        self.admin.makeConnection(self.transport)

    def test_afterClose(self) -> None:
        """
        A command after L{GearmanAdminClient.close} fails with
        L{ConnectionLost} and writes nothing.
        """
        self.admin.close()
        self.failureResultOf(self.admin.status(), ConnectionLost)
        self.failureResultOf(self.admin.cancelJob(b"H:1"), ConnectionLost)
        self.assertEqual(self.transport.value(), b"")

    def test_closeTwice(self) -> None:
        """
        Closing twice closes the transport once; closing a client that was
        never connected does nothing.
        """
        self.admin.close()
        self.admin.close()
        self.assertEqual(self.transport.closes, 1)
        unconnected = GearmanAdminClient()
        unconnected.close()
        unconnected.close()

    def test_closeFailsPending(self) -> None:
        """
        Commands still unanswered when the client closes fail with
        L{ConnectionLost} at once; a reply arriving afterwards is ignored.
        """
        first = self.admin.status()
        second = self.admin.version()
        self.admin.close()
        self.failureResultOf(first, ConnectionLost)
        self.failureResultOf(second, ConnectionLost)
        self.admin.dataReceived(b".\nOK 1\n")

    def test_afterConnectionLost(self) -> None:
        """
        A command after the connection was lost fails with
        L{ConnectionLost}, its text saying why, and writes nothing.
        """
        self.admin.connectionLost(Failure(ConnectionDone("bye")))
        error = self.failureResultOf(self.admin.version(), ConnectionLost).value
        self.assertIn("admin connection to the job server lost", str(error))
        self.assertEqual(self.transport.value(), b"")
        self.admin.close()

    def test_lostToTLSFailure(self) -> None:
        """
        A connection lost to a TLS failure says which, readably, not as
        pyOpenSSL's list of tuples.
        """
        from OpenSSL.SSL import Error

        self.admin.connectionLost(Failure(Error([("SSL routines", "", "tlsv13 alert certificate required")])))
        error = self.failureResultOf(self.admin.version(), ConnectionLost).value
        self.assertIn("lost: TLS failure: tlsv13 alert certificate required", str(error))
        self.admin.close()

    def test_pipelinedConnectionLost(self) -> None:
        """
        Every command pipelined before the connection is lost fails with
        L{ConnectionLost}, the cancelled one without a second result, and
        their timers are stopped.
        """
        clock = Clock()
        admin = GearmanAdminClient(timeout=10, clock=clock)
        admin.makeConnection(StringTransport())
        status = admin.status()
        version = admin.version()
        cancelled = admin.getpid()
        cancelled.cancel()
        admin.dataReceived(b"f\t1\t0\t0\n")
        admin.connectionLost(Failure(ConnectionDone("bye")))
        self.failureResultOf(status, ConnectionLost)
        self.failureResultOf(version, ConnectionLost)
        self.failureResultOf(cancelled, CancelledError)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_unconnected(self) -> None:
        """
        A command before the client is connected fails with
        L{ConnectionLost}.
        """
        self.failureResultOf(GearmanAdminClient().status(), ConnectionLost)

    def test_cancel(self) -> None:
        """
        A cancelled command fails with L{CancelledError} and its timer
        stops; its reply is still read in its turn and dropped.
        """
        clock = Clock()
        admin = GearmanAdminClient(timeout=5, clock=clock)
        admin.makeConnection(self.transport)
        first = admin.status()
        second = admin.version()
        first.cancel()
        self.failureResultOf(first, CancelledError)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        admin.dataReceived(b"f\t1\t0\t0\n.\nOK 1.0\n")
        self.assertEqual(self.successResultOf(second), "1.0")
        self.assertEqual(self.transport.closes, 0)
        self.assertEqual(clock.getDelayedCalls(), [])


class TimeoutTests(SynchronousTestCase):
    """
    L{GearmanAdminClient.timeout}, timed with an injected clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = CountingTransport()
        self.admin = GearmanAdminClient(timeout=5, clock=self.clock)
        self.admin.makeConnection(self.transport)

    def test_timeout(self) -> None:
        """
        A command unanswered in time fails with L{AdminTimeout}; the
        connection is aborted, pipelined commands fail with
        L{ConnectionLost}, and so do later ones.
        """
        status = self.admin.status()
        self.clock.advance(1)
        version = self.admin.version()
        self.clock.advance(4)
        error = self.failureResultOf(status, AdminTimeout).value
        self.assertIsInstance(error, GearmanError)
        self.assertEqual((error.command, error.seconds), ("status", 5))
        self.assertEqual(str(error), "admin command 'status' got no reply within 5 s")
        self.assertIn("'status' got no reply", str(self.failureResultOf(version, ConnectionLost).value))
        self.assertTrue(self.transport.disconnected)
        self.admin.dataReceived(b".\nOK 1\n")
        self.failureResultOf(self.admin.getpid(), ConnectionLost)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_answeredInTime(self) -> None:
        """
        A reply in time stops the command's timer.
        """
        d = self.admin.version()
        self.clock.advance(4.9)
        self.admin.dataReceived(b"OK 1.1.20\n")
        self.assertEqual(self.successResultOf(d), "1.1.20")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.transport.closes, 0)

    def test_eachCommandTimed(self) -> None:
        """
        Each command has its own limit, counted from when it was sent.
        """
        first = self.admin.status()
        self.clock.advance(3)
        second = self.admin.version()
        self.admin.dataReceived(b".\n")
        self.successResultOf(first)
        self.clock.advance(4)
        self.assertNoResult(second)
        self.clock.advance(1)
        self.failureResultOf(second, AdminTimeout)

    def test_noTimeout(self) -> None:
        """
        Without a timeout nothing is scheduled and commands wait.
        """
        clock = Clock()
        admin = GearmanAdminClient(clock=clock)
        admin.makeConnection(StringTransport())
        d = admin.status()
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(3600)
        self.assertNoResult(d)

    def test_badTimeout(self) -> None:
        """
        A timeout that is not a positive number of seconds raises at once.
        """
        self.assertRaises(TypeError, GearmanAdminClient, timeout="5", clock=self.clock)
        self.assertRaises(TypeError, GearmanAdminClient, timeout=True, clock=self.clock)
        for bad in (0, -1, float("nan"), float("inf")):
            self.assertRaises(ValueError, GearmanAdminClient, timeout=bad, clock=self.clock)


class BadReplyTests(SynchronousTestCase):
    """
    Replies that make no sense fail the command with
    L{AdminProtocolError}, fail the rest with L{ConnectionLost}, and close
    the connection.
    """

    def setUp(self) -> None:
        self.transport = CountingTransport()
        self.admin = GearmanAdminClient()
        self.admin.makeConnection(self.transport)

    def assertClosed(self, *pending: Deferred) -> None:
        for d in pending:
            self.failureResultOf(d, ConnectionLost)
        self.assertEqual(self.transport.closes, 1)
        self.failureResultOf(self.admin.status(), ConnectionLost)

    def test_garbageValue(self) -> None:
        """
        A one-line reply that is neither C{OK} nor C{ERR} is a protocol
        error.
        """
        version = self.admin.version()
        status = self.admin.status()
        self.admin.dataReceived(b"SSH-2.0-OpenSSH_9.6\r\n")
        error = self.failureResultOf(version, AdminProtocolError).value
        self.assertIsInstance(error, GearmanError)
        self.assertIn("bad reply to admin command 'version'", str(error))
        self.assertClosed(status)

    def test_garbageRow(self) -> None:
        """
        A list row that does not parse fails the command at once, without
        waiting for the C{.} that may never come.
        """
        status = self.admin.status()
        version = self.admin.version()
        self.admin.dataReceived(b"HTTP/1.1 400 Bad Request\r\n")
        self.failureResultOf(status, AdminProtocolError)
        self.assertClosed(version)

    def test_badNumbers(self) -> None:
        """
        Counts, process ids and flags must be numbers.
        """
        for command, reply in [
            ("status", b"f\tx\t0\t0\n"),
            ("showJobs", b"H:1\t0\tyes\t1\n"),
            ("workers", b"fd 127.0.0.1 - :\n"),
            ("getpid", b"OK pid\n"),
        ]:
            self.setUp()
            d = getattr(self.admin, command)()
            self.admin.dataReceived(reply)
            self.failureResultOf(d, AdminProtocolError)
            self.assertClosed()

    def test_unsolicited(self) -> None:
        """
        A line no command asked for closes the connection.
        """
        self.admin.dataReceived(b"OK\r\n")
        self.assertClosed()

    def test_lineTooLong(self) -> None:
        """
        A reply line longer than C{MAX_LENGTH} fails the command and closes
        the connection instead of buffering without end.
        """
        self.admin.MAX_LENGTH = 100
        status = self.admin.status()
        version = self.admin.version()
        self.admin.dataReceived(b"f" * 60)
        self.assertNoResult(status)
        self.admin.dataReceived(b"f" * 60)
        error = self.failureResultOf(status, AdminProtocolError).value
        self.assertIn("longer than 100 bytes", str(error))
        self.assertClosed(version)

    def test_parseRaises(self) -> None:
        """
        A parser passed to L{GearmanAdminClient.command} that raises
        L{ValueError} turns the reply into a protocol error.
        """
        d = self.admin.command(b"version", False, lambda lines: int(lines[0]))
        self.admin.dataReceived(b"OK 1.1\n")
        self.failureResultOf(d, AdminProtocolError)
        self.assertClosed()


class ConnectAdminTests(SynchronousTestCase):
    """
    Tests for L{connectAdmin} with a L{MemoryReactorClock}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def connect(self, index: int = 0) -> StringTransport:
        """
        Complete connection attempt C{index}.
        """
        transport = StringTransport()
        protocol = self.reactor.tcpClients[index][2].buildProtocol(None)
        assert protocol is not None
        protocol.makeConnection(transport)
        return transport

    def test_serverFirst(self) -> None:
        """
        C{connectAdmin(server, reactor=...)} connects through the given
        reactor and fires with a L{GearmanAdminClient} timed by it.
        """
        d = connectAdmin("tcp:host=127.0.0.1:port=4731", reactor=self.reactor, timeout=7)
        self.assertEqual(self.reactor.tcpClients[0][:2], ("127.0.0.1", 4731))
        self.connect()
        admin = self.successResultOf(d)
        self.assertIsInstance(admin, GearmanAdminClient)
        self.assertEqual((admin.timeout, admin.clock), (7, self.reactor))
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.flushWarnings(), [])

    def test_hostPort(self) -> None:
        """
        A C{host:port} string is accepted, and the port defaults to 4730.
        """
        connectAdmin("127.0.0.1:4731", reactor=self.reactor)
        connectAdmin("127.0.0.1", reactor=self.reactor)
        self.assertEqual([c[:2] for c in self.reactor.tcpClients], [("127.0.0.1", 4731), ("127.0.0.1", 4730)])

    def test_endpoint(self) -> None:
        """
        An endpoint object may stand for the server.
        """
        endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", 4732)
        d = connectAdmin(endpoint, reactor=self.reactor)
        self.assertEqual(self.reactor.tcpClients[0][:2], ("127.0.0.1", 4732))
        self.connect()
        self.assertIsInstance(self.successResultOf(d), GearmanAdminClient)

    def test_reactorFirstDeprecated(self) -> None:
        """
        The old C{connectAdmin(reactor, server)} still connects, with a
        L{DeprecationWarning}; so does C{connectAdmin(reactor)}.
        """
        # The deprecated forms are outside the signature's types.
        d = connectAdmin(self.reactor, "tcp:host=127.0.0.1:port=4731")  # type: ignore[arg-type]
        connectAdmin(self.reactor)  # type: ignore[arg-type]
        warnings = self.flushWarnings([self.test_reactorFirstDeprecated])
        self.assertEqual([w["category"] for w in warnings], [DeprecationWarning] * 2)
        self.assertIn("connectAdmin(server, reactor=reactor)", warnings[0]["message"])
        self.assertEqual([c[:2] for c in self.reactor.tcpClients], [("127.0.0.1", 4731), ("127.0.0.1", 4730)])
        self.connect()
        self.assertIsInstance(self.successResultOf(d), GearmanAdminClient)

    def test_badArguments(self) -> None:
        """
        A server, reactor or timeout of the wrong type raises L{TypeError}
        at once, a bad address or timeout L{ValueError}, and nothing
        connects.
        """
        for server in (4730, None, b"127.0.0.1:4730", ["127.0.0.1:4730"]):
            self.assertRaises(TypeError, connectAdmin, server, reactor=self.reactor)
        self.assertRaises(TypeError, connectAdmin, "127.0.0.1:4730", "127.0.0.1:4731")
        self.assertRaises(TypeError, connectAdmin, "127.0.0.1:4730", reactor=self.reactor, timeout="5")
        for address in ("", "127.0.0.1:port", "127.0.0.1:0", "127.0.0.1:99999"):
            self.assertRaises(ValueError, connectAdmin, address, reactor=self.reactor)
        self.assertRaises(ValueError, connectAdmin, "127.0.0.1:4730", reactor=self.reactor, timeout=0)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_refused(self) -> None:
        """
        A refused connection fails with L{ServerUnavailable} naming the
        server and the reason.
        """
        d = connectAdmin("tcp:host=127.0.0.1:port=4731", reactor=self.reactor)
        self.reactor.tcpClients[0][2].clientConnectionFailed(
            self.reactor.connectors[0], Failure(ConnectionRefusedError())
        )
        error = self.failureResultOf(d, ServerUnavailable).value
        self.assertIn("4731", str(error))
        self.assertIn("refused", str(error))

    def test_connectTimeout(self) -> None:
        """
        With a timeout, a connection attempt that hangs is given up after
        it, with L{ServerUnavailable}.
        """
        d = connectAdmin("127.0.0.1:4731", reactor=self.reactor, timeout=3)
        self.reactor.advance(2.9)
        self.assertNoResult(d)
        self.reactor.advance(0.1)
        error = self.failureResultOf(d, ServerUnavailable).value
        self.assertIn("no connection within 3 s", str(error))
        self.assertTrue(self.reactor.connectors[0].stoppedConnecting)

    def test_cancel(self) -> None:
        """
        Cancelling the connection attempt stops it and fails it with
        L{CancelledError}, not as an unavailable server, for a server named
        by an endpoint description or by C{host:port}.
        """
        for server in ("tcp:host=127.0.0.1:port=4731", "127.0.0.1:4731"):
            d = connectAdmin(server, reactor=self.reactor, timeout=3)
            d.cancel()
            self.failureResultOf(d, CancelledError)
            self.assertTrue(self.reactor.connectors[-1].stoppedConnecting)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_cancelResolving(self) -> None:
        """
        Cancelling while the server's name is being resolved fails with
        L{CancelledError} too, and nothing connects when the name resolves
        after all; a name that resolves to nothing, or not in time, still
        makes L{ServerUnavailable}.
        """
        resolver = PendingResolver()
        self.reactor.installNameResolver(resolver)
        d = connectAdmin("gearman.example:4731", reactor=self.reactor, timeout=3)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        resolver.resolve("127.0.0.1")
        self.assertEqual((self.reactor.tcpClients, self.reactor.getDelayedCalls()), ([], []))

        unknown = connectAdmin("gearman.example:4731", reactor=self.reactor, timeout=3)
        resolver.resolve()
        self.assertIn("not found", str(self.failureResultOf(unknown, ServerUnavailable).value))
        slow = connectAdmin("gearman.example:4731", reactor=self.reactor, timeout=3)
        self.reactor.advance(3)
        self.assertIn("no connection within 3 s", str(self.failureResultOf(slow, ServerUnavailable).value))
        self.assertEqual(self.reactor.getDelayedCalls(), [])
