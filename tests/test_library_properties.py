"""
Property tests of the client and worker libraries together: for any
interleaving of valid and invalid submissions, cancellations, timeouts,
completions and lost connections (the client's and the worker's), every
job that completes gets its own result and no job runs twice except where
the protocol forces it.
"""

from collections import Counter
from typing import Any, Dict, List, Tuple, Union

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.client import GearmanClient, Task
from gearman_tw.errors import (
    ConnectionLost,
    JobException,
    JobFailed,
    JobTimeout,
    ServerError,
    ServerUnavailable,
)
from gearman_tw.server.jobs import JobServer
from gearman_tw.testing import MemoryServerEndpoint, flushAll
from gearman_tw.worker import GearmanWorker, Job
from tests.test_worker import ThreadClock

# The failures a task may end with in these runs (besides a cancel).
EXPECTED = (ConnectionLost, JobException, JobFailed, JobTimeout, ServerError, ServerUnavailable, CancelledError)

operations = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(["fg", "unique", "bg"]), st.integers(0, 2)),
    st.tuples(st.just("bad"), st.sampled_from(["data", "priority", "unique", "when", "timeout"])),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("complete"), st.integers(0, 5)),
    st.tuples(st.just("raise"), st.integers(0, 5)),
    st.tuples(st.just("dropClient"), st.integers(0, 1)),
    st.tuples(st.just("dropWorker"), st.integers(0, 1)),
    st.tuples(st.just("advance"), st.sampled_from([0.1, 1.0, 3.0])),
    st.tuples(st.just("flush")),
)


class World:
    """
    Two job servers in memory, one client and one worker connected to both,
    and the worker's running jobs held until the test ends them.
    """

    def __init__(self) -> None:
        self.clock = ThreadClock()
        self.servers = [JobServer(self.clock, handlePrefix=b"S%d" % i) for i in range(2)]
        self.clientEndpoints = [MemoryServerEndpoint(s, self.clock) for s in self.servers]
        self.workerEndpoints = [MemoryServerEndpoint(s, self.clock) for s in self.servers]
        self.client = GearmanClient(
            self.clientEndpoints, reactor=self.clock, connectTimeout=5, retryPolicy=lambda n: 0.5
        )
        self.worker = GearmanWorker(
            self.workerEndpoints, reactor=self.clock, concurrency=3, retryPolicy=lambda n: 0.5, drainTimeout=1
        )
        self.running: List[Tuple[bytes, Deferred]] = []
        self.runs: Counter = Counter()
        # Runs a lost worker connection may have cut short, per data.
        self.cutShort: Counter = Counter()
        self.worker.register("f", self.run)
        self.tasks: List[Task] = []
        self.counter = 0
        self.client.startService()
        self.worker.startService()
        self.flush()

    def run(self, job) -> Deferred:
        self.runs[job.data] += 1
        d: Deferred = Deferred()
        self.running.append((job.data, d))
        return d

    def flush(self) -> None:
        flushAll(self.clientEndpoints + self.workerEndpoints, rounds=8)

    def apply(self, operation: tuple) -> None:
        kind = operation[0]
        if kind == "submit":
            self.counter += 1
            style, key = operation[1], operation[2]
            if style == "unique":
                # Coalesced submissions share their data, so any of them
                # may be the one that runs.
                task = self.client.submit("f", b"u%d" % (key,), unique="k%d" % (key,), timeout=20)
            else:
                task = self.client.submit("f", b"d%d" % (self.counter,), background=style == "bg", timeout=20)
            self.tasks.append(task)
        elif kind == "bad":
            # Wrong on purpose: each makes submit raise.
            wrong: Dict[str, Tuple[Tuple[Any, ...], Dict[str, Any]]] = {
                "data": (("f", None), {}),
                "priority": (("f", b"x"), {"priority": "urgent"}),
                "unique": (("f", b"x"), {"unique": b"u" * 65}),
                "when": (("f", b"x"), {"when": "soon"}),
                "timeout": (("f", b"x"), {"timeout": -1}),
            }
            arguments = wrong[operation[1]]
            try:
                self.client.submit(*arguments[0], **arguments[1])
            except (TypeError, ValueError):
                pass
            else:
                raise AssertionError("a bad %s was accepted" % (operation[1],))
        elif kind == "cancel":
            if self.tasks:
                self.tasks[operation[1] % len(self.tasks)].result.cancel()
        elif kind in ("complete", "raise"):
            if self.running:
                data, d = self.running.pop(operation[1] % len(self.running))
                if kind == "complete":
                    d.callback(b"r:" + data)
                else:
                    d.errback(RuntimeError("boom " + data.decode()))
        elif kind == "dropClient":
            self.clientEndpoints[operation[1]].disconnectAll()
        elif kind == "dropWorker":
            endpoint = self.workerEndpoints[operation[1]]
            for job in self.worker.runningJobs():
                if job._connection.transport in [p.client.transport for p in endpoint.pumps]:
                    self.cutShort[job.data] += 1
            endpoint.disconnectAll()
        elif kind == "advance":
            self.clock.advance(operation[1])
        self.flush()

    def drain(self) -> None:
        """
        No more faults: complete whatever runs until every task has ended.
        """
        for _ in range(200):
            while self.running:
                data, d = self.running.pop(0)
                d.callback(b"r:" + data)
            self.flush()
            if all(t.done for t in self.tasks) and not self.running:
                return
            self.clock.advance(0.5)
            self.flush()
        raise AssertionError("tasks still waiting: %r" % ([t for t in self.tasks if not t.done],))


class LibraryPropertyTests(SynchronousTestCase):
    """
    Interleavings of user actions and faults never misdeliver or duplicate.
    """

    @settings(max_examples=150, deadline=None)
    @given(st.lists(operations, max_size=40))
    def test_ownResultsNoDuplicates(self, script: List[tuple]) -> None:
        """
        Whatever happens, a foreground task that succeeds gets the result
        of its own data; a background one its handle; every task ends; a
        job runs more than once only for a lost worker connection or a
        resubmission after a lost client connection (or, for submissions
        sharing a unique key, once per submission at most).
        """
        world = World()
        try:
            for operation in script:
                world.apply(operation)
            world.drain()
            resubmitted: Dict[bytes, int] = Counter()
            submissions: Dict[bytes, int] = Counter()
            for task in world.tasks:
                submissions[task.data] += 1
                resubmitted[task.data] += task.attempts - 1 if task.attempts else 0
                outcome: List[Union[bytes, Failure]] = []
                task.result.addBoth(outcome.append)
                self.assertEqual(len(outcome), 1, task)
                value = outcome[0]
                if isinstance(value, bytes):
                    if task.background:
                        self.assertTrue(value.startswith(b"S"), (task, value))
                        self.assertEqual(value, task.handle)
                    else:
                        self.assertEqual(value, b"r:" + task.data, task)
                else:
                    self.assertTrue(value.check(*EXPECTED), value)
            for data, count in world.runs.items():
                # Each submission runs at most once (those sharing a unique
                # key share their data, and coalesce only while one runs).
                allowed = submissions[data] + world.cutShort[data] + resubmitted[data]
                self.assertLessEqual(count, allowed, (data, world.runs, world.cutShort, resubmitted))
        finally:
            world.worker.stopService()
            world.client.stopService()
            world.clock.advance(10)
            world.flush()
        self.flushLoggedErrors(RuntimeError)


worker_operations = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from([b"a", b"c"]), st.integers(0, 1)),
    st.tuples(st.just("complete"), st.integers(0, 5)),
    st.tuples(st.just("raise"), st.integers(0, 5)),
    st.tuples(st.just("drop"), st.integers(0, 1)),
    st.tuples(st.just("pause"), st.integers(0, 1)),
    st.tuples(st.just("resume"), st.integers(0, 1)),
    st.tuples(st.just("unregister"),),
    st.tuples(st.just("register"), st.sampled_from([None, 1, 2])),
    st.tuples(st.just("advance"), st.sampled_from([0.5, 2.0, 6.0])),
)


class WorkerWorld:
    """
    One worker over two job servers in memory behind fault proxies:
    function C{a} in the shared pool (two jobs at once in all), function
    C{c} with a concurrency of its own; clients submit straight to each
    server.
    """

    def __init__(self) -> None:
        from tests.faultserver import FaultEndpoint

        self.clock = ThreadClock()
        self.servers = [JobServer(self.clock, handlePrefix=b"S%d" % i) for i in range(2)]
        self.faulty = [FaultEndpoint(s, self.clock) for s in self.servers]
        self.direct = [MemoryServerEndpoint(s, self.clock) for s in self.servers]
        self.worker = GearmanWorker(
            self.faulty,
            reactor=self.clock,
            concurrency=2,
            retryPolicy=lambda n: 1.0,
            heartbeat=3,
            heartbeatTimeout=2,
            drainTimeout=5,
        )
        self.limits: Dict[bytes, int] = {b"a": 2, b"c": 1}
        self.running: Counter = Counter()
        self.violations: List[tuple] = []
        self.pending: List[Tuple[Job, Deferred]] = []
        self.runs: Counter = Counter()
        self.cutShort: Counter = Counter()
        self.started: List[Job] = []
        self.lost: set = set()
        self.worker.register("a", self.function(b"a"))
        self.worker.register("c", self.function(b"c"), concurrency=1)
        self.clients = [GearmanClient([e], reactor=self.clock, retryPolicy=lambda n: 1.0) for e in self.direct]
        for client in self.clients:
            client.startService()
        self.worker.startService()
        self.tasks: List[Tuple[bytes, Task]] = []
        self.counter = 0
        self.flush()

    def function(self, name: bytes):
        def run(job) -> Deferred:
            self.runs[job.data] += 1
            self.running[name] += 1
            if self.running[name] > self.limits[name]:
                self.violations.append((name, self.running[name], self.limits[name]))
            d: Deferred = Deferred()

            def ended(result: object) -> object:
                self.running[name] -= 1
                return result

            d.addBoth(ended)
            self.pending.append((job, d))
            self.started.append(job)
            return d

        return run

    def flush(self) -> None:
        for _ in range(6):
            for endpoint in self.faulty + self.direct:
                endpoint.flush()
        # A job whose connection is lost may have its result lost with it
        # (the worker cannot know whether it arrived): the server runs it
        # again, as the protocol forces.
        for job in self.started:
            if not job._connection.connected and job not in self.lost:
                self.lost.add(job)
                self.cutShort[job.data] += 1

    def apply(self, operation: tuple) -> None:
        kind = operation[0]
        if kind == "submit":
            self.counter += 1
            name, server = operation[1], operation[2]
            data = name + b"%d" % (self.counter,)
            self.tasks.append((name, self.clients[server].submit(name, data)))
        elif kind in ("complete", "raise") and self.pending:
            job, d = self.pending.pop(operation[1] % len(self.pending))
            if kind == "complete":
                d.callback(job.function + b":" + job.data)
            else:
                d.errback(RuntimeError("boom"))
        elif kind == "drop":
            for proxy in self.faulty[operation[1]].proxies:
                proxy.abort()
        elif kind == "pause":
            self.faulty[operation[1]].pause()
        elif kind == "resume":
            self.faulty[operation[1]].resume()
        elif kind == "unregister" and b"c" in self.worker.functions:
            self.worker.unregister("c")
        elif kind == "register":
            concurrency = operation[1]
            self.limits[b"c"] = concurrency if concurrency is not None else 2
            self.worker.register("c", self.function(b"c"), concurrency=concurrency)
        elif kind == "advance":
            for _ in range(int(operation[1] / 0.5)):
                self.clock.advance(0.5)
                self.flush()
        self.flush()

    def drain(self) -> None:
        """
        Faults stop and C{c} is served again: every task must end.
        """
        for endpoint in self.faulty:
            endpoint.resume()
        if b"c" not in self.worker.functions:
            self.limits[b"c"] = 1
            self.worker.register("c", self.function(b"c"), concurrency=1)
        for _ in range(300):
            while self.pending:
                job, d = self.pending.pop(0)
                d.callback(job.function + b":" + job.data)
            self.flush()
            if all(task.done for _, task in self.tasks) and not self.pending:
                return
            self.clock.advance(0.5)
            self.flush()
        raise AssertionError("tasks still waiting: %r" % ([t for _, t in self.tasks if not t.done],))

    def stop(self) -> None:
        self.worker.stopService()
        for client in self.clients:
            client.stopService()
        for _ in range(20):
            while self.pending:
                self.pending.pop(0)[1].callback(b"")
            self.clock.advance(0.5)
            self.flush()


class WorkerPropertyTests(SynchronousTestCase):
    """
    A worker's limits and deliveries hold whatever happens.
    """

    @settings(max_examples=100, deadline=None)
    @given(st.lists(worker_operations, max_size=40))
    def test_limitsAndResults(self, script: List[tuple]) -> None:
        """
        Under lost and paused connections, unregistering and registering
        again with other limits: no function runs more jobs at once than
        its limit (jobs from before a change count against the new one);
        each task ends with its own job's result (or the exception); every
        job runs once, plus once for each time the connection it ran on was
        lost (with its result, perhaps, still on the way).
        """
        world = WorkerWorld()
        try:
            for operation in script:
                world.apply(operation)
            world.drain()
            self.assertEqual(world.violations, [])
            for name, task in world.tasks:
                outcome: List[Union[bytes, Failure]] = []
                task.result.addBoth(outcome.append)
                value = outcome[0]
                if isinstance(value, bytes):
                    self.assertEqual(value, name + b":" + task.data)
                else:
                    self.assertTrue(value.check(JobException), value)
            for data, count in world.runs.items():
                self.assertLessEqual(count, 1 + world.cutShort[data], (data, world.runs, world.cutShort))
        finally:
            world.stop()
