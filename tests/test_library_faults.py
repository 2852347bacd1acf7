"""
The client and worker libraries in front of a job server that misbehaves:
the fault-injecting proxy of L{tests.faultserver} between them and a real
L{JobServer} in memory, driven by a Clock.
"""

from typing import List

from twisted.internet.defer import Deferred
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.client import GearmanClient
from gearman_tw.errors import JobTimeout, ServerUnavailable
from gearman_tw.protocol import PacketType
from gearman_tw.server.jobs import JobServer
from gearman_tw.testing import MemoryServerEndpoint
from gearman_tw.worker import GearmanWorker, Job
from tests.faultserver import TO_CLIENT, TO_SERVER, FaultEndpoint, countPackets
from tests.test_worker import ThreadClock


class Faults(SynchronousTestCase):
    """
    Two job servers in memory, each reachable through a fault proxy (for
    the side under test) and directly (for the other side).
    """

    def setUp(self) -> None:
        self.clock = ThreadClock()
        self.servers = [JobServer(self.clock, handlePrefix=b"S%d" % i) for i in range(2)]
        self.faulty = [FaultEndpoint(s, self.clock) for s in self.servers]
        self.direct = [MemoryServerEndpoint(s, self.clock) for s in self.servers]
        self.runs: List[bytes] = []
        self.pending: List[Deferred] = []

    def flush(self, rounds: int = 6) -> None:
        for _ in range(rounds):
            for endpoint in self.faulty + self.direct:
                endpoint.flush()

    def advance(self, seconds: float, step: float = 0.5) -> None:
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            self.flush()

    def client(self, endpoints, **kwargs) -> GearmanClient:
        client = GearmanClient(endpoints, reactor=self.clock, retryPolicy=lambda n: 1.0, **kwargs)
        client.startService()
        self.addCleanup(client.stopService)
        self.flush()
        return client

    def worker(self, endpoints, function=None, **kwargs) -> GearmanWorker:
        worker = GearmanWorker(endpoints, reactor=self.clock, retryPolicy=lambda n: 1.0, **kwargs)
        worker.register("f", function or self.echo)
        worker.startService()
        self.addCleanup(lambda: worker.running and worker.stopService())
        self.flush()
        return worker

    def echo(self, job) -> bytes:
        self.runs.append(job.data)
        return b"r:" + job.data

    def hold(self, job) -> Deferred:
        self.runs.append(job.data)
        d: Deferred = Deferred()
        self.pending.append(d)
        return d


class ClientFaultTests(Faults):
    """
    A client whose job servers misbehave.
    """

    def test_garbage(self) -> None:
        """
        Garbage from a server drops that connection, with the reason; its
        foreground jobs are submitted to the other server and each task
        gets its own result.
        """
        self.worker(self.direct, self.hold)
        client = self.client(self.faulty)
        tasks = [client.submit("f", b"%d" % i) for i in range(6)]
        self.flush()
        onFirst = [t for t in tasks if t.server == client.servers[0]]
        self.assertTrue(onFirst)
        with capturedLogs() as events:
            self.faulty[0].proxies[0].sendGarbage(b"\0RES\xff\xff\xff\xff\0\0\0\0")
            self.flush()
        self.assertIn("Bad data from the job server: {why}", [e["log_format"] for e in events])
        self.assertTrue(all(t.server == client.servers[1] for t in onFirst))
        for _ in range(20):
            while self.pending:
                self.pending.pop(0).callback(None)
                self.flush()
        for task in tasks:
            self.assertEqual(self.successResultOf(task.result), b"", task)
        self.assertEqual(sorted(set(self.runs)), sorted(b"%d" % i for i in range(6)))

    def test_pausedServer(self) -> None:
        """
        A server that stops answering (paused) is found by the heartbeat;
        its jobs complete on the other server.
        """
        self.worker(self.direct)
        client = self.client(self.faulty, heartbeat=5, heartbeatTimeout=2)
        self.faulty[0].pause()
        tasks = [client.submit("f", b"%d" % i) for i in range(4)]
        self.flush()
        self.advance(8)
        for index, task in enumerate(tasks):
            self.assertEqual(self.successResultOf(task.result), b"r:%d" % (index,))
        self.assertEqual(client.connectedServers(), [client.servers[1]])
        self.assertIn("did not answer", client._servers[0].reconnector.lastError)

    def test_hungFromTheStart(self) -> None:
        """
        A server that accepts connections and never answers is never used:
        submissions wait for it, then fail naming why.
        """
        self.faulty[0].hang = True
        client = self.client(self.faulty[:1], connectTimeout=5, heartbeatTimeout=2)
        self.assertEqual(client.connectedServers(), [])
        task = client.submit("f", b"x")
        self.advance(5)
        error = self.failureResultOf(task.result, ServerUnavailable).value
        self.assertIn("did not answer the handshake within 2 s", str(error))
        self.assertEqual(countPackets(self.faulty[0].proxies[0].fromClient, PacketType.SUBMIT_JOB), 0)

    def test_delayedCreated(self) -> None:
        """
        A JOB_CREATED delayed past the task's timeout: the task fails with
        L{JobTimeout}, its whenCreated() still gets the handle, and the jobs
        submitted after it get their own results.
        """
        self.worker(self.direct)
        client = self.client(self.faulty[:1])
        self.faulty[0].proxies[0].delay(3, TO_CLIENT, PacketType.JOB_CREATED)
        late = client.submit("f", b"late", timeout=1)
        created = late.whenCreated()
        others = [client.submit("f", b"%d" % i) for i in range(3)]
        self.advance(1)
        self.failureResultOf(late.result, JobTimeout)
        self.advance(3)
        self.assertEqual(self.successResultOf(created), b"S0:1")
        for index, task in enumerate(others):
            self.assertEqual(self.successResultOf(task.result), b"r:%d" % (index,))

    def test_slowServer(self) -> None:
        """
        Every packet of a server delayed by more than the heartbeat: the
        connection is dropped only if an ECHO goes unanswered for longer
        than heartbeatTimeout, and jobs still complete.
        """
        self.worker(self.direct)
        client = self.client(self.faulty[:1], heartbeat=2, heartbeatTimeout=5)
        self.faulty[0].proxies[0].delay(1, TO_SERVER)
        tasks = [client.submit("f", b"%d" % i) for i in range(3)]
        self.advance(10)
        for index, task in enumerate(tasks):
            self.assertEqual(self.successResultOf(task.result), b"r:%d" % (index,))
        self.assertEqual(len(self.faulty[0].proxies), 1)


class WorkerFaultTests(Faults):
    """
    A worker whose job servers misbehave.
    """

    def test_assignDuringStop(self) -> None:
        """
        A JOB_ASSIGN held back until stopService() was called: the job runs
        once, the stop waits for it, and the client gets its result.
        """
        self.faulty[0].configure(lambda proxy: proxy.hold(PacketType.JOB_ASSIGN_UNIQ))
        worker = self.worker(self.faulty[:1], self.hold, drainTimeout=60)
        client = self.client(self.direct[:1])
        task = client.submit("f", b"x")
        self.flush()
        proxy = self.faulty[0].proxies[0]
        self.assertEqual(len(proxy.heldPackets()), 1)
        grabs = countPackets(proxy.fromClient, PacketType.GRAB_JOB_UNIQ)
        stopped = worker.stopService()
        self.flush()
        self.assertNoResult(stopped)
        proxy.release()
        self.flush()
        self.assertEqual(self.runs, [b"x"])
        self.assertNoResult(stopped)
        self.pending[0].callback(b"done")
        self.flush()
        self.successResultOf(stopped)
        self.assertEqual(self.successResultOf(task.result), b"done")
        self.assertEqual(countPackets(proxy.fromClient, PacketType.GRAB_JOB_UNIQ), grabs)

    def test_noJobDuringStop(self) -> None:
        """
        A NO_JOB held back until after stopService(): the stop waits for
        it, then ends without PRE_SLEEP or another GRAB.
        """
        self.faulty[0].configure(lambda proxy: proxy.hold(PacketType.NO_JOB))
        worker = self.worker(self.faulty[:1])
        stopped = worker.stopService()
        self.flush()
        self.assertNoResult(stopped)
        proxy = self.faulty[0].proxies[0]
        proxy.release()
        self.flush()
        self.successResultOf(stopped)
        self.assertEqual(countPackets(proxy.fromClient, PacketType.PRE_SLEEP), 0)
        self.assertEqual(countPackets(proxy.fromClient, PacketType.GRAB_JOB_UNIQ), 1)

    def test_pausedServerFreesSlot(self) -> None:
        """
        With one slot over two servers, one of them paused from the start:
        its connection's unanswered GRAB holds the slot only until the
        handshake times out, then jobs of the other server run.
        """
        self.faulty[0].hang = True
        self.worker(self.faulty, concurrency=1, heartbeatTimeout=2)
        client = self.client(self.direct[1:])
        tasks = [client.submit("f", b"%d" % i) for i in range(3)]
        self.flush()
        self.advance(4)
        for index, task in enumerate(tasks):
            self.assertEqual(self.successResultOf(task.result), b"r:%d" % (index,))

    def test_garbageMidJob(self) -> None:
        """
        Garbage to a worker mid-job drops the connection: the late result is
        not sent, the server runs the job again (the one duplicate the
        protocol forces), and the client gets one result.
        """
        worker = self.worker(self.faulty[:1], self.hold)
        client = self.client(self.direct[:1])
        task = client.submit("f", b"x")
        self.flush()
        first = self.faulty[0].proxies[0]
        first.sendGarbage(b"\0RES\0\0\0\xff\0\0\0\0")
        self.flush()
        self.pending.pop(0).callback(b"lost")
        self.advance(2)
        self.assertEqual(countPackets(first.fromClient, PacketType.WORK_COMPLETE), 0)
        self.assertEqual(self.runs, [b"x", b"x"])
        self.pending.pop(0).callback(b"second")
        self.flush()
        self.assertEqual(self.successResultOf(task.result), b"second")
        self.assertEqual(len(worker.connections), 1)

    def test_lostWakeUp(self) -> None:
        """
        A sleeping worker whose NOOP never comes (dropped) asks for work
        after a heartbeat's silence, and the job runs.
        """
        self.faulty[0].configure(lambda proxy: proxy.drop(PacketType.NOOP))
        self.worker(self.faulty[:1], heartbeat=5, heartbeatTimeout=2)
        client = self.client(self.direct[:1])
        task = client.submit("f", b"x")
        self.flush()
        self.assertNoResult(task.result)
        self.advance(6)
        self.assertEqual(self.successResultOf(task.result), b"r:x")
        self.assertEqual(len(self.faulty[0].proxies), 1)


class FullSizeTests(SynchronousTestCase):
    """
    A job as large as the server accepts, with a result as large, goes
    through the server, the client and the worker.
    """

    def test_fullSizeJob(self) -> None:
        """
        With the server's packet limit at 64 KiB, a submission of exactly
        that size is assigned to a worker whose same-size result reaches
        the client: the handle in front of the data does not make the
        server drop the worker (which requeued the job forever).
        """
        from gearman_tw.server.factory import GearmanServerFactory

        limit = 64 * 1024
        clock = ThreadClock()
        server = JobServer(clock, handlePrefix=b"S")
        endpoints = [MemoryServerEndpoint(server, clock) for _ in range(2)]
        for endpoint in endpoints:
            endpoint.factory = GearmanServerFactory(server, maxPacketSize=limit)
        worker = GearmanWorker(endpoints[:1], reactor=clock)
        runs: List[bytes] = []

        def function(job: Job) -> bytes:
            runs.append(job.handle)
            return job.data.upper()

        worker.register("f", function)
        worker.startService()
        self.addCleanup(worker.stopService)
        client = GearmanClient(endpoints[1:], reactor=clock, maxPacketSize=limit)
        client.startService()
        self.addCleanup(client.stopService)
        data = b"x" * (limit - len(b"f") - 2)
        task = client.submit("f", data)
        for _ in range(10):
            for endpoint in endpoints:
                endpoint.flush()
        self.assertEqual(self.successResultOf(task.result), data.upper())
        self.assertEqual(runs, [b"S:1"])
        self.assertRaises(ValueError, client.submit, "f", data + b"x")
