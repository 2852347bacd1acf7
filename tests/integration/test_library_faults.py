"""
The client and worker libraries against real job servers (ours and C
gearmand) with the fault-injecting proxy of L{tests.faultserver} in between,
over loopback TCP.
"""

from typing import Any, Generator, List

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.trial.unittest import TestCase

from gearman_tw.client import GearmanClient
from gearman_tw.protocol import PacketType
from gearman_tw.worker import GearmanWorker, Job
from tests.faultserver import countPackets, listenFaultProxy
from tests.integration.servers import startGearmand, startOurs
from tests.mixins import TestCaseMixin


def sleep(seconds: float) -> Deferred:
    d: Deferred = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


@inlineCallbacks
def until(predicate, timeout: float = 10.0):
    """
    Wait until C{predicate()} is true, polling, for at most C{timeout}
    seconds; fail the test otherwise.
    """
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        yield sleep(0.05)
    raise AssertionError("condition not met in %g s" % (timeout,))


class LibraryFaultsMixin(TestCaseMixin):
    """
    Fault scenarios against the job server L{start} starts.
    """

    timeout = 60

    def start(self):
        raise NotImplementedError()

    @inlineCallbacks
    def proxy(self):
        server = self.start()
        proxy = yield listenFaultProxy(reactor, "127.0.0.1", server.port)
        self.addCleanup(proxy.stop)
        return server, proxy

    def client(self, *addresses: str, **kwargs) -> GearmanClient:
        client = GearmanClient(list(addresses), **kwargs)
        client.startService()
        self.addCleanup(client.stopService)
        return client

    def worker(self, *addresses: str, function=None, **kwargs) -> GearmanWorker:
        worker = GearmanWorker(list(addresses), **kwargs)
        worker.register("f", function or (lambda job: b"r:" + job.data))
        worker.startService()
        self.addCleanup(lambda: worker.running and worker.stopService())
        return worker

    @inlineCallbacks
    def test_assignDuringStop(self) -> Generator[Deferred[Any], Any, None]:
        """
        A JOB_ASSIGN held by the proxy until the worker's stop began: the
        job runs once, the stop waits for it, the client gets its result.
        """
        server, proxy = yield self.proxy()
        proxy.configure(lambda p: p.hold(PacketType.JOB_ASSIGN_UNIQ))
        runs: List[bytes] = []
        pending: List[Deferred] = []

        def hold(job: Job) -> Deferred:
            runs.append(job.data)
            d: Deferred = Deferred()
            pending.append(d)
            return d

        worker = self.worker("127.0.0.1:%d" % (proxy.port,), function=hold, drainTimeout=30)
        yield worker.whenRegistered()
        client = self.client("127.0.0.1:%d" % (server.port,))
        task = client.submit("f", b"x", timeout=30)
        yield until(lambda: any(p.heldPackets() for p in proxy.proxies))
        stopped = worker.stopService()
        yield sleep(0.2)
        self.assertFalse(stopped.called)
        for p in proxy.proxies:
            p.release()
        yield until(lambda: pending)
        self.assertFalse(stopped.called)
        pending[0].callback(b"done")
        yield stopped
        self.assertEqual((yield task.result), b"done")
        self.assertEqual(runs, [b"x"])

    @inlineCallbacks
    def test_pausedServerOfTwo(self):
        """
        A worker with one slot over two servers, one paused behind the
        proxy: the heartbeat frees the slot and the other server's jobs run.
        """
        first, proxy = yield self.proxy()
        second = self.start()
        worker = self.worker(
            "127.0.0.1:%d" % (proxy.port,),
            "127.0.0.1:%d" % (second.port,),
            concurrency=1,
            heartbeat=0.5,
            heartbeatTimeout=0.5,
        )
        yield worker.whenRegistered()
        proxy.pause()
        client = self.client("127.0.0.1:%d" % (second.port,))
        results = yield gatherResults([client.submitJob("f", b"%d" % i, timeout=30) for i in range(5)])
        self.assertEqual(results, [b"r:%d" % i for i in range(5)])

    @inlineCallbacks
    def test_clientGarbage(self):
        """
        Garbage from one of two servers drops that connection; the client's
        jobs complete on the other, each with its own result.
        """
        first, proxy = yield self.proxy()
        second = self.start()
        for server in (first, second):
            self.worker("127.0.0.1:%d" % (server.port,))
        client = self.client("127.0.0.1:%d" % (proxy.port,), "127.0.0.1:%d" % (second.port,))
        yield until(lambda: len(client.connectedServers()) == 2)
        proxy.configure(lambda p: p.hold(PacketType.WORK_COMPLETE))
        tasks = [client.submit("f", b"%d" % i, timeout=30) for i in range(6)]
        yield until(lambda: any(p.heldPackets() for p in proxy.proxies))
        for p in proxy.proxies:
            p.sendGarbage(b"\0RES\xff\xff\xff\xff\0\0\0\0")
        results = yield gatherResults([t.result for t in tasks])
        self.assertEqual(results, [b"r:%d" % i for i in range(6)])
        self.assertGreater(sum(countPackets(p.fromClient, PacketType.SUBMIT_JOB) for p in proxy.proxies), 0)


class OursLibraryFaultsTests(LibraryFaultsMixin, TestCase):
    def start(self):
        return startOurs(self)


class GearmandLibraryFaultsTests(LibraryFaultsMixin, TestCase):
    def start(self):
        return startGearmand(self)
