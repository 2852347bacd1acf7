"""
Tests for L{gearman_tw.worker}.
"""

from typing import List

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from gearman_tw.client import GearmanClient
from gearman_tw.errors import JobException, JobFailed
from gearman_tw.interfaces import IGearmanWorker
from gearman_tw.protocol import REQ, PacketType, encode, parseAll
from gearman_tw.server.jobs import JobServer
from gearman_tw.testing import MemoryServerEndpoint, flushAll
from gearman_tw.worker import Function, GearmanWorker, GearmanWorkerProtocol


def response(ptype: int, *args: bytes) -> bytes:
    return encode(ptype, *args)


class ProtocolTests(SynchronousTestCase):
    """
    The worker's packet cycle over a StringTransport.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.worker = GearmanWorker(["127.0.0.1"], reactor=self.clock, clientId="w1")
        self.calls: List[bytes] = []
        self.results: dict = {}

    def connect(self, *functions: Function) -> GearmanWorkerProtocol:
        protocol = GearmanWorkerProtocol(self.worker, list(functions))
        self.transport = StringTransport()
        protocol.makeConnection(self.transport)
        return protocol

    def sent(self) -> list:
        packets = parseAll(self.transport.value(), magic=REQ)
        self.transport.clear()
        return [(ptype, args) for ptype, args, _ in packets]

    def function(self, job):
        self.calls.append(job.data)
        return self.results.get(job.data, job.data.upper())

    def test_registers(self) -> None:
        """
        On connecting: SET_CLIENT_ID, CAN_DO (CAN_DO_TIMEOUT in milliseconds
        for timed functions), GRAB_JOB_UNIQ, then the handshake's ECHO.
        """
        self.connect(Function(b"f", self.function), Function(b"g", self.function, timeout=2.5))
        self.assertEqual(
            self.sent(),
            [
                (PacketType.SET_CLIENT_ID, [b"w1"]),
                (PacketType.CAN_DO, [b"f"]),
                (PacketType.CAN_DO_TIMEOUT, [b"g", b"2500"]),
                (PacketType.GRAB_JOB_UNIQ, []),
                (PacketType.ECHO_REQ, [b""]),
            ],
        )

    def test_sleepAndWake(self) -> None:
        """
        NO_JOB is answered with PRE_SLEEP; a NOOP wakes the worker to grab.
        """
        protocol = self.connect(Function(b"f", self.function))
        self.sent()
        protocol.dataReceived(response(PacketType.NO_JOB))
        self.assertEqual(self.sent(), [(PacketType.PRE_SLEEP, [])])
        protocol.dataReceived(response(PacketType.NOOP))
        self.assertEqual(self.sent(), [(PacketType.GRAB_JOB_UNIQ, [])])
        protocol.dataReceived(response(PacketType.NOOP))
        self.assertEqual(self.sent(), [])

    def test_complete(self) -> None:
        """
        A job's return value becomes WORK_COMPLETE, then the worker grabs
        again; the unique key reaches the function.
        """
        seen = []
        protocol = self.connect(Function(b"f", lambda job: seen.append(job.unique) or "done"))
        self.sent()
        protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"u", b"x"))
        self.assertEqual(
            self.sent(),
            [(PacketType.WORK_COMPLETE, [b"H:1", b"done"]), (PacketType.GRAB_JOB_UNIQ, [])],
        )
        self.assertEqual(seen, [b"u"])

    def test_streaming(self) -> None:
        """
        Data, warnings and status go out before the result, in order.
        """

        def stream(job):
            job.sendData(b"a")
            job.sendStatus(1, 2)
            job.sendWarning("w")
            return b"r"

        protocol = self.connect(Function(b"f", stream))
        self.sent()
        protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
        self.assertEqual(
            self.sent()[:4],
            [
                (PacketType.WORK_DATA, [b"H:1", b"a"]),
                (PacketType.WORK_STATUS, [b"H:1", b"1", b"2"]),
                (PacketType.WORK_WARNING, [b"H:1", b"w"]),
                (PacketType.WORK_COMPLETE, [b"H:1", b"r"]),
            ],
        )

    def test_exception(self) -> None:
        """
        A raised exception becomes WORK_EXCEPTION with its text, and is
        logged once, as a warning naming the job and its function, without
        a traceback.
        """

        def broken(job):
            raise KeyError("missing")

        protocol = self.connect(Function(b"f", broken))
        self.sent()
        with capturedLogs() as events:
            protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
        self.assertEqual(self.sent()[0], (PacketType.WORK_EXCEPTION, [b"H:1", b"'missing'"]))
        self.assertEqual(self.flushLoggedErrors(KeyError), [])
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])
        self.assertEqual(
            formatEvent(events[0]), "Job H:1 (f) raised KeyError: 'missing'"
        )

    def test_failedDeferred(self) -> None:
        """
        A Deferred that fails becomes WORK_EXCEPTION when it fails.
        """
        pending: Deferred = Deferred()
        protocol = self.connect(Function(b"f", lambda job: pending))
        self.sent()
        protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
        self.assertEqual(self.sent(), [])
        pending.errback(ValueError("late"))
        self.assertEqual(
            self.sent(),
            [(PacketType.WORK_EXCEPTION, [b"H:1", b"late"]), (PacketType.GRAB_JOB_UNIQ, [])],
        )
        self.flushLoggedErrors(ValueError)

    def test_explicitFail(self) -> None:
        """
        job.fail() sends WORK_FAIL and nothing more for that job; raising
        JobFailed does the same.
        """

        def failing(job):
            job.fail()
            return b"ignored"

        protocol = self.connect(
            Function(b"f", failing), Function(b"g", lambda job: fail(JobFailed(job.handle)))
        )
        self.sent()
        protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
        protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:2", b"g", b"", b"x"))
        self.assertEqual(
            self.sent(),
            [
                (PacketType.WORK_FAIL, [b"H:1"]),
                (PacketType.GRAB_JOB_UNIQ, []),
                (PacketType.WORK_FAIL, [b"H:2"]),
                (PacketType.GRAB_JOB_UNIQ, []),
            ],
        )

    def test_badResult(self) -> None:
        """
        A function returning neither bytes nor str fails the job with
        WORK_EXCEPTION instead of crashing the worker.
        """
        protocol = self.connect(Function(b"f", lambda job: 42))
        self.sent()
        protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
        ptype, args = self.sent()[0]
        self.assertEqual((ptype, args[0]), (PacketType.WORK_EXCEPTION, b"H:1"))
        self.flushLoggedErrors(TypeError)

    def test_disconnectMidJob(self) -> None:
        """
        If the connection drops while a job runs, its late result is dropped.
        """
        pending: Deferred = Deferred()
        protocol = self.connect(Function(b"f", lambda job: pending))
        protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
        protocol.connectionLost(None)
        self.transport.clear()
        pending.callback(b"late")
        self.assertEqual(self.transport.value(), b"")

    def test_unknownFunction(self) -> None:
        """
        A job for a function this connection did not register is failed.
        """
        protocol = self.connect(Function(b"f", self.function))
        self.sent()
        protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:1", b"zzz", b"", b"x"))
        self.assertEqual(self.sent()[0], (PacketType.WORK_FAIL, [b"H:1"]))


class ThreadClock(Clock):
    """
    A Clock that also runs callFromThread calls (at once).
    """

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)


class WorkerServiceTests(SynchronousTestCase):
    """
    L{GearmanWorker} against a job server in memory.
    """

    def setUp(self) -> None:
        self.clock = ThreadClock()
        self.server = JobServer(self.clock, handlePrefix=b"H")
        self.endpoint = MemoryServerEndpoint(self.server, self.clock)
        self.clientEndpoint = MemoryServerEndpoint(self.server, self.clock)

    def flush(self) -> None:
        flushAll([self.endpoint, self.clientEndpoint])

    def client(self) -> GearmanClient:
        client = GearmanClient([self.clientEndpoint], reactor=self.clock)
        client.startService()
        self.addCleanup(client.stopService)
        return client

    def worker(self, **kwargs) -> GearmanWorker:
        return GearmanWorker([self.endpoint], reactor=self.clock, **kwargs)

    def test_interface(self) -> None:
        """
        L{GearmanWorker} provides L{IGearmanWorker}.
        """
        self.assertTrue(verifyObject(IGearmanWorker, self.worker()))

    def test_validation(self) -> None:
        """
        Bad settings are refused early.
        """
        self.assertRaises(ValueError, GearmanWorker, [], reactor=self.clock)
        self.assertRaises(ValueError, self.worker, concurrency=0)
        worker = self.worker()
        self.assertRaises(RuntimeError, worker.startService)
        self.assertRaises(ValueError, worker.register, "f", len, concurrency=0)

    def test_runsJobs(self) -> None:
        """
        Jobs submitted by a client are run and their results returned.
        """
        worker = self.worker()
        worker.register("reverse", lambda job: job.data[::-1])
        worker.startService()
        self.addCleanup(worker.stopService)
        client = self.client()
        results = [client.submitJob("reverse", b"abc%d" % i) for i in range(3)]
        self.flush()
        self.assertEqual([self.successResultOf(d) for d in results], [b"0cba", b"1cba", b"2cba"])

    def test_exceptionReachesClient(self) -> None:
        """
        A function's exception reaches the client as L{JobException}.
        """
        worker = self.worker()

        def broken(job):
            raise RuntimeError("no way")

        worker.register("broken", broken)
        worker.startService()
        self.addCleanup(worker.stopService)
        d = self.client().submitJob("broken", b"")
        self.flush()
        self.assertEqual(self.failureResultOf(d, JobException).value.data, b"no way")
        self.flushLoggedErrors(RuntimeError)

    def test_concurrency(self) -> None:
        """
        With concurrency N, N jobs run at once (each on its own connection);
        a function's own concurrency gives it connections of its own.
        """
        barrier: List[Deferred] = []

        def wait(job):
            d: Deferred = Deferred()
            barrier.append(d)
            return d

        worker = self.worker(concurrency=3)
        worker.register("wait", wait)
        worker.register("solo", wait, concurrency=1)
        worker.startService()
        self.addCleanup(worker.stopService)
        client = self.client()
        results = [client.submitJob("wait", b"%d" % i) for i in range(5)]
        solo = [client.submitJob("solo", b"s%d" % i) for i in range(2)]
        self.flush()
        self.assertEqual(len(worker.connections), 4)
        self.assertEqual(len(barrier), 4)
        self.assertEqual(sorted(j.function for j in worker.runningJobs()), [b"solo"] + [b"wait"] * 3)
        for d in list(barrier):
            d.callback(b"ok")
        self.flush()
        for d in list(barrier[4:]):
            d.callback(b"ok")
        self.flush()
        self.assertEqual([self.successResultOf(d) for d in results + solo], [b"ok"] * 7)

    def test_gracefulStop(self) -> None:
        """
        Stopping lets a running job finish and deliver its result before the
        worker disconnects, and takes no new job meanwhile.
        """
        pending: Deferred = Deferred()
        worker = self.worker()
        worker.register("slow", lambda job: pending)
        worker.startService()
        client = self.client()
        first = client.submitJob("slow", b"1")
        self.flush()
        stopped = worker.stopService()
        second = client.submitJob("slow", b"2")
        self.flush()
        self.assertNoResult(stopped)
        pending.callback(b"done")
        self.flush()
        self.assertEqual(self.successResultOf(first), b"done")
        self.successResultOf(stopped)
        self.assertNoResult(second)
        self.assertEqual(self.server.functions[b"slow"].workers, 0)

    def test_stopTimeout(self) -> None:
        """
        A job still running after the drain timeout goes back to the server
        when the worker disconnects.
        """
        worker = self.worker(drainTimeout=5)
        worker.register("stuck", lambda job: Deferred())
        worker.startService()
        client = self.client()
        d = client.submitJob("stuck", b"x")
        self.flush()
        stopped = worker.stopService()
        self.clock.advance(5)
        self.flush()
        self.successResultOf(stopped)
        self.assertNoResult(d)
        job = self.server.jobs[b"H:1"]
        self.assertIsNone(job.worker)
        self.assertEqual(job.retries, 1)

    def test_reconnect(self) -> None:
        """
        After the server goes away the worker reconnects and re-registers.
        """
        worker = self.worker()
        worker.register("f", lambda job: b"r")
        worker.startService()
        self.addCleanup(worker.stopService)
        self.flush()
        self.assertEqual(self.server.functions[b"f"].workers, 1)
        self.endpoint.disconnectAll()
        self.assertEqual(self.server.functions[b"f"].workers, 0)
        self.clock.advance(60)
        self.flush()
        self.assertEqual(self.server.functions[b"f"].workers, 1)
        d = self.client().submitJob("f", b"")
        self.flush()
        self.assertEqual(self.successResultOf(d), b"r")

    def test_threaded(self) -> None:
        """
        A threaded function runs in the worker's thread pool.
        """
        worker = self.worker()
        calls: list = []

        class SyncPool:
            def callInThreadWithCallback(self, onResult, f, *args, **kwargs):
                try:
                    result = f(*args, **kwargs)
                except BaseException as e:
                    onResult(False, e)
                else:
                    onResult(True, result)

        worker._threadPool = SyncPool()  # type: ignore[assignment]

        def blocking(job):
            calls.append(job.data)
            job.sendStatus(1, 1)
            return b"t"

        worker.register("t", blocking, threaded=True)
        self.assertTrue(worker.functions[b"t"].threaded)
        worker.startService()
        d = self.client().submitJob("t", b"x")
        self.flush()
        self.assertEqual(self.successResultOf(d), b"t")
        self.assertEqual(calls, [b"x"])
        worker._threadPool = None
        worker.stopService()
