"""
Tests for L{gearman_tw.worker}.
"""

from typing import Dict, List, Tuple, Type

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from gearman_tw.client import GearmanClient
from gearman_tw.errors import JobException, JobFailed, ServerUnavailable
from gearman_tw.interfaces import IGearmanWorker
from gearman_tw.protocol import REQ, PacketType, encode, parseAll
from gearman_tw.server.jobs import JobServer
from gearman_tw.testing import MemoryServerEndpoint, flushAll
from gearman_tw.worker import Function, GearmanWorker, GearmanWorkerProtocol, Job


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
        seen: List[bytes] = []

        def function(job: Job) -> str:
            seen.append(job.unique)
            return "done"

        protocol = self.connect(Function(b"f", function))
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
        protocol = self.connect(Function(b"f", lambda job: 42))  # type: ignore[arg-type,return-value]
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
        protocol.connectionLost(Failure(ConnectionDone()))
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

        def wait(job: Job) -> Deferred:
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


class StopTests(SynchronousTestCase):
    """
    Stopping a worker at every moment of a job's life.
    """

    def setUp(self) -> None:
        self.clock = ThreadClock()
        self.worker = GearmanWorker(["127.0.0.1"], reactor=self.clock, clientId="w1")
        self.transport = StringTransport()

    def connect(self, function) -> GearmanWorkerProtocol:
        self.worker.register("f", function)
        self.worker.running = True
        group = self.worker._shared
        assert group is not None
        protocol = GearmanWorkerProtocol(self.worker, group.functions, group.slots[0], 0, group)
        protocol.makeConnection(self.transport)
        protocol.dataReceived(response(PacketType.ECHO_RES, b""))
        self.transport.clear()
        return protocol

    def sent(self) -> list:
        packets = parseAll(self.transport.value(), magic=REQ)
        self.transport.clear()
        return [(ptype, args) for ptype, args, _ in packets]

    def test_lateAssignment(self) -> None:
        """
        A JOB_ASSIGN answering a GRAB sent before stopService() was called
        runs the job, and the stop waits for it to end and deliver its
        result; nothing more is asked for.
        """
        pending: Deferred = Deferred()
        protocol = self.connect(lambda job: pending)
        stopped = self.worker.stopService()
        protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
        self.assertIsNotNone(protocol.job)
        self.clock.advance(1)
        self.assertNoResult(stopped)
        pending.callback(b"done")
        self.assertEqual(self.sent(), [(PacketType.WORK_COMPLETE, [b"H:1", b"done"])])
        self.successResultOf(stopped)

    def test_lateNoJob(self) -> None:
        """
        A stop waits for the answer to an outstanding GRAB; NO_JOB ends the
        wait without a PRE_SLEEP.
        """
        protocol = self.connect(lambda job: b"r")
        stopped = self.worker.stopService()
        self.assertNoResult(stopped)
        protocol.dataReceived(response(PacketType.NO_JOB))
        self.successResultOf(stopped)
        self.assertEqual(self.sent(), [])

    def test_sleepingStops(self) -> None:
        """
        A sleeping connection does not hold a stop up, and a NOOP after the
        stop began asks for nothing.
        """
        protocol = self.connect(lambda job: b"r")
        protocol.dataReceived(response(PacketType.NO_JOB))
        self.assertEqual(self.sent(), [(PacketType.PRE_SLEEP, [])])
        stopped = self.worker.stopService()
        self.successResultOf(stopped)
        protocol.dataReceived(response(PacketType.NOOP))
        self.assertEqual(self.sent(), [])

    def test_raiseJobFailed(self) -> None:
        """
        C{raise JobFailed()}, as the docs show it, sends WORK_FAIL.
        """

        def give_up(job):
            raise JobFailed()

        protocol = self.connect(give_up)
        protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
        self.assertEqual(self.sent()[0], (PacketType.WORK_FAIL, [b"H:1"]))

    def test_sendException(self) -> None:
        """
        job.sendException(data) ends the job with WORK_EXCEPTION carrying
        the data as it is; what the function returns is then ignored.
        """

        def binary(job):
            job.sendException(b"\x00\xffboom")
            job.sendData(b"ignored")
            return b"ignored"

        protocol = self.connect(binary)
        protocol.dataReceived(response(PacketType.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
        self.assertEqual(
            self.sent(),
            [(PacketType.WORK_EXCEPTION, [b"H:1", b"\x00\xffboom"]), (PacketType.GRAB_JOB_UNIQ, [])],
        )


class ThreadedStopTests(SynchronousTestCase):
    """
    Stopping a worker whose threaded job outlives the drain timeout.
    """

    def test_stopDoesNotFreeze(self) -> None:
        """
        stopService() returns, and its Deferred fires, without joining a
        thread still running a job: the reactor is not frozen for the rest
        of the job.
        """
        import threading
        import time

        clock = ThreadClock()
        server = JobServer(clock, handlePrefix=b"H")
        endpoint = MemoryServerEndpoint(server, clock)
        release = threading.Event()
        started = threading.Event()
        self.addCleanup(release.set)

        def slow(job):
            started.set()
            release.wait(10)
            return b"late"

        worker = GearmanWorker([endpoint], reactor=clock, drainTimeout=0.5)
        worker.register("slow", slow, threaded=True)
        worker.startService()
        clientEndpoint = MemoryServerEndpoint(server, clock)
        client = GearmanClient([clientEndpoint], reactor=clock)
        client.startService()
        self.addCleanup(client.stopService)
        endpoints = [endpoint, clientEndpoint]
        client.submit("slow", b"x")
        flushAll(endpoints)
        self.assertTrue(started.wait(5))
        begin = time.monotonic()
        stopped = worker.stopService()
        clock.advance(0.5)
        flushAll(endpoints)
        self.successResultOf(stopped)
        self.assertLess(time.monotonic() - begin, 1.0)
        for thread in threading.enumerate():
            if thread.name.startswith("gearman-worker"):
                self.assertTrue(thread.daemon, thread)


class ServiceBehaviourTests(SynchronousTestCase):
    """
    L{GearmanWorker} over job servers in memory: connections, slots,
    registration.
    """

    def setUp(self) -> None:
        self.clock = ThreadClock()
        self.servers = [JobServer(self.clock, handlePrefix=b"S%d" % i) for i in range(2)]
        self.endpoints = [MemoryServerEndpoint(s, self.clock) for s in self.servers]
        self.clientEndpoints = [MemoryServerEndpoint(s, self.clock) for s in self.servers]

    def flush(self) -> None:
        flushAll(self.endpoints + self.clientEndpoints)

    def client(self, index: int = 0) -> GearmanClient:
        client = GearmanClient([self.clientEndpoints[index]], reactor=self.clock)
        client.startService()
        self.addCleanup(client.stopService)
        return client

    def worker(self, count: int = 1, **kwargs) -> GearmanWorker:
        worker = GearmanWorker(self.endpoints[:count], reactor=self.clock, **kwargs)
        self.addCleanup(lambda: worker.running and worker.stopService())
        return worker

    def test_reconnectsDoNotGrow(self) -> None:
        """
        GearmanWorker.connections holds the open connections only, however
        often they were lost and made again.
        """
        worker = self.worker(concurrency=2)
        worker.register("f", lambda job: b"r")
        worker.startService()
        self.flush()
        for _ in range(5):
            self.assertEqual(len(worker.connections), 2)
            self.endpoints[0].disconnectAll()
            self.assertEqual(worker.connections, [])
            self.clock.advance(60)
            self.flush()
        self.assertEqual(len(worker.connections), 2)
        self.assertTrue(all(c.connected for c in worker.connections))

    def test_concurrencyIsTotal(self) -> None:
        """
        concurrency=2 over two servers runs at most two jobs at once in all;
        with perServer=True, two per server.
        """
        for perServer, limit in ((False, 2), (True, 4)):
            self.setUp()
            pending: List[Deferred] = []

            def hold(job: Job) -> Deferred:
                d: Deferred = Deferred()
                pending.append(d)  # noqa: B023 (hold is called only within this iteration)
                return d

            worker = self.worker(2, concurrency=2, perServer=perServer)
            worker.register("f", hold)
            worker.startService()
            clients = [self.client(0), self.client(1)]
            results = [clients[i % 2].submitJob("f", b"%d" % i) for i in range(8)]
            self.flush()
            self.assertEqual(len(worker.connections), 4)
            self.assertEqual(len(worker.runningJobs()), limit, perServer)
            peak = limit
            for _ in range(20):
                if not pending:
                    break
                pending.pop(0).callback(b"ok")
                self.flush()
                peak = max(peak, len(worker.runningJobs()))
            self.assertEqual(peak, limit)
            self.assertEqual([self.successResultOf(d) for d in results], [b"ok"] * 8)
            worker.stopService()
            self.flush()

    def test_bothServersServed(self) -> None:
        """
        With one slot over two servers, jobs queued on either are run: a
        connection that waited for the slot gets it in turn.
        """
        worker = self.worker(2, concurrency=1)
        ran: List[bytes] = []

        def function(job: Job) -> bytes:
            ran.append(job.data)
            return b"ok"

        worker.register("f", function)
        worker.startService()
        results = [self.client(i % 2).submitJob("f", b"%d" % i) for i in range(6)]
        self.flush()
        self.assertEqual([self.successResultOf(d) for d in results], [b"ok"] * 6)
        self.assertEqual(sorted(ran), [b"%d" % i for i in range(6)])

    def test_registerWhileRunning(self) -> None:
        """
        A function registered while running is announced on every
        connection at once and its jobs run; one unregistered is withdrawn
        (CANT_DO) and its queued jobs stay queued.
        """
        worker = self.worker()
        worker.register("f", lambda job: b"f")
        worker.startService()
        self.flush()
        client = self.client()
        worker.register("g", lambda job: b"g")
        worker.register("h", lambda job: b"h", concurrency=1)
        self.flush()
        self.assertEqual(self.servers[0].functions[b"g"].workers, 1)
        g = client.submitJob("g", b"")
        h = client.submitJob("h", b"")
        self.flush()
        self.assertEqual(self.successResultOf(g), b"g")
        self.assertEqual(self.successResultOf(h), b"h")
        gone = worker.unregister("g")
        self.successResultOf(gone)
        self.flush()
        self.assertEqual(self.servers[0].functions[b"g"].workers, 0)
        later = client.submitJob("g", b"")
        self.flush()
        self.assertNoResult(later)
        self.assertRaises(KeyError, worker.unregister, "g")
        self.successResultOf(worker.unregister("h"))
        self.flush()
        self.assertEqual(self.servers[0].functions[b"h"].workers, 0)

    def test_unregisterWaitsForRunningJob(self) -> None:
        """
        unregister() fires once the function's running job has ended; the
        job still delivers its result.
        """
        pending: Deferred = Deferred()
        worker = self.worker()
        worker.register("f", lambda job: pending)
        worker.startService()
        d = self.client().submitJob("f", b"")
        self.flush()
        gone = worker.unregister("f")
        self.assertNoResult(gone)
        pending.callback(b"r")
        self.flush()
        self.successResultOf(gone)
        self.assertEqual(self.successResultOf(d), b"r")

    def test_whenRegistered(self) -> None:
        """
        whenRegistered() fires once every reachable server has confirmed
        the functions: a refused server does not hold it up, one that has
        not answered yet does.
        """
        self.endpoints[1].refuse = True
        worker = self.worker(2)
        worker.register("f", lambda job: b"r")
        worker.startService()
        registered = worker.whenRegistered()
        self.flush()
        self.successResultOf(registered)
        self.assertEqual(self.servers[0].functions[b"f"].workers, 1)
        worker.register("g", lambda job: b"g")
        again = worker.whenRegistered()
        self.assertNoResult(again)
        self.flush()
        self.successResultOf(again)

    def test_registerChecks(self) -> None:
        """
        Bad registrations and settings raise at once.
        """
        worker = self.worker()
        self.assertRaises(TypeError, worker.register, 5, len)
        self.assertRaises(ValueError, worker.register, "", len)
        self.assertRaises(ValueError, worker.register, "a\0b", len)
        self.assertRaises(TypeError, worker.register, "f", "not callable")
        self.assertRaises(TypeError, worker.register, "f", len, timeout="5")
        self.assertRaises(ValueError, worker.register, "f", len, timeout=-1)
        self.assertRaises(TypeError, worker.register, "f", len, concurrency=1.5)
        self.assertRaises(TypeError, GearmanWorker, "127.0.0.1", reactor=self.clock)
        self.assertRaises(TypeError, GearmanWorker, ["127.0.0.1"], reactor=self.clock, concurrency="2")
        self.assertRaises(ValueError, GearmanWorker, ["127.0.0.1"], reactor=self.clock, drainTimeout=-1)
        self.assertEqual(worker.functions, {})


class AdversarialWorkerTests(SynchronousTestCase):
    """
    Cases an adversarial review found: each failed before its fix.
    """

    def setUp(self) -> None:
        self.clock = ThreadClock()
        self.server = JobServer(self.clock, handlePrefix=b"S")
        self.endpoint = MemoryServerEndpoint(self.server, self.clock)
        self.clientEndpoint = MemoryServerEndpoint(self.server, self.clock)
        self.pending: List[Deferred] = []
        self.runs: List[bytes] = []

    def flush(self) -> None:
        flushAll([self.endpoint, self.clientEndpoint])

    def hold(self, job) -> Deferred:
        self.runs.append(job.data)
        d: Deferred = Deferred()
        self.pending.append(d)
        return d

    def start(self, **kwargs) -> GearmanWorker:
        worker = GearmanWorker([self.endpoint], reactor=self.clock, retryPolicy=lambda n: 0.5, **kwargs)
        self.addCleanup(lambda: worker.running and worker.stopService())
        return worker

    def client(self) -> GearmanClient:
        client = GearmanClient([self.clientEndpoint], reactor=self.clock)
        client.startService()
        self.addCleanup(client.stopService)
        return client

    def test_reregisterWhileRunning(self) -> None:
        """
        unregister() then register() of a name while a job of it runs keeps
        the function served: the withdrawal waiting for the job is dropped.
        """
        worker = self.start()
        worker.register("f", self.hold)
        worker.startService()
        client = self.client()
        first = client.submitJob("f", b"one")
        self.flush()
        worker.unregister("f")
        worker.register("f", lambda job: b"fast:" + job.data)
        self.flush()
        self.pending[0].callback(b"done-one")
        self.flush()
        self.assertEqual(self.successResultOf(first), b"done-one")
        second = client.submitJob("f", b"two")
        self.flush()
        self.assertEqual(self.successResultOf(second), b"fast:two")
        self.assertEqual(self.server.functions[b"f"].workers, 1)

    def test_reregisterOtherConcurrency(self) -> None:
        """
        Registering a name again with another concurrency while its
        JOB_ASSIGN is on its way runs the job (with the new function), never
        fails it.
        """
        worker = self.start()
        worker.register("f", lambda job: b"old:" + job.data)
        worker.startService()
        self.flush()
        client = self.client()
        task = client.submit("f", b"x")
        for pump in self.clientEndpoint.pumps:
            pump.flush()
        workerPump = self.endpoint.pumps[0]
        workerPump.pump()
        workerPump.pump()
        self.assertTrue(worker.connections[0].grabbing)
        worker.register("f", lambda job: b"new:" + job.data, concurrency=2)
        self.flush()
        self.assertEqual(self.successResultOf(task.result), b"new:x")

    def test_unregisterOwnConcurrency(self) -> None:
        """
        Unregistering a function with connections of its own while its job
        runs: unregister() and stopService() wait for the job, which runs
        once and delivers its result.
        """
        worker = self.start(drainTimeout=60)
        worker.register("slow", self.hold, concurrency=1)
        worker.register("other", lambda job: b"")
        worker.startService()
        task = self.client().submit("slow", b"x")
        self.flush()
        gone = worker.unregister("slow")
        self.assertNoResult(gone)
        self.assertEqual(len(worker.runningJobs()), 1)
        stopped = worker.stopService()
        self.clock.advance(1)
        self.flush()
        self.assertNoResult(stopped)
        self.pending[0].callback(b"result")
        self.flush()
        self.successResultOf(gone)
        self.successResultOf(stopped)
        self.assertEqual(self.successResultOf(task.result), b"result")
        self.assertEqual(self.runs, [b"x"])

    def test_whenRegisteredAtStop(self) -> None:
        """
        A whenRegistered() Deferred still waiting when the worker stops
        fails with L{ServerUnavailable}, never hangs.
        """
        self.endpoint.refuse = True
        worker = GearmanWorker([self.endpoint], reactor=self.clock)
        worker.register("f", lambda job: b"")
        worker.startService()
        d = worker.whenRegistered()
        self.assertNoResult(d)
        worker.stopService()
        self.failureResultOf(d, ServerUnavailable)

    def test_lostConnectionKeepsSlot(self) -> None:
        """
        With concurrency=1, a job whose connection is lost keeps its slot
        until its function ends: no second job starts meanwhile, and a stop
        waits for it.
        """
        worker = self.start(concurrency=1, drainTimeout=60)
        worker.register("f", self.hold)
        worker.startService()
        client = self.client()
        client.submit("f", b"1")
        client.submit("f", b"2")
        self.flush()
        for pump in self.endpoint.pumps:
            pump.client.transport.loseConnection()
        self.flush()
        self.clock.advance(3)
        self.flush()
        self.assertEqual(sum(not d.called for d in self.pending), 1)
        self.assertEqual(len(worker.runningJobs()), 1)
        stopped = worker.stopService()
        self.clock.advance(1)
        self.assertNoResult(stopped)
        self.pending[0].callback(b"late")
        self.flush()
        self.successResultOf(stopped)

    def test_restartDuringStop(self) -> None:
        """
        startService() while a stop is still under way starts the worker
        again once the stop is done, with one connection per slot.
        """
        worker = self.start()
        worker.register("f", lambda job: b"ok")
        worker.startService()
        self.flush()
        for _ in range(5):
            worker.stopService()
            worker.startService()
            self.flush()
            self.clock.advance(1)
            self.flush()
        self.assertTrue(worker.running)
        self.assertEqual(len(worker.connections), 1)
        self.assertEqual(self.server.functions[b"f"].workers, 1)
        d = self.client().submitJob("f", b"")
        self.flush()
        self.assertEqual(self.successResultOf(d), b"ok")

    def test_badSettings(self) -> None:
        """
        Settings that would leave a worker unable to register raise at
        once.
        """
        cases: List[Tuple[Dict[str, object], Type[Exception]]] = [
            ({"heartbeatTimeout": 0}, ValueError),
            ({"heartbeat": 0}, ValueError),
            ({"clientId": "x" * 10000}, ValueError),
            ({"perServer": "no"}, TypeError),
        ]
        for kwargs, error in cases:
            self.assertRaises(error, GearmanWorker, ["127.0.0.1"], reactor=self.clock, **kwargs)
        self.assertRaises(TypeError, GearmanWorker, [5], reactor=self.clock)
        worker = GearmanWorker(["127.0.0.1"], reactor=self.clock)
        self.assertRaises(ValueError, worker.register, "f", len, timeout=0)
        self.assertRaises(ValueError, worker.register, "\ud800", len)

    def test_replaceFunction(self) -> None:
        """
        Registering a name again while running replaces its function
        without announcing it twice; changing its timeout while one of its
        jobs runs waits for the job (a CANT_DO would requeue it).
        """
        worker = self.start()
        worker.register("f", self.hold)
        worker.startService()
        self.flush()
        worker.register("f", self.hold)
        self.flush()
        self.assertEqual(self.server.functions[b"f"].workers, 1)
        task = self.client().submit("f", b"x")
        self.flush()
        worker.register("f", lambda job: b"timed", timeout=5)
        self.flush()
        self.pending[0].callback(b"first")
        self.flush()
        self.assertEqual(self.successResultOf(task.result), b"first")
        self.assertEqual(self.runs, [b"x"])
        self.assertEqual(self.server.functions[b"f"].workers, 1)
        again = self.client().submitJob("f", b"y")
        self.flush()
        self.assertEqual(self.successResultOf(again), b"timed")

    def test_reregisterCountsOldJobs(self) -> None:
        """
        A function with its own concurrency of 1, unregistered and
        registered again while its job runs (or moved into it from the
        shared pool): the old job counts against the new limit until it
        ends.
        """
        running: List[int] = [0]
        peak: List[int] = [0]

        def counted(job):
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            d = self.hold(job)
            d.addBoth(lambda r: running.__setitem__(0, running[0] - 1) or r)
            return d

        worker = self.start()
        worker.register("c", counted, concurrency=1)
        worker.startService()
        client = self.client()
        first = client.submitJob("c", b"1")
        self.flush()
        worker.unregister("c")
        worker.register("c", counted, concurrency=1)
        second = client.submitJob("c", b"2")
        self.flush()
        self.assertEqual(peak[0], 1)
        self.pending.pop(0).callback(b"one")
        self.flush()
        self.assertEqual(self.successResultOf(first), b"one")
        self.assertEqual(peak[0], 1)
        self.pending.pop(0).callback(b"two")
        self.flush()
        self.assertEqual(self.successResultOf(second), b"two")

    def test_waitersAtStop(self) -> None:
        """
        whenRegistered() asked during a stop's drain or of a stopped worker
        fails at once; unregister()'s Deferred still fires when the job it
        waits for ends after the stop gave up on it.
        """
        worker = self.start(drainTimeout=1)
        worker.register("f", self.hold)
        worker.startService()
        self.client().submitJob("f", b"x")
        self.flush()
        gone = worker.unregister("f")
        stopped = worker.stopService()
        self.failureResultOf(worker.whenRegistered(), ServerUnavailable)
        self.clock.advance(1)
        self.flush()
        self.successResultOf(stopped)
        self.failureResultOf(worker.whenRegistered(), ServerUnavailable)
        self.assertNoResult(gone)
        self.pending[0].callback(b"late")
        self.successResultOf(gone)
