# -*- test-case-name: tests.integration.test_scaling -*-
"""
Scaling out (docs/scaling.rst): three of our servers, one of our workers
connected to all three, and clients over all three.  Ten thousand jobs
spread over the pool each run exactly once; jobs with the same unique key
coalesce across the pool; and with one server killed (C{kill -9}, no
persistent queue) every foreground job still completes, running twice only
if the killed server had handed it to a worker and its result was lost.
"""

from __future__ import annotations

import signal
import time
from collections import Counter, defaultdict
from typing import Any, Callable, Dict, Generator, List, Set

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.trial.unittest import TestCase

from gearman_tw.client import GearmanClient
from gearman_tw.worker import GearmanWorker, Job
from tests.integration.servers import ServerProcess, startOurs

log = Logger()

#: Each server's job handle prefix: a handle names its server.
PREFIXES = (b"A", b"B", b"C")

#: Jobs in the spreading test.
JOBS = 10000


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)  # type: ignore[arg-type]


@inlineCallbacks
def waitUntil(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> Generator[Any, Any, bool]:
    """
    Poll C{predicate} on the reactor, at most C{timeout} seconds; whether
    it came to hold.
    """
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 1):
        if predicate():
            return True
        if time.monotonic() >= deadline:
            break
        yield sleep(step)
    return predicate()


@inlineCallbacks
def waitForStatus(admin: Any, expected: bytes, timeout: float) -> Generator[Any, Any, bytes]:
    """
    Ask a server's C{status} until it answers C{expected}, at most
    C{timeout} seconds; its last answer.
    """
    answers: List[bytes] = []

    def settled() -> bool:
        answers.append(admin.admin(b"status\n"))
        return answers[-1] == expected

    yield waitUntil(settled, timeout)
    return answers[-1]


class Runs:
    """
    What the worker ran: for each workload (a job's own id), the prefix of
    the handle of every run, that is the server that handed it out.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.byId: Dict[bytes, List[bytes]] = defaultdict(list)
        self.held: List[Deferred[None]] = []
        self.holding = True

    def record(self, job: Job) -> None:
        self.byId[job.data].append(job.handle.split(b":", 1)[0])

    def run(self, job: Job) -> Any:
        self.record(job)
        if self.delay:
            return deferLater(reactor, self.delay, lambda: job.data)  # type: ignore[arg-type]
        return job.data

    def hold(self, job: Job) -> Any:
        """
        Record the job and finish it only once L{release} is called.
        """
        self.record(job)
        if not self.holding:
            return job.data
        d: Deferred[None] = Deferred()
        self.held.append(d)
        return d.addCallback(lambda _: job.data)

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for d in held:
            d.callback(None)

    def perServer(self) -> Counter[bytes]:
        return Counter(prefix for prefixes in self.byId.values() for prefix in prefixes)


class PoolMixin:
    """
    Three servers, a worker connected to all three, and clients.
    """

    def startPool(self) -> List[ServerProcess]:
        return [startOurs(self, "--job-handle-prefix", prefix.decode()) for prefix in PREFIXES]

    @staticmethod
    def address(server: ServerProcess) -> str:
        return "127.0.0.1:%d" % (server.port,)

    @inlineCallbacks
    def startWorker(
        self, servers: List[ServerProcess], register: Dict[str, Callable[[Job], Any]], **kwargs: Any
    ) -> Generator[Any, Any, GearmanWorker]:
        worker = GearmanWorker([self.address(s) for s in servers], reactor=reactor, **kwargs)
        for name, function in register.items():
            worker.register(name, function)
        worker.startService()
        self.addCleanup(worker.stopService)  # type: ignore[attr-defined]
        yield worker.whenRegistered()
        return worker

    @inlineCallbacks
    def startClient(self, servers: List[ServerProcess], **kwargs: Any) -> Generator[Any, Any, GearmanClient]:
        client = GearmanClient([self.address(s) for s in servers], reactor=reactor, **kwargs)
        client.startService()
        self.addCleanup(client.stopService)  # type: ignore[attr-defined]
        connected = yield waitUntil(lambda: len(client.connectedServers()) == len(servers), 15)
        self.assertTrue(connected, client.connectedServers())  # type: ignore[attr-defined]
        return client


class SpreadTests(PoolMixin, TestCase):
    """
    A client spreads jobs over three servers and a worker connected to all
    three runs each once.
    """

    timeout = 120

    @inlineCallbacks
    def test_everyJobOnce(self) -> Generator[Any, Any, None]:
        """
        10,000 jobs (foreground and background, a fifth with unique keys of
        their own) each run exactly once, every foreground result arrives,
        every server hands out a share of them, and no server has anything
        left.
        """
        servers = self.startPool()
        runs = Runs()
        worker = yield self.startWorker(servers, {"count": runs.run}, concurrency=8, perServer=True)
        client = yield self.startClient(servers)
        foreground: List[Any] = []
        background: List[Any] = []
        started = time.monotonic()
        for i in range(JOBS):
            kind = i % 10
            data = b"job-%d" % (i,)
            unique = b"u-%d" % (i,) if kind >= 8 else None
            task = client.submit("count", data, unique=unique, background=kind in (6, 7, 9), timeout=60)
            (background if task.background else foreground).append(task)
        results = yield gatherResults([t.result for t in foreground])
        self.assertEqual(results, [t.data for t in foreground])
        yield gatherResults([t.result for t in background])
        expected = {t.data for t in foreground + background}
        ran = yield waitUntil(lambda: len(runs.byId) >= len(expected), 30)
        elapsed = time.monotonic() - started
        self.assertTrue(ran, "%d of %d jobs ran" % (len(runs.byId), len(expected)))
        self.assertEqual(set(runs.byId), expected)
        twice = {data: servers for data, servers in runs.byId.items() if len(servers) != 1}
        self.assertEqual(twice, {})
        perServer = runs.perServer()
        accepted = Counter(t.server for t in foreground + background)
        log.info(
            "{jobs} jobs over three servers in {elapsed:.2f} s: {rate:.0f} jobs/s; handed out per server {perServer}",
            jobs=JOBS,
            elapsed=elapsed,
            rate=JOBS / elapsed,
            perServer=dict(perServer),
        )
        # Round robin for jobs without a key, hashing for the others: each
        # server takes about a third.
        self.assertEqual(set(perServer), set(PREFIXES))
        for prefix, server in zip(PREFIXES, servers):
            self.assertGreater(perServer[prefix], JOBS // 4)
            self.assertEqual(accepted[self.address(server)], perServer[prefix])
        # The worker records a job when it starts it: the last ones may
        # still be finishing.  Then nothing is queued or running anywhere,
        # and the worker's eight connections are registered.
        finished = yield waitUntil(lambda: worker.runningJobs() == [], 10)
        self.assertTrue(finished, worker.runningJobs())
        idle = b"count\t0\t0\t8\n.\n"
        for server in servers:
            admin = server.connect()
            self.addCleanup(admin.close)
            status = yield waitForStatus(admin, idle, 10)
            self.assertEqual(status, idle)

    @inlineCallbacks
    def test_uniqueCoalescesAcrossThePool(self) -> Generator[Any, Any, None]:
        """
        Two clients, naming the servers in different orders, each submit a
        foreground job for the same 60 keys, and one client submits a
        background job twice for 30 more: each key goes to one server, both
        submissions get the same handle there, and the job runs once.
        """
        servers = self.startPool()
        runs = Runs()
        yield self.startWorker(servers, {"hold": runs.hold}, concurrency=4)
        first = yield self.startClient(servers)
        second = yield self.startClient(servers[::-1])
        pairs = []
        for i in range(60):
            data = b"fg-%d" % (i,)
            pairs.append(tuple(c.submit("hold", data, unique=b"key-%d" % (i,), timeout=30) for c in (first, second)))
        for i in range(30):
            data = b"bg-%d" % (i,)
            unique = b"bgkey-%d" % (i,)
            pairs.append(tuple(first.submit("hold", data, unique=unique, background=True) for _ in range(2)))
        # Every submission is acknowledged while the jobs are held, queued
        # or running: the second of each pair joined the first.
        yield gatherResults([t.whenCreated() for pair in pairs for t in pair])
        for a, b in pairs:
            self.assertEqual((a.server, a.handle), (b.server, b.handle), a.data)
        self.assertEqual({a.server for a, _ in pairs}, {self.address(s) for s in servers})
        runs.release()
        results = yield gatherResults([t.result for pair in pairs[:60] for t in pair])
        self.assertEqual(results, [t.data for pair in pairs[:60] for t in pair])
        ran = yield waitUntil(lambda: len(runs.byId) >= len(pairs), 15)
        self.assertTrue(ran, "%d of %d keys ran" % (len(runs.byId), len(pairs)))
        self.assertEqual({data: len(prefixes) for data, prefixes in runs.byId.items()}, {a.data: 1 for a, _ in pairs})


class KillTests(PoolMixin, TestCase):
    """
    One server of three killed mid-way, with no persistent queue.
    """

    timeout = 120

    @inlineCallbacks
    def test_killOneOfThree(self) -> Generator[Any, Any, None]:
        """
        After C{kill -9} of one server every foreground job completes
        (the client submits the unfinished ones to the other two); a job
        runs twice only if the killed server had handed it to a worker and
        its result had not reached the client, at most one per worker
        connection to it; background jobs not run are only those the killed
        server had acknowledged (its memory queue died with it).
        """
        servers = self.startPool()
        concurrency = 12
        runs = Runs(delay=0.005)
        yield self.startWorker(servers, {"work": runs.run}, concurrency=concurrency)
        client = yield self.startClient(servers, connectTimeout=30)
        foreground: List[Any] = []
        background: List[Any] = []
        for i in range(3600):
            kind = i % 6
            data = b"job-%d" % (i,)
            unique = b"u-%d" % (i,) if kind == 4 else None
            task = client.submit("work", data, unique=unique, background=kind == 5, timeout=60)
            (background if task.background else foreground).append(task)
        third = len(foreground) // 3
        reached = yield waitUntil(lambda: sum(t.done for t in foreground) >= third, 30, step=0.005)
        self.assertTrue(reached)
        killed = servers[0]
        receivedAtKill: Set[bytes] = {t.data for t in foreground if t.done}
        killedAt = time.monotonic()
        killed.stop(signal.SIGKILL)
        results = yield gatherResults([t.result for t in foreground])
        recovered = time.monotonic() - killedAt
        self.assertEqual(results, [t.data for t in foreground])
        yield gatherResults([t.result for t in background])
        killedName = self.address(killed)
        survivors = [t for t in background if t.server != killedName]
        ran = yield waitUntil(lambda: all(t.data in runs.byId for t in survivors), 30)
        self.assertTrue(ran)
        # Foreground: every job ran; those the killed server had not
        # answered were submitted again, to the others.
        self.assertTrue(all(t.data in runs.byId for t in foreground))
        resubmitted = [t for t in foreground if t.attempts > 1]
        self.assertTrue(resubmitted)
        self.assertTrue(all(t.attempts == 2 and t.server != killedName for t in resubmitted))
        # Twice only: a run handed out by the killed server whose result
        # the client had not received when it died.
        prefix = PREFIXES[0]
        inFlight = {d for d, prefixes in runs.byId.items() if prefix in prefixes and d not in receivedAtKill}
        twice = {d: prefixes for d, prefixes in runs.byId.items() if len(prefixes) > 1}
        for data, prefixes in twice.items():
            self.assertEqual(len(prefixes), 2, data)
            self.assertIn(prefix, prefixes, data)
            self.assertIn(data, inFlight)
        self.assertLessEqual(len(twice), concurrency)
        # Background: lost only on the killed server, never run twice.
        lost = [t for t in background if t.data not in runs.byId]
        self.assertTrue(all(t.server == killedName for t in lost))
        self.assertFalse(any(t.data in twice for t in background))
        log.info(
            "kill -9 of one server of three: {resubmitted} foreground jobs resubmitted, all {jobs} completed "
            "{recovered:.2f} s after the kill; {twice} ran twice (in flight there: {inFlight}); "
            "{lost} of {background} background jobs lost with the killed server's queue",
            resubmitted=len(resubmitted),
            jobs=len(foreground),
            recovered=recovered,
            twice=len(twice),
            inFlight=len(inFlight),
            lost=len(lost),
            background=len(background),
        )
