"""
Tests for L{gearman_tw.client}.
"""

from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Tuple, Type

from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from gearman_tw.admin import JobResult
from gearman_tw.client import (
    HIGH,
    LOW,
    NORMAL,
    GearmanClient,
    GearmanClientProtocol,
    JobStatus,
    Priority,
    Task,
    deriveUnique,
)
from gearman_tw.endpoints import clientEndpoint
from gearman_tw.errors import (
    ConnectionLost,
    JobException,
    JobFailed,
    JobTimeout,
    ServerError,
    ServerUnavailable,
)
from gearman_tw.interfaces import IGearmanClient
from gearman_tw.protocol import REQ, PacketType, encode, parseAll
from gearman_tw.server import model
from gearman_tw.server.jobs import JobServer
from gearman_tw.testing import MemoryServerEndpoint, flushAll
from gearman_tw.worker import GearmanWorker
from tests.test_admin import PendingResolver


def response(ptype: int, *args: bytes) -> bytes:
    return encode(ptype, *args)


def sent(transport: StringTransport) -> List[Tuple[int, List[bytes]]]:
    """
    The packets a client wrote, decoded; the transport is cleared.
    """
    packets = parseAll(transport.value(), magic=REQ)
    transport.clear()
    return [(ptype, args) for ptype, args, _ in packets]


class ProtocolTests(SynchronousTestCase):
    """
    Tests for L{GearmanClientProtocol} over a StringTransport.
    """

    def setUp(self) -> None:
        self.protocol = GearmanClientProtocol(exceptions=True)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(
            response(PacketType.OPTION_RES, b"exceptions") + response(PacketType.ECHO_RES, b"")
        )

    def test_exceptionsOption(self) -> None:
        """
        On connecting, the client turns the exceptions option on, then
        sends the handshake's ECHO; its answer makes the connection ready.
        """
        protocol = GearmanClientProtocol(exceptions=True)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(
            sent(transport), [(PacketType.OPTION_REQ, [b"exceptions"]), (PacketType.ECHO_REQ, [b""])]
        )
        ready: List[object] = []
        protocol.onReady = ready.append
        protocol.dataReceived(response(PacketType.OPTION_RES, b"exceptions"))
        self.assertFalse(protocol.ready)
        protocol.dataReceived(response(PacketType.ECHO_RES, b""))
        self.assertTrue(protocol.ready)
        self.assertEqual(ready, [protocol])

    def test_noExceptionsOption(self) -> None:
        """
        With exceptions off, only the handshake's ECHO is sent on
        connecting.
        """
        protocol = GearmanClientProtocol(exceptions=False)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(sent(transport), [(PacketType.ECHO_REQ, [b""])])

    def submit(self, **kwargs) -> Task:
        sent(self.transport)
        task = Task(b"f", b"data", **kwargs)
        self.protocol.submit(task)
        return task

    def test_submitTypes(self) -> None:
        """
        Each priority and background combination, and epoch jobs, use their
        own packet type.
        """
        cases: List[Tuple[Dict[str, Any], PacketType]] = [
            ({}, PacketType.SUBMIT_JOB),
            ({"priority": HIGH}, PacketType.SUBMIT_JOB_HIGH),
            ({"priority": LOW}, PacketType.SUBMIT_JOB_LOW),
            ({"background": True}, PacketType.SUBMIT_JOB_BG),
            ({"background": True, "priority": HIGH}, PacketType.SUBMIT_JOB_HIGH_BG),
            ({"background": True, "priority": LOW}, PacketType.SUBMIT_JOB_LOW_BG),
        ]
        for index, (kwargs, ptype) in enumerate(cases):
            unique = b"u%d" % (index,)
            self.submit(unique=unique, **kwargs)
            self.assertEqual(sent(self.transport), [(ptype, [b"f", unique, b"data"])])
        self.submit(background=True, when=1700000000)
        self.assertEqual(
            sent(self.transport),
            [(PacketType.SUBMIT_JOB_EPOCH, [b"f", b"", b"1700000000", b"data"])],
        )

    def test_foregroundCycle(self) -> None:
        """
        JOB_CREATED gives the handle; data, warnings and status reach the
        callbacks in order; WORK_COMPLETE fires the result.
        """
        events: List[object] = []
        task = self.submit(
            onData=lambda d: events.append(("data", d)),
            onWarning=lambda d: events.append(("warning", d)),
            onStatus=lambda n, d: events.append(("status", n, d)),
        )
        created = task.whenCreated()
        self.assertNoResult(created)
        self.protocol.dataReceived(
            response(PacketType.JOB_CREATED, b"H:1")
            + response(PacketType.WORK_DATA, b"H:1", b"a\0b")
            + response(PacketType.WORK_STATUS, b"H:1", b"1", b"2")
            + response(PacketType.WORK_WARNING, b"H:1", b"w")
        )
        self.assertEqual(self.successResultOf(created), b"H:1")
        self.assertEqual(task.handle, b"H:1")
        self.assertNoResult(task.result)
        self.protocol.dataReceived(response(PacketType.WORK_COMPLETE, b"H:1", b"done"))
        self.assertEqual(self.successResultOf(task.result), b"done")
        self.assertEqual(events, [("data", b"a\0b"), ("status", 1, 2), ("warning", b"w")])
        self.assertEqual((task.numerator, task.denominator), (1, 2))
        self.assertEqual(self.successResultOf(task.whenCreated()), b"H:1")

    def test_splitPackets(self) -> None:
        """
        Replies split at any byte are put back together.
        """
        task = self.submit()
        data = response(PacketType.JOB_CREATED, b"H:1") + response(
            PacketType.WORK_COMPLETE, b"H:1", b"ok"
        )
        for byte in data:
            self.protocol.dataReceived(bytes([byte]))
        self.assertEqual(self.successResultOf(task.result), b"ok")

    def test_repliesMatchedByHandle(self) -> None:
        """
        Results of pipelined jobs reach their own tasks, whatever their order.
        """
        first = self.submit()
        second = self.submit()
        self.protocol.dataReceived(
            response(PacketType.JOB_CREATED, b"H:1")
            + response(PacketType.JOB_CREATED, b"H:2")
            + response(PacketType.WORK_COMPLETE, b"H:2", b"two")
            + response(PacketType.WORK_COMPLETE, b"H:1", b"one")
        )
        self.assertEqual(self.successResultOf(first.result), b"one")
        self.assertEqual(self.successResultOf(second.result), b"two")

    def test_background(self) -> None:
        """
        A background task's result is its handle.
        """
        task = self.submit(background=True)
        self.protocol.dataReceived(response(PacketType.JOB_CREATED, b"H:7"))
        self.assertEqual(self.successResultOf(task.result), b"H:7")
        self.assertEqual(self.protocol.pendingCount(), 0)

    def test_workFail(self) -> None:
        """
        WORK_FAIL fails the result with L{JobFailed}, also with gearmand
        1.1.20's stray NUL after the handle.
        """
        first = self.submit()
        second = self.submit()
        self.protocol.dataReceived(
            response(PacketType.JOB_CREATED, b"H:1")
            + response(PacketType.JOB_CREATED, b"H:2")
            + response(PacketType.WORK_FAIL, b"H:1")
            + response(PacketType.WORK_FAIL, b"H:2\0")
        )
        self.assertEqual(self.failureResultOf(first.result, JobFailed).value.handle, b"H:1")
        self.assertEqual(self.failureResultOf(second.result, JobFailed).value.handle, b"H:2")

    def test_workException(self) -> None:
        """
        WORK_EXCEPTION fails the result with L{JobException} and its text.
        """
        task = self.submit()
        self.protocol.dataReceived(
            response(PacketType.JOB_CREATED, b"H:1")
            + response(PacketType.WORK_EXCEPTION, b"H:1", b"boom")
        )
        error = self.failureResultOf(task.result, JobException).value
        self.assertEqual((error.handle, error.data), (b"H:1", b"boom"))

    def test_submitError(self) -> None:
        """
        An ERROR in reply to a submission fails that task with
        L{ServerError}; the next one still gets its handle.
        """
        first = self.submit()
        second = self.submit()
        self.protocol.dataReceived(
            response(PacketType.ERROR, b"QUEUE_ERROR", b"Job queue is full")
            + response(PacketType.JOB_CREATED, b"H:1")
        )
        error = self.failureResultOf(first.result, ServerError).value
        self.assertEqual((error.code, error.text), (b"QUEUE_ERROR", b"Job queue is full"))
        self.assertEqual(self.successResultOf(second.whenCreated()), b"H:1")

    def test_unknownOption(self) -> None:
        """
        An UNKNOWN_OPTION error fails the option request, not a submission.
        """
        task = self.submit()
        option = self.protocol.setOption(b"nonsense")
        self.protocol.dataReceived(
            response(PacketType.JOB_CREATED, b"H:1")
            + response(PacketType.ERROR, b"UNKNOWN_OPTION", b"Server does not recognize given option")
        )
        self.failureResultOf(option, ServerError)
        self.assertEqual(task.handle, b"H:1")

    def test_localCoalescing(self) -> None:
        """
        A second task with the same unique key on one connection is not sent
        again: it follows the first and gets the same events, once each.
        """
        seen: List[bytes] = []
        first = self.submit(unique=b"u", onData=seen.append)
        second = Task(b"f", b"other", b"u", onData=seen.append)
        self.protocol.submit(second)
        self.assertEqual(len(sent(self.transport)), 1)
        self.protocol.dataReceived(
            response(PacketType.JOB_CREATED, b"H:1")
            + response(PacketType.WORK_DATA, b"H:1", b"x")
            + response(PacketType.WORK_COMPLETE, b"H:1", b"r")
        )
        self.assertEqual(seen, [b"x", b"x"])
        self.assertEqual(self.successResultOf(first.result), b"r")
        self.assertEqual(self.successResultOf(second.result), b"r")
        self.assertEqual(second.handle, b"H:1")

    def test_cancel(self) -> None:
        """
        Cancelling a task's result stops deliveries to it; a task following
        it takes its place.
        """
        first = self.submit(unique=b"u")
        seen: List[bytes] = []
        second = Task(b"f", b"data", b"u", onData=seen.append)
        self.protocol.submit(second)
        self.protocol.dataReceived(response(PacketType.JOB_CREATED, b"H:1"))
        first.result.cancel()
        self.failureResultOf(first.result)
        self.protocol.dataReceived(
            response(PacketType.WORK_DATA, b"H:1", b"x")
            + response(PacketType.WORK_COMPLETE, b"H:1", b"r")
        )
        self.assertEqual(seen, [b"x"])
        self.assertEqual(self.successResultOf(second.result), b"r")

    def test_cancelBeforeCreated(self) -> None:
        """
        A task cancelled before JOB_CREATED does not take another's handle.
        """
        first = self.submit()
        second = self.submit()
        first.result.cancel()
        self.failureResultOf(first.result)
        self.protocol.dataReceived(
            response(PacketType.JOB_CREATED, b"H:1")
            + response(PacketType.JOB_CREATED, b"H:2")
            + response(PacketType.WORK_COMPLETE, b"H:1", b"nobody")
            + response(PacketType.WORK_COMPLETE, b"H:2", b"two")
        )
        self.assertEqual(self.successResultOf(second.result), b"two")

    def test_echoAndStatus(self) -> None:
        """
        ECHO_RES, STATUS_RES and STATUS_RES_UNIQUE answer their requests.
        """
        echo = self.protocol.echo(b"ping")
        status = self.protocol.getStatus(b"H:9")
        unique = self.protocol.getStatusUnique(b"u")
        self.protocol.dataReceived(
            response(PacketType.STATUS_RES_UNIQUE, b"u", b"1", b"0", b"0", b"0", b"2")
            + response(PacketType.STATUS_RES, b"H:9", b"1", b"1", b"3", b"4")
            + response(PacketType.ECHO_RES, b"ping")
        )
        self.assertEqual(self.successResultOf(echo), b"ping")
        self.assertEqual(self.successResultOf(status), (True, True, 3, 4))
        self.assertEqual(self.successResultOf(unique), (True, False, 0, 0, 2))

    def test_connectionLost(self) -> None:
        """
        Without a handler, losing the connection fails every outstanding
        request with L{ConnectionLost}.
        """
        waiting = self.submit()
        running = self.submit()
        self.protocol.dataReceived(response(PacketType.JOB_CREATED, b"H:1"))
        echo = self.protocol.echo(b"x")
        status = self.protocol.getStatus(b"H:1")
        self.protocol.connectionLost(Failure(Exception("gone")))
        for d in (waiting.result, running.result, echo, status):
            self.failureResultOf(d, ConnectionLost)

    def test_badServerData(self) -> None:
        """
        Garbage from the server closes the connection.
        """
        self.protocol.dataReceived(b"\0XYZ" + b"\0" * 8)
        self.assertTrue(self.transport.disconnecting)


class ClientTests(SynchronousTestCase):
    """
    Tests for L{GearmanClient} against job servers in memory.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.servers = [JobServer(self.clock, handlePrefix=b"S%d" % i) for i in range(2)]
        self.endpoints = [MemoryServerEndpoint(s, self.clock) for s in self.servers]

    def client(self, count: int = 1, **kwargs) -> GearmanClient:
        client = GearmanClient(self.endpoints[:count], reactor=self.clock, **kwargs)
        client.startService()
        self.addCleanup(client.stopService)
        self.flush()
        return client

    def flush(self) -> None:
        flushAll(self.endpoints)

    def test_interface(self) -> None:
        """
        L{GearmanClient} provides L{IGearmanClient}.
        """
        self.assertTrue(verifyObject(IGearmanClient, GearmanClient(["127.0.0.1"])))

    def test_needsServers(self) -> None:
        """
        A client needs at least one server.
        """
        self.assertRaises(ValueError, GearmanClient, [])

    def test_submitAndQueue(self) -> None:
        """
        A submitted job is queued on the server with its priority and unique.
        """
        client = self.client()
        task = client.submit("f", b"payload", unique="u", priority=HIGH)
        self.flush()
        self.assertEqual(task.handle, b"S0:1")
        job = self.servers[0].jobs[b"S0:1"]
        self.assertEqual((job.data, job.unique, job.priority), (b"payload", b"u", 0))
        self.assertNoResult(task.result)

    def test_backgroundBatch(self) -> None:
        """
        submitBatch pipelines background jobs and fires with their handles.
        """
        client = self.client()
        d = client.submitBatch([("f", b"1"), ("g", b"2")], background=True)
        self.flush()
        self.assertEqual(self.successResultOf(d), [b"S0:1", b"S0:2"])

    def test_validation(self) -> None:
        """
        Bad arguments raise at once, TypeError for a wrong type and
        ValueError for a wrong value, and nothing is sent.
        """
        client = self.client()
        connection = client._servers[0].connection
        cases: List[Tuple[Type[Exception], Tuple[object, ...], Dict[str, object]]] = [
            (TypeError, ("f", None), {}),
            (TypeError, ("f", 5), {}),
            (TypeError, (5, b"x"), {}),
            (TypeError, (None, b"x"), {}),
            (ValueError, ("", b"x"), {}),
            (ValueError, ("f\0g", b"x"), {}),
            (ValueError, ("f" * 9000, b"x"), {}),
            (TypeError, ("f", b"x"), {"when": "soon"}),
            (ValueError, ("f", b"x"), {"when": -1}),
            (ValueError, ("f", b"x"), {"priority": "urgent"}),
            (TypeError, ("f", b"x"), {"priority": 1}),
            (ValueError, ("f", b"x"), {"unique": b"u" * 64}),
            (ValueError, ("f", b"x"), {"unique": b"a\0b"}),
            (TypeError, ("f", b"x"), {"unique": 5}),
            (ValueError, ("f", b"x"), {"when": 1, "priority": HIGH}),
            (TypeError, ("f", b"x"), {"background": "yes"}),
            (TypeError, ("f", b"x"), {"timeout": "5"}),
            (ValueError, ("f", b"x"), {"timeout": 0}),
            (ValueError, ("f", b"x"), {"timeout": -1}),
            (TypeError, ("f", b"x"), {"onData": "print"}),
            (TypeError, ("f", b"x"), {"onStatus": 1}),
        ]
        assert connection is not None
        for error, args, kwargs in cases:
            self.assertRaises(error, client.submit, *args, **kwargs)
            self.assertRaises(error, client.submitJob, *args, **kwargs)
            self.assertEqual(connection.pendingCount(), 0, (args, kwargs))
        self.assertEqual(self.servers[0].jobCount(), 0)

    def test_badArgumentDeliversNothingWrong(self) -> None:
        """
        A submission refused for a bad argument, between two good ones,
        leaves every later job with its own result.
        """
        client = self.client()
        worker = GearmanWorker(self.endpoints[:1], reactor=self.clock)
        worker.register("f", lambda job: b"result of " + job.data)
        worker.startService()
        self.addCleanup(worker.stopService)
        first = client.submit("f", b"1")
        for bad in (None, 5, ["x"]):
            self.assertRaises(TypeError, client.submit, "f", bad)
        self.assertRaises(TypeError, client.submit, "f", b"x", when="soon")
        second = client.submit("f", b"2")
        self.flush()
        self.assertEqual(self.successResultOf(first.result), b"result of 1")
        self.assertEqual(self.successResultOf(second.result), b"result of 2")

    def test_priorities(self) -> None:
        """
        Priorities are L{Priority} members or their strings.
        """
        client = self.client()
        tasks = [client.submit("f", b"x", priority=p) for p in (Priority.HIGH, "low", LOW, "normal")]
        self.assertEqual([t.priority for t in tasks], [HIGH, LOW, LOW, NORMAL])
        self.assertEqual(HIGH, "high")

    def test_datetimeWhen(self) -> None:
        """
        C{when} may be an aware datetime: its epoch second is sent.
        """
        client = self.client()
        moment = datetime(2030, 1, 1, tzinfo=timezone.utc)
        task = client.submit("f", b"x", when=moment)
        self.assertEqual(task.when, int(moment.timestamp()))
        self.assertTrue(task.background)

    def test_timeout(self) -> None:
        """
        A task not finished within its timeout fails with L{JobTimeout}.
        """
        client = self.client()
        task = client.submit("f", timeout=5)
        self.flush()
        self.clock.advance(4)
        self.assertNoResult(task.result)
        self.clock.advance(1)
        error = self.failureResultOf(task.result, JobTimeout).value
        self.assertEqual((error.handle, error.seconds), (b"S0:1", 5))

    def test_noServer(self) -> None:
        """
        With no server reachable a submission waits C{connectTimeout}
        seconds, then fails with L{ServerUnavailable}.
        """
        self.endpoints[0].refuse = True
        client = self.client(connectTimeout=3)
        task = client.submit("f")
        self.clock.advance(3)
        self.failureResultOf(task.result, ServerUnavailable)

    def test_uniqueAffinity(self) -> None:
        """
        Jobs with the same unique key go to the same server, so they
        coalesce there; jobs without one are spread over the pool.
        """
        client = self.client(2)
        tasks = [client.submit("f", b"x", unique="same") for _ in range(4)]
        self.flush()
        self.assertEqual(len({t.server for t in tasks}), 1)
        self.assertEqual(len({t.handle for t in tasks}), 1)
        spread = [client.submit("f", b"x") for _ in range(4)]
        self.flush()
        self.assertEqual(len({t.server for t in spread}), 2)

    def test_failover(self) -> None:
        """
        When a server's connection drops before a job ends, the job is
        submitted again to another server.
        """
        client = self.client(2)
        task = client.submit("f", b"x", unique="k")
        self.flush()
        first = task.server
        assert task.handle is not None
        index = [e.server for e in self.endpoints].index(
            self.servers[0] if task.handle.startswith(b"S0") else self.servers[1]
        )
        self.endpoints[index].refuse = True
        self.endpoints[index].disconnectAll()
        self.flush()
        self.assertNotEqual(task.server, first)
        self.assertIsNotNone(task.handle)
        self.assertNoResult(task.result)

    def test_echo(self) -> None:
        """
        echo() round-trips through a connected server.
        """
        client = self.client()
        d = client.echo(b"hi")
        self.flush()
        self.assertEqual(self.successResultOf(d), b"hi")

    def test_deriveUnique(self) -> None:
        """
        Derived unique keys depend on function and data, and fit gearmand.
        """
        key = deriveUnique("f", b"data")
        self.assertEqual(key, deriveUnique(b"f", b"data"))
        self.assertNotEqual(key, deriveUnique("g", b"data"))
        self.assertLessEqual(len(key), 64)


class EndpointTests(SynchronousTestCase):
    """
    Tests for L{clientEndpoint}.
    """

    def test_hostPort(self) -> None:
        """
        C{host}, C{host:port} and C{[ipv6]:port} are named with their port.
        """
        clock = Clock()
        self.assertEqual(clientEndpoint(clock, "localhost")[1], "localhost:4730")
        self.assertEqual(clientEndpoint(clock, "127.0.0.1:4731")[1], "127.0.0.1:4731")
        self.assertEqual(clientEndpoint(clock, "[::1]:4732")[1], "[::1]:4732")

    def test_descriptions(self) -> None:
        """
        Endpoint descriptions are passed to clientFromString.
        """
        from twisted.internet import reactor

        endpoint, name = clientEndpoint(reactor, "unix:path=/tmp/x.sock")
        self.assertEqual(name, "unix:path=/tmp/x.sock")
        self.assertTrue(IStreamClientEndpoint.providedBy(endpoint))

    def test_bad(self) -> None:
        """
        Nonsense is a ValueError.
        """
        self.assertRaises(ValueError, clientEndpoint, Clock(), "a:b:c")
        self.assertRaises(ValueError, clientEndpoint, Clock(), "host:99999")


class MisuseTests(SynchronousTestCase):
    """
    A careless user's client: failing callbacks, cancellations at each
    moment, calls after a stop, wrong batches.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.server = JobServer(self.clock, handlePrefix=b"S")
        self.endpoint = MemoryServerEndpoint(self.server, self.clock)
        self.workerEndpoint = MemoryServerEndpoint(self.server, self.clock)

    def flush(self) -> None:
        flushAll([self.endpoint, self.workerEndpoint])

    def client(self, **kwargs) -> GearmanClient:
        client = GearmanClient([self.endpoint], reactor=self.clock, **kwargs)
        client.startService()
        self.addCleanup(client.stopService)
        self.flush()
        return client

    def worker(self, function, name: str = "f") -> List[bytes]:
        """
        A worker running C{function}; returns the list of data it ran.
        """
        ran: List[bytes] = []

        def run(job):
            ran.append(job.data)
            return function(job)

        worker = GearmanWorker([self.workerEndpoint], reactor=self.clock)
        worker.register(name, run)
        worker.startService()
        self.addCleanup(worker.stopService)
        self.flush()
        return ran

    def test_callbackRaises(self) -> None:
        """
        An exception in onData, onStatus or onWarning is logged with the
        job's handle and function, and changes nothing else: the
        connection stays, the job runs once, every job gets its result.
        """

        def stream(job):
            job.sendData(b"d")
            job.sendStatus(1, 2)
            job.sendWarning(b"w")
            return b"done " + job.data

        ran = self.worker(stream)
        client = self.client()
        connection = client._servers[0].connection

        def broken(*args):
            raise ZeroDivisionError("user bug")

        tasks = [
            client.submit("f", b"%d" % i, onData=broken, onStatus=broken, onWarning=broken) for i in range(3)
        ]
        with capturedLogs() as events:
            self.flush()
        self.assertEqual([self.successResultOf(t.result) for t in tasks], [b"done 0", b"done 1", b"done 2"])
        self.assertEqual(ran, [b"0", b"1", b"2"])
        self.assertIs(client._servers[0].connection, connection)
        assert connection is not None
        self.assertTrue(connection.connected)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 9)
        texts = [formatEvent(e) for e in events if "log_failure" in e]
        self.assertIn("onData callback of job S:1 (f) raised", texts)
        self.assertIn("onStatus callback of job S:2 (f) raised", texts)

    def test_whenCreatedAfterCancel(self) -> None:
        """
        Deferreds from whenCreated(), taken before or after the result was
        cancelled or timed out, fire with the handle when JOB_CREATED
        comes.
        """
        client = self.client()
        cancelled = client.submit("f", b"1")
        early = cancelled.whenCreated()
        cancelled.result.cancel()
        self.failureResultOf(cancelled.result, CancelledError)
        late = cancelled.whenCreated()
        timed = client.submit("f", b"2", timeout=1)
        timedEarly = timed.whenCreated()
        self.clock.advance(1)
        self.failureResultOf(timed.result, JobTimeout)
        timedLate = timed.whenCreated()
        self.assertNoResult(early)
        self.flush()
        self.assertEqual(self.successResultOf(early), b"S:1")
        self.assertEqual(self.successResultOf(late), b"S:1")
        self.assertEqual(self.successResultOf(timedEarly), b"S:2")
        self.assertEqual(self.successResultOf(timedLate), b"S:2")

    def test_whenCreatedNever(self) -> None:
        """
        whenCreated() fails, never hangs, when the job will not be created:
        cancelled while waiting for a server, or its connection lost after
        the cancel.
        """
        self.endpoint.refuse = True
        client = GearmanClient([self.endpoint], reactor=self.clock)
        client.startService()
        self.addCleanup(client.stopService)
        waiting = client.submit("f", b"x")
        early = waiting.whenCreated()
        waiting.result.cancel()
        self.failureResultOf(early, ServerUnavailable)
        self.failureResultOf(waiting.whenCreated(), ServerUnavailable)
        self.failureResultOf(waiting.result, CancelledError)

        protocol = GearmanClientProtocol(exceptions=False)
        protocol.makeConnection(StringTransport())
        task = Task(b"f", b"y")
        protocol.submit(task)
        created = task.whenCreated()
        task.result.cancel()
        self.failureResultOf(task.result, CancelledError)
        protocol.connectionLost(Failure(ConnectionLost()))
        self.failureResultOf(created, ConnectionLost)

    def test_coalescedCancel(self) -> None:
        """
        Cancelling the first of two coalesced submissions before JOB_CREATED
        leaves the second with the result, and both whenCreated() Deferreds
        get the handle.
        """
        self.worker(lambda job: b"r")
        client = self.client()
        first = client.submit("f", b"x", unique="u")
        second = client.submit("f", b"x", unique="u")
        firstCreated = first.whenCreated()
        first.result.cancel()
        self.failureResultOf(first.result, CancelledError)
        self.flush()
        self.assertEqual(self.successResultOf(firstCreated), b"S:1")
        self.assertEqual(self.successResultOf(second.result), b"r")

    def test_submitAfterStop(self) -> None:
        """
        After stopService() a submission fails at once with
        L{ServerUnavailable}; in-flight tasks fail with L{ConnectionLost}.
        """
        client = self.client()
        inFlight = client.submit("f", b"x")
        self.flush()
        client.stopService()
        self.flush()
        self.failureResultOf(inFlight.result, ConnectionLost)
        late = client.submit("f", b"y")
        self.assertIn("stopped", str(self.failureResultOf(late.result, ServerUnavailable).value))

    def test_unavailableNamesServers(self) -> None:
        """
        "No job server is connected" names every server and why it is not.
        """
        refused = MemoryServerEndpoint(self.server, self.clock)
        refused.refuse = True
        client = GearmanClient([refused], reactor=self.clock, connectTimeout=2)
        client.startService()
        self.addCleanup(client.stopService)
        task = client.submit("f", b"x")
        self.clock.advance(2)
        error = self.failureResultOf(task.result, ServerUnavailable).value
        self.assertEqual(error.servers, ((client.servers[0], "connection refused"),))
        self.assertIn("no job server is connected (tried ", str(error))

    def test_serverBackWhileWaiting(self) -> None:
        """
        A submission waiting for a server is sent once the server is back,
        even when the reconnection backoff had grown past connectTimeout:
        waiting submissions make servers be retried at least once a second.
        """
        self.endpoint.refuse = True
        client = GearmanClient([self.endpoint], reactor=self.clock, connectTimeout=10)
        client.startService()
        self.addCleanup(client.stopService)
        for _ in range(40):
            self.clock.advance(30)
        self.assertGreater(client._servers[0].reconnector.failures, 5)
        task = client.submit("f", b"x")
        self.clock.advance(5)
        self.endpoint.refuse = False
        self.clock.advance(1)
        self.flush()
        self.assertIsNotNone(task.handle)
        self.assertNoResult(task.result)

    def test_batchOptions(self) -> None:
        """
        submitBatch takes (function, data) pairs and dicts with per-job
        options; the keyword arguments are defaults.
        """
        self.worker(lambda job: job.data.upper())
        client = self.client()
        d = client.submitBatch(
            [
                ("f", b"a"),
                {"function": "f", "data": b"b", "unique": "k", "priority": HIGH},
                {"function": "f", "data": b"c", "background": False},
            ],
            background=True,
        )
        self.flush()
        results = self.successResultOf(d)
        self.assertEqual(results[0], b"S:1")
        self.assertEqual(results[1], b"S:2")
        self.assertEqual(results[2], b"C")

    def test_batchRejects(self) -> None:
        """
        submitBatch refuses what it cannot read with a clear TypeError or
        ValueError, before sending any job.
        """
        client = self.client()
        connection = client._servers[0].connection
        bad = [
            ({"f": b"x"}, TypeError, "jobs must be a list"),
            ("f", TypeError, "jobs must be a list"),
            (5, TypeError, "jobs must be a list"),
            ([("f", b"x"), ("f",)], TypeError, "job 1 must be"),
            ([("f", b"x"), {"data": b"x"}], TypeError, "job 1 has no function"),
            ([{"function": "f", "colour": "red"}], TypeError, "job 0 has unknown keys: colour"),
            ([("f", b"x"), ("f", None)], TypeError, "job 1: data must be bytes or str"),
            ([("f", b"x"), {"function": "f", "priority": "urgent"}], ValueError, "job 1: priority"),
        ]
        for jobs, error, text in bad:
            e = self.assertRaises(error, client.submitBatch, jobs)
            self.assertIn(text, str(e))
        self.assertRaises(TypeError, client.submitBatch, [("f", b"x")], colour="red")
        assert connection is not None
        self.assertEqual(connection.pendingCount(), 0)
        self.assertEqual(self.server.jobCount(), 0)

    def test_statusTuples(self) -> None:
        """
        getStatus and getStatusUnique fire with named tuples.
        """
        client = self.client()
        task = client.submit("f", b"x", unique="u", background=True)
        self.flush()
        assert task.handle is not None
        status = client.getStatus(task.handle)
        unique = client.getStatusUnique("f", "u")
        self.flush()
        self.assertEqual(self.successResultOf(status), JobStatus(known=True, running=False, numerator=0, denominator=0))
        result = self.successResultOf(unique)
        self.assertEqual((result.known, result.waiting), (True, 0))
        self.assertRaises(TypeError, client.getStatus, 5)
        self.assertRaises(ValueError, client.getStatus, b"")
        self.assertRaises(ValueError, client.getStatus, b"H:1", server="elsewhere:1")
        self.assertRaises(ValueError, client.getStatus, b"H:" + b"x" * 62)
        self.assertRaises(ValueError, client.getStatusUnique, "f", b"u" * 64)
        self.assertRaises(ValueError, client.echo, b"x" * (client.maxPacketSize + 1))
        self.assertRaises(TypeError, client.echo, 5)

    def test_getResultChecks(self) -> None:
        """
        getResult refuses bad arguments at once, before connecting.
        """
        client = self.client()
        self.assertRaises(ValueError, client.getResult)
        self.assertRaises(ValueError, client.getResult, b"H:1", unique=b"u")
        self.assertRaises(TypeError, client.getResult, 5)
        self.assertRaises(ValueError, client.getResult, b"")
        self.assertRaises(ValueError, client.getResult, b"H 1")
        self.assertRaises(ValueError, client.getResult, unique=b"u" * 65)
        self.assertRaises(ValueError, client.getResult, b"H:1", server="elsewhere:1")
        self.assertRaises(TypeError, client.getResult, unique=b"u", function=5)

    def test_constructorChecks(self) -> None:
        """
        The client's settings are checked when it is made.
        """
        self.assertRaises(TypeError, GearmanClient, "127.0.0.1:4730")
        self.assertRaises(TypeError, GearmanClient, ["127.0.0.1"], timeout="1")
        self.assertRaises(ValueError, GearmanClient, ["127.0.0.1"], connectTimeout=0)
        self.assertRaises(ValueError, GearmanClient, ["127.0.0.1"], maxAttempts=0)
        self.assertRaises(TypeError, GearmanClient, ["127.0.0.1"], retryPolicy=5)
        self.assertRaises(TypeError, GearmanClient, [5])
        self.assertRaises(TypeError, GearmanClient, ["127.0.0.1"], maxPacketSize="big")


class GetResultTests(SynchronousTestCase):
    """
    L{GearmanClient.getResult} and its admin connection, over a
    L{MemoryReactorClock}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.resolver = PendingResolver()
        self.reactor.installNameResolver(self.resolver)

    def client(self) -> GearmanClient:
        # Not started: getResult's connection is the only one.
        return GearmanClient(["gearman.example:4730"], reactor=self.reactor, connectTimeout=5)

    def connect(self) -> Tuple[Any, StringTransport]:
        """
        Resolve the server's name and complete the connection attempt.
        """
        self.resolver.resolve("127.0.0.1")
        transport = StringTransport()
        protocol = self.reactor.tcpClients[-1][2].buildProtocol(None)
        assert protocol is not None
        protocol.makeConnection(transport)
        return protocol, transport

    def test_cancel(self) -> None:
        """
        Cancelling getResult fails it with L{CancelledError} while the
        server's name is resolved, while it connects and while it waits for
        the reply, and leaves no connection or timer behind.
        """
        client = self.client()
        resolving = client.getResult(b"H:x:1")
        resolving.cancel()
        self.failureResultOf(resolving, CancelledError)
        self.resolver.resolve("127.0.0.1")
        self.assertEqual((self.reactor.tcpClients, self.reactor.getDelayedCalls()), ([], []))

        connecting = client.getResult(b"H:x:1")
        self.resolver.resolve("127.0.0.1")
        connecting.cancel()
        self.failureResultOf(connecting, CancelledError)
        self.assertTrue(self.reactor.connectors[-1].stoppedConnecting)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

        waiting = client.getResult(unique=b"u")
        _, transport = self.connect()
        self.assertEqual(transport.value(), b"result unique u\r\n")
        waiting.cancel()
        self.failureResultOf(waiting, CancelledError)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_uniqueAsServerKeeps(self) -> None:
        """
        getResult asks about unique keys as long as the server keeps (64
        bytes, one more than a submission may have, for gearmand's sake)
        and refuses longer ones at once.
        """
        client = self.client()
        unique = b"u" * model.MAX_UNIQUE
        d = client.getResult(unique=unique)
        protocol, transport = self.connect()
        self.assertEqual(transport.value(), b"result unique " + unique + b"\r\n")
        protocol.dataReceived(b"function f\nhandle H:1\nunique " + unique + b"\noutcome complete\ndata UQ==\n.\n")
        self.assertEqual(self.successResultOf(d), JobResult(b"f", b"H:1", unique, "complete", b"Q"))
        self.assertRaises(ValueError, client.getResult, unique=unique + b"u")
        self.assertRaises(ValueError, client.submit, "f", b"", unique=unique)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_handleOrUniqueErrors(self) -> None:
        """
        getResult's error says what is wrong with its handle and unique:
        both given (an empty handle counts), neither given, or one empty.
        """
        client = self.client()
        cases: List[Tuple[Callable[[], object], str]] = [
            (lambda: client.getResult(b"", unique=b"x"), "getResult() takes a handle or a unique, not both"),
            (lambda: client.getResult(b"H:1", unique=b""), "getResult() takes a handle or a unique, not both"),
            (lambda: client.getResult(), "getResult() needs a handle or a unique; neither was given"),
            (lambda: client.getResult(b""), "getResult() handle must not be empty"),
            (lambda: client.getResult(unique=""), "getResult() unique must not be empty"),
        ]
        for call, message in cases:
            self.assertEqual(str(self.assertRaises(ValueError, call)), message)
        self.assertEqual(self.reactor.tcpClients, [])


class AdversarialTests(SynchronousTestCase):
    """
    Cases an adversarial review found: each failed before its fix.
    """

    def setUp(self) -> None:
        self.protocol = GearmanClientProtocol(exceptions=False)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(response(PacketType.ECHO_RES, b""))
        self.transport.clear()

    def test_errorAnswersOldestRequest(self) -> None:
        """
        An ERROR answering a GET_STATUS_UNIQUE the server does not know
        fails that request, not the oldest submission: every later job
        still gets its own result.
        """
        first = Task(b"f", b"a")
        self.protocol.submit(first)
        status = self.protocol.getStatusUnique(b"u")
        second = Task(b"f", b"b")
        self.protocol.submit(second)
        self.protocol.dataReceived(
            response(PacketType.JOB_CREATED, b"H:1")
            + response(PacketType.ERROR, b"INVALID_COMMAND", b"unknown")
            + response(PacketType.JOB_CREATED, b"H:2")
            + response(PacketType.WORK_COMPLETE, b"H:2", b"B")
            + response(PacketType.WORK_COMPLETE, b"H:1", b"A")
        )
        self.assertEqual(self.failureResultOf(status, ServerError).value.code, b"INVALID_COMMAND")
        self.assertEqual(self.successResultOf(first.result), b"A")
        self.assertEqual(self.successResultOf(second.result), b"B")

    def test_errorAnswersEchoAndStatus(self) -> None:
        """
        ERRORs are matched to ECHO and GET_STATUS requests in turn too.
        """
        echo = self.protocol.echo(b"x")
        status = self.protocol.getStatus(b"H:9")
        later = self.protocol.getStatus(b"H:8")
        self.protocol.dataReceived(
            response(PacketType.ERROR, b"E1", b"")
            + response(PacketType.ERROR, b"E2", b"")
            + response(PacketType.STATUS_RES, b"H:8", b"0", b"0", b"0", b"0")
        )
        self.assertEqual(self.failureResultOf(echo, ServerError).value.code, b"E1")
        self.assertEqual(self.failureResultOf(status, ServerError).value.code, b"E2")
        self.assertEqual(self.successResultOf(later).known, False)

    def test_dashApartFromKeys(self) -> None:
        """
        A C{"-"} submission and one whose explicit key equals its data are
        not coalesced by the client (gearmand and gearman_tw keep them
        apart): each gets its own job's result.
        """
        dash = Task(b"f", b"abc", unique=b"-")
        named = Task(b"f", b"xyz", unique=b"abc")
        self.assertNotEqual(dash.coalescingKey(), named.coalescingKey())
        self.protocol.submit(named)
        self.protocol.submit(dash)
        self.protocol.dataReceived(
            response(PacketType.JOB_CREATED, b"H:1")
            + response(PacketType.JOB_CREATED, b"H:2")
            + response(PacketType.WORK_COMPLETE, b"H:2", b"f(abc)")
            + response(PacketType.WORK_COMPLETE, b"H:1", b"f(xyz)")
        )
        self.assertEqual(self.successResultOf(dash.result), b"f(abc)")
        self.assertEqual(self.successResultOf(named.result), b"f(xyz)")

    def test_handleShared(self) -> None:
        """
        Two submissions a server coalesced under one handle, under keys this
        client did not know to match, both get the result.
        """
        other = Task(b"f", b"x", unique=b"k1")
        again = Task(b"f", b"y", unique=b"k2")
        self.protocol.submit(other)
        self.protocol.submit(again)
        self.protocol.dataReceived(
            response(PacketType.JOB_CREATED, b"H:1")
            + response(PacketType.JOB_CREATED, b"H:1")
            + response(PacketType.WORK_COMPLETE, b"H:1", b"r")
        )
        self.assertEqual(self.successResultOf(other.result), b"r")
        self.assertEqual(self.successResultOf(again.result), b"r")

    def test_cancelFollowerLeaderWhileWaiting(self) -> None:
        """
        A leader cancelled (or timed out) after its connection was lost
        leaves its follower to be submitted by itself: both end.
        """
        clock = Clock()
        server = JobServer(clock, handlePrefix=b"S")
        endpoint = MemoryServerEndpoint(server, clock)
        client = GearmanClient([endpoint], reactor=clock, connectTimeout=30)
        client.startService()
        self.addCleanup(client.stopService)
        leader = client.submit("f", b"x", unique="k", timeout=2)
        follower = client.submit("f", b"x", unique="k")
        endpoint.flush()
        endpoint.refuse = True
        endpoint.disconnectAll()
        clock.advance(2)
        self.failureResultOf(leader.result, JobTimeout)
        endpoint.refuse = False
        clock.advance(5)
        endpoint.flush()
        workerEndpoint = MemoryServerEndpoint(server, clock)
        worker = GearmanWorker([workerEndpoint], reactor=clock)
        worker.register("f", lambda job: b"done")
        worker.startService()
        self.addCleanup(worker.stopService)
        for _ in range(5):
            flushAll([endpoint, workerEndpoint])
        self.assertEqual(self.successResultOf(follower.result), b"done")

    def test_createdCallbackCancelsLeader(self) -> None:
        """
        A whenCreated callback that cancels the leader leaves the follower
        with the handle and the result.
        """
        leader = Task(b"f", b"x", unique=b"k")
        follower = Task(b"f", b"x", unique=b"k")
        self.protocol.submit(leader)
        self.protocol.submit(follower)
        leader.whenCreated().addCallback(lambda _: leader.result.cancel())
        self.protocol.dataReceived(
            response(PacketType.JOB_CREATED, b"H:1") + response(PacketType.WORK_COMPLETE, b"H:1", b"done")
        )
        self.failureResultOf(leader.result, CancelledError)
        self.assertEqual(follower.handle, b"H:1")
        self.assertEqual(self.successResultOf(follower.whenCreated()), b"H:1")
        self.assertEqual(self.successResultOf(follower.result), b"done")

    def test_oversized(self) -> None:
        """
        A submission larger than maxPacketSize raises ValueError at once.
        """
        clock = Clock()
        client = GearmanClient(["127.0.0.1"], reactor=clock, maxPacketSize=4096)
        self.assertRaises(ValueError, client.submit, "f", b"x" * 5000)
        task = client.submit("f", b"x" * 1000, timeout=1)
        clock.advance(1)
        self.failureResultOf(task.result, JobTimeout)

    def test_badValues(self) -> None:
        """
        Infinite or absurd epochs and timeouts, and text that cannot be
        UTF-8, are ValueErrors naming the argument.
        """
        client = GearmanClient(["127.0.0.1"])
        for kwargs in ({"when": float("inf")}, {"when": 1e30}, {"when": float("nan")}, {"timeout": float("inf")}):
            self.assertRaises(ValueError, client.submit, "f", b"x", **kwargs)
        error = self.assertRaises(ValueError, client.submit, "f\udc80", b"x")
        self.assertIn("function", str(error))
        error = self.assertRaises(ValueError, client.submitBatch, [("f\udc80", b"x")])
        self.assertIn("job 0: function", str(error))

    def test_errorTextsNameTheJob(self) -> None:
        """
        Failures of a task say which job they are about.
        """
        clock = Clock()
        endpoint = MemoryServerEndpoint(JobServer(clock), clock)
        endpoint.refuse = True
        client = GearmanClient([endpoint], reactor=clock, connectTimeout=1)
        client.startService()
        task = client.submit("resize", b"x")
        clock.advance(1)
        self.assertTrue(str(self.failureResultOf(task.result).value).startswith("job (resize) not submitted: "))
        client.stopService()
        late = client.submit("resize", b"y")
        self.assertEqual(
            str(self.failureResultOf(late.result).value), "job (resize) not submitted: the client is stopped"
        )
        self.assertEqual(str(ConnectionLost("job H:1 (f) lost")), "job H:1 (f) lost")

    def test_restartBeforeClose(self) -> None:
        """
        stopService() then startService() before the old connection has
        closed leaves one connection, and a final stop none.
        """
        clock = Clock()
        endpoint = MemoryServerEndpoint(JobServer(clock), clock)
        client = GearmanClient([endpoint], reactor=clock)
        client.startService()
        endpoint.flush()
        client.stopService()
        client.startService()
        endpoint.flush()
        clock.advance(5)
        endpoint.flush()
        self.assertEqual(len([p for p in endpoint.pumps if not p.client.transport.disconnected]), 1)
        client.stopService()
        endpoint.flush()
        self.assertEqual(len([p for p in endpoint.pumps if not p.client.transport.disconnected]), 0)

    def test_whenConnectedAtStop(self) -> None:
        """
        whenConnected() fails with L{ServerUnavailable} when the client is
        stopped before a server answered, and on a stopped client.
        """
        clock = Clock()
        endpoint = MemoryServerEndpoint(JobServer(clock), clock)
        endpoint.refuse = True
        client = GearmanClient([endpoint], reactor=clock)
        client.startService()
        pending = client.whenConnected()
        client.stopService()
        self.failureResultOf(pending, ServerUnavailable)
        self.failureResultOf(client.whenConnected(), ServerUnavailable)

    def test_reconnectsKeepOneConnection(self) -> None:
        """
        However often its connection is lost and made again, a server has
        one connection, the live one, and a lost one is forgotten at once.
        """
        clock = Clock()
        endpoint = MemoryServerEndpoint(JobServer(clock), clock)
        client = GearmanClient([endpoint], reactor=clock, retryPolicy=lambda n: 1.0)
        client.startService()
        self.addCleanup(client.stopService)
        for _ in range(5):
            endpoint.flush()
            connection = client._servers[0].connection
            assert connection is not None
            self.assertTrue(connection.connected)
            endpoint.disconnectAll()
            self.assertIsNone(client._servers[0].connection)
            self.assertEqual(client.connectedServers(), [])
            clock.advance(1)
        endpoint.flush()
        self.assertEqual(client.connectedServers(), client.servers)
        self.assertEqual(len([p for p in endpoint.pumps if not p.client.transport.disconnected]), 1)

    def test_maxAttemptsOne(self) -> None:
        """
        With maxAttempts=1 a task whose connection is lost is not sent
        again: it fails with L{ServerUnavailable}.
        """
        clock = Clock()
        servers = [JobServer(clock, handlePrefix=b"S%d" % i) for i in range(2)]
        endpoints = [MemoryServerEndpoint(s, clock) for s in servers]
        client = GearmanClient(endpoints, reactor=clock, maxAttempts=1)
        client.startService()
        self.addCleanup(client.stopService)
        flushAll(endpoints)
        task = client.submit("f", b"x")
        flushAll(endpoints)
        assert task.server is not None
        index = client.servers.index(task.server)
        endpoints[index].disconnectAll()
        error = self.failureResultOf(task.result, ServerUnavailable).value
        self.assertIn("no job server could finish it (submitted 1 time)", str(error))
        self.assertEqual(task.attempts, 1)
