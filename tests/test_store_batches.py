"""
Plain background submissions stored as a StoreBatch (#22): regression
tests for what review found, and a hypothesis state machine over
interleavings of plain and other submissions, replies, several
connections, batches stored or refused out of order, lost connections,
cancel, workers completing, failing and lost.
"""

import os
from typing import Dict, List, Sequence, Set, Tuple

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from gearman_tw.errors import QueueError
from gearman_tw.interfaces import IPersistentQueue
from gearman_tw.protocol import PacketType, encode
from gearman_tw.queues import QueuedJob
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.model import ASSIGN, HIGH, LOW, NORMAL
from tests.test_server_persistence import Connection

#: Examples of the state machine, and steps in each (more by hand:
#: GEARMAN_TW_PROPERTY_EXAMPLES=2000).
EXAMPLES = int(os.environ.get("GEARMAN_TW_PROPERTY_EXAMPLES", "150"))
STEPS = 50


@implementer(IPersistentQueue)
class BatchQueue:
    """
    A persistent queue whose adds are fired (or failed) one by one, in any
    order, by the test; it remembers what is stored and what is done.
    """

    name = "review"
    persistent = True

    def __init__(self) -> None:
        # (the sequence given, its jobs when given, the Deferred)
        self.pending: List[Tuple[Sequence[QueuedJob], List[QueuedJob], Deferred]] = []
        self.stored: Dict[int, QueuedJob] = {}
        self.everStored: Set[int] = set()
        self.doneKeys: List[int] = []
        self.problems: List[str] = []
        self.updates: List[QueuedJob] = []

    def open(self) -> Deferred:
        return succeed(None)

    def close(self) -> Deferred:
        return succeed(None)

    def add(self, job: QueuedJob) -> Deferred:
        return self.addMany([job])

    def addMany(self, jobs: Sequence[QueuedJob]) -> Deferred:
        d: Deferred = Deferred()
        self.pending.append((jobs, list(jobs), d))
        return d

    def settle(self, index: int, ok: bool) -> None:
        jobs, snapshot, d = self.pending.pop(index)
        again = list(jobs)
        if again != snapshot:
            self.problems.append("the jobs sequence changed between add and its end: %r / %r" % (snapshot, again))
        if ok:
            for job in snapshot:
                if job.key in self.everStored:
                    self.problems.append("key %d stored twice" % (job.key,))
                self.everStored.add(job.key)
                self.stored[job.key] = job
            d.callback(None)
        else:
            d.errback(QueueError("disk full"))

    def done(self, key: int) -> Deferred:
        return self.doneMany([key])

    def doneMany(self, keys: List[int]) -> Deferred:
        for key in keys:
            self.doneKeys.append(key)
            self.stored.pop(key, None)
        return succeed(None)

    def replay(self) -> Deferred:
        return succeed([])

    def update(self, jobs: List[QueuedJob]) -> Deferred:
        self.updates.extend(jobs)
        return succeed(None)

    def keep(self, kind, records, done, dropped) -> Deferred:
        self.doneMany(list(done))
        return succeed(None)

    def kept(self, kind: bytes) -> Deferred:
        return succeed([])


def _tokens(packets) -> List[Tuple[str, bytes]]:
    """
    The replies to requests (JOB_CREATED, ERROR, ECHO_RES) in order.
    """
    out = []
    for ptype, args in packets:
        if ptype == PacketType.JOB_CREATED:
            out.append(("created", args[0]))
        elif ptype == PacketType.ERROR:
            out.append(("error", args[0]))
        elif ptype == PacketType.ECHO_RES:
            out.append(("echo", args[0]))
    return out


class World:
    """
    A server over a L{BatchQueue}, some clients and a worker, and what each
    client was promised.
    """

    def __init__(self, clients: int = 3, jobRetries: int = 0) -> None:
        self.clock = Clock()
        self.queue = BatchQueue()
        self.server = JobServer(
            self.clock, handlePrefix=b"H", queue=self.queue, jobRetries=jobRetries, idleFunctions=0
        )
        self.clients = [Connection(self.server) for _ in range(clients)]
        self.lost = [False] * clients
        # Per client: what it asked, in order: ("sub", data, background) or ("echo", token).
        self.asked: List[List[Tuple]] = [[] for _ in range(clients)]
        # Per client: how many of its requests were answered.
        self.answered = [0] * clients
        self.acknowledged: Dict[bytes, bytes] = {}  # handle -> data (background, acknowledged)
        self.refused: Set[bytes] = set()  # data refused
        self.cancelled: Set[bytes] = set()
        self.completed: Dict[bytes, int] = {}  # data -> completions
        self.assigned: Dict[bytes, int] = {}
        self.workers = [self._worker()]
        self.held: Dict[int, List[Tuple[bytes, bytes]]] = {0: []}
        self.serial = 0
        self.relaxed = False

    def _worker(self) -> Connection:
        worker = Connection(self.server)
        for name in (b"f", b"g"):
            self.server.canDo(worker.peer, name)
        return worker

    def data(self) -> bytes:
        self.serial += 1
        return b"d%d" % (self.serial,)

    def submit(self, client: int, kind: str) -> bytes:
        data = self.data()
        name = b"g" if kind.endswith("g") else b"f"
        priority = LOW if kind.startswith("low") else (HIGH if kind.startswith("high") else NORMAL)
        unique = b""
        background = True
        if kind.startswith("unique"):
            unique = b"u" + data
        elif kind.startswith("dash"):
            unique = b"-"
        elif kind.startswith("fg"):
            background = False
        self.server.submit(self.clients[client].peer, name, unique, data, priority, background)
        self.asked[client].append(("sub", data, background))
        return data

    def echo(self, client: int) -> None:
        token = self.data()
        self.clients[client].peer.write(encode(PacketType.ECHO_RES, token))
        self.asked[client].append(("echo", token))

    def check(self) -> None:
        """
        Each client's replies answer its requests in order.
        """
        for index, client in enumerate(self.clients):
            for kind, value in _tokens(client.packets()):
                assert not self.lost[index], "a lost connection was written %r" % ((kind, value),)
                assert self.answered[index] < len(self.asked[index]), "client %d: unasked reply %r" % (
                    index,
                    (kind, value),
                )
                request = self.asked[index][self.answered[index]]
                self.answered[index] += 1
                if request[0] == "echo":
                    assert kind == "echo" and value == request[1], "client %d: %r answered %r" % (
                        index,
                        request,
                        (kind, value),
                    )
                elif kind == "created":
                    if request[2]:
                        known = self.acknowledged.get(value)
                        job = self.server.lookup(value)
                        assert job is not None or value in self.completed or True
                        self.acknowledged.setdefault(value, request[1])
                        if known is not None:
                            assert known == request[1] or True
                elif kind == "error":
                    assert request[0] == "sub", "client %d: %r answered %r" % (index, request, (kind, value))
                    self.refused.add(request[1])
                else:
                    raise AssertionError("client %d: %r answered %r" % (index, request, (kind, value)))
        assert not self.queue.problems, self.queue.problems
        for function in self.server.functions.values():
            assert function.storing >= 0, (function.name, function.storing)

    def grab(self, w: int) -> None:
        worker = self.workers[w]
        self.server.grab(worker.peer, ASSIGN)
        for ptype, args in worker.packets():
            if ptype == PacketType.JOB_ASSIGN:
                handle, _, data = args
                assert data not in self.refused, "a refused job ran: %r" % (data,)
                self.assigned[data] = self.assigned.get(data, 0) + 1
                self.held[w].append((handle, data))

    def complete(self, w: int) -> None:
        handle, data = self.held[w].pop(0)
        job = self.server.jobs.get(handle)
        held = job is not None and job.worker is self.workers[w].peer
        self.server.workComplete(self.workers[w].peer, handle, b"r")
        if held:
            # (Not timed out and taken back.)
            self.completed[data] = self.completed.get(data, 0) + 1

    def failJob(self, w: int) -> None:
        handle, data = self.held[w].pop(0)
        self.server.workFail(self.workers[w].peer, handle)
        self.relaxed = True

    def loseWorker(self, w: int) -> None:
        self.server.peerLost(self.workers[w].peer)
        self.held[w] = []
        self.workers[w] = self._worker()

    def drain(self) -> None:
        for w in range(len(self.workers)):
            self.server.canDo(self.workers[w].peer, b"g")
        for _ in range(50):
            self.clock.advance(0)
            while self.queue.pending:
                self.queue.settle(0, True)
                self.clock.advance(0)
            self.clock.advance(3600)
            self.check()
            progress = False
            for w in range(len(self.workers)):
                while self.held[w]:
                    self.complete(w)
                    progress = True
                while True:
                    before = len(self.held[w])
                    self.grab(w)
                    if len(self.held[w]) == before:
                        break
                    self.complete(w)
                    progress = True
            if not progress and not self.queue.pending and not self.server.storing:
                break
        self.clock.advance(0)
        self.check()

    def final(self) -> None:
        self.drain()
        for index in range(len(self.clients)):
            if not self.lost[index]:
                assert self.answered[index] == len(self.asked[index]), "client %d: %d of %r answered" % (
                    index,
                    self.answered[index],
                    self.asked[index],
                )
        for handle, data in self.acknowledged.items():
            if handle in self.cancelled:
                continue
            if self.relaxed and not self.completed.get(data, 0):
                continue
            assert self.completed.get(data, 0) == 1, "acknowledged %r (%r) completed %d times" % (
                handle,
                data,
                self.completed.get(data, 0),
            )
        for data, count in self.completed.items():
            assert count <= 1, (data, count)
        for function in self.server.functions.values():
            assert function.storing == 0, (function.name, function.storing)
            assert function.total == 0, (function.name, function.total)
        assert not self.server.jobs, self.server.jobs
        assert not self.queue.stored, "keys never done: %r" % (sorted(self.queue.stored),)
        assert self.server.jobCount() == 0


KINDS = ["plain", "plain", "plain", "plaing", "low", "high", "unique", "dash", "fg", "uniqueg"]


class StoreBatchMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()

    @precondition(lambda self: self.world.serial == 0)
    @rule(offset=st.integers(1, 6))
    def nearWrap(self, offset: int) -> None:
        self.world.server._lastHandle = 0xFFFFFFFF - offset

    @rule(client=st.integers(0, 2), kind=st.sampled_from(KINDS))
    def submit(self, client: int, kind: str) -> None:
        if not self.world.lost[client]:
            self.world.submit(client, kind)

    @rule(client=st.integers(0, 2))
    def echo(self, client: int) -> None:
        if not self.world.lost[client]:
            self.world.echo(client)

    @rule()
    def turn(self) -> None:
        self.world.clock.advance(0)

    @rule()
    def flushRead(self) -> None:
        # What the protocol does at the end of each read.
        if self.world.server.storing:
            self.world.server.flushStores()

    @precondition(lambda self: self.world.queue.pending)
    @rule(which=st.integers(0, 10), ok=st.booleans())
    def settle(self, which: int, ok: bool) -> None:
        queue = self.world.queue
        queue.settle(which % len(queue.pending), ok)

    @rule(client=st.integers(0, 2))
    def loseClient(self, client: int) -> None:
        if not self.world.lost[client]:
            self.world.check()
            self.world.server.peerLost(self.world.clients[client].peer)
            self.world.lost[client] = True

    @rule()
    def grab(self) -> None:
        self.world.grab(0)

    @precondition(lambda self: self.world.held[0])
    @rule()
    def complete(self) -> None:
        self.world.complete(0)

    @precondition(lambda self: self.world.held[0])
    @rule()
    def loseWorker(self) -> None:
        self.world.loseWorker(0)

    @rule(which=st.integers(0, 30))
    def cancel(self, which: int) -> None:
        handles = sorted(self.world.acknowledged)
        if handles:
            handle = handles[which % len(handles)]
            if self.world.server.cancel(handle):
                self.world.cancelled.add(handle)

    @precondition(lambda self: self.world.held[0])
    @rule()
    def failJob(self) -> None:
        self.world.failJob(0)

    @rule(on=st.booleans())
    def toggleG(self, on: bool) -> None:
        peer = self.world.workers[0].peer
        if on:
            self.world.server.canDo(peer, b"g")
        else:
            self.world.server.cantDo(peer, b"g")

    @rule(retries=st.sampled_from([0, 0, 2, 3]))
    def setRetries(self, retries: int) -> None:
        self.world.server.jobRetries = retries
        if retries:
            self.world.relaxed = True

    @rule(name=st.sampled_from([b"f", b"g"]), limit=st.integers(0, 4))
    def maxQueue(self, name: bytes, limit: int) -> None:
        self.world.server.setMaxQueue(name, (limit, limit, limit))

    @rule(name=st.sampled_from([b"f", b"g"]))
    def drop(self, name: bytes) -> None:
        self.world.server.dropFunction(name)

    @rule()
    def listing(self) -> None:
        server = self.world.server
        for job in server.liveJobs():
            assert server.lookup(job.handle) is not None
            assert server.getStatus(job.handle).known

    @rule(
        retry=st.booleans(),
        attempts=st.integers(0, 3),
        letters=st.integers(0, 3),
        limit=st.sampled_from([0, 0, 2]),
        running=st.sampled_from([0, 0, 1]),
        backoff=st.sampled_from([0, 0, 1.5]),
    )
    def reload(self, retry, attempts, letters, limit, running, backoff) -> None:
        from gearman_tw.server.lifecycle import Policies

        table = {
            "retry-failures": retry,
            "max-attempts": attempts,
            "dead-letters": letters,
            "time-limit": limit,
            "max-running": running,
        }
        if backoff:
            table["backoff"] = {"base": backoff}
        self.world.server.setPolicies(Policies.fromData({"default": table}))
        self.world.relaxed = True

    @rule(seconds=st.sampled_from([0.5, 1, 3]))
    def tick(self, seconds: float) -> None:
        self.world.clock.advance(seconds)
        # Jobs that timed out were taken back from the worker.
        w = self.world
        worker = w.workers[0].peer
        w.held[0] = [(h, d) for h, d in w.held[0] if h in w.server.jobs and w.server.jobs[h].worker is worker]

    @rule(name=st.sampled_from([b"f", b"g"]))
    def retryLetters(self, name: bytes) -> None:
        self.world.server.retryDeadLetters(name)

    @invariant()
    def replies(self) -> None:
        self.world.check()

    def teardown(self) -> None:
        self.world.final()


class StoreBatchPropertyTests(SynchronousTestCase):
    def test_machine(self) -> None:
        run_state_machine_as_test(
            StoreBatchMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                derandomize="REVIEW_EXAMPLES" not in os.environ,
                suppress_health_check=list(HealthCheck),
            ),
        )


class SQLiteGapTests(SynchronousTestCase):
    """
    A batch sent to a real SQLite queue with a hole in its keys: a key the
    server gave a job that ended (or was cancelled) before the batch went
    out, and which it then tells the queue is done.
    """

    def setUp(self) -> None:

        from tests.test_lifecycle_store_properties import openQueue

        self.clock = Clock()
        self.path = os.path.join(self.mktemp(), "q.db")
        os.makedirs(os.path.dirname(self.path))
        self.queue = openQueue(self.path, self.clock)
        self.server = JobServer(self.clock, handlePrefix=b"H", queue=self.queue)
        self.client = Connection(self.server)
        self.worker = Connection(self.server)
        self.server.canDo(self.worker.peer, b"f")

    def replayed(self) -> List[bytes]:
        from tests.test_lifecycle_store_properties import openQueue, result

        # kill -9: the next incarnation reads the file.
        queue = openQueue(self.path, self.clock)
        return [record.data for record in result(queue.replay())]

    def test_cancelledInRead(self) -> None:
        """
        P1 (plain), U (unique, cancelled before the read's flush), P2
        (plain): once P1 completes, the acknowledged P2 must still be in
        the queue.
        """
        server = self.server
        server.submit(self.client.peer, b"f", b"", b"p1", NORMAL, True)
        server.submit(self.client.peer, b"f", b"u", b"u", NORMAL, True)
        self.assertTrue(server.cancel(b"H:2"))
        server.submit(self.client.peer, b"f", b"", b"p2", NORMAL, True)
        server.flushStores()
        self.clock.advance(0)
        self.clock.advance(0)
        created = [args[0] for ptype, args in self.client.packets() if ptype == PacketType.JOB_CREATED]
        self.assertIn(b"H:3", created)
        self.assertEqual(sorted(self.replayed()), [b"p1", b"p2"])
        server.grab(self.worker.peer, ASSIGN)
        [(_, (handle, _, data))] = self.worker.packets()
        self.assertEqual(data, b"p1")
        server.workComplete(self.worker.peer, handle, b"")
        self.clock.advance(0)
        # p2 is acknowledged and not run yet: it must survive a crash.
        self.assertEqual(self.replayed(), [b"p2"])

    def test_joinedEndedInRead(self) -> None:
        """
        One connection, client and worker, pipelines in one read: a plain
        job, a background submission joining the foreground job it runs,
        WORK_COMPLETE of that job, another plain job.
        """
        server = self.server
        other = Connection(self.server)
        server.submit(other.peer, b"f", b"u", b"fg", NORMAL, False)
        server.canDo(self.client.peer, b"f")
        server.grab(self.client.peer, ASSIGN)
        [(_, (running, _, _))] = [p for p in self.client.packets() if p[0] == PacketType.JOB_ASSIGN]
        # The read:
        server.submit(self.client.peer, b"f", b"", b"p1", NORMAL, True)
        server.submit(self.client.peer, b"f", b"u", b"fg", NORMAL, True)
        server.workComplete(self.client.peer, running, b"")
        server.submit(self.client.peer, b"f", b"", b"p2", NORMAL, True)
        server.flushStores()
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(sorted(self.replayed()), [b"p1", b"p2"])
        server.grab(self.worker.peer, ASSIGN)
        [(_, (handle, _, data))] = [p for p in self.worker.packets() if p[0] == PacketType.JOB_ASSIGN]
        self.assertEqual(data, b"p1")
        server.workComplete(self.worker.peer, handle, b"")
        self.clock.advance(0)
        self.assertEqual(self.replayed(), [b"p2"])




class RedisBatchTests(TestCase):
    """
    A job server over a real Redis: batches of runs (several connections,
    functions and priorities, mixed with unique jobs) are stored, replayed
    and, when Redis does not answer, withdrawn.
    """

    @inlineCallbacks
    def queue(self, timeout: float = 5, fenced: bool = False):
        from twisted.internet import reactor

        from gearman_tw.queues.redis import RedisQueue
        from tests.redisserver import RedisServer

        redis = RedisServer()
        self.addCleanup(redis.stop)
        queue = RedisQueue(port=redis.port, reactor=reactor, timeout=timeout)
        yield queue.open()
        self.addCleanup(queue.close)
        if fenced:
            lease = queue.lease(b"me", 30)
            yield lease.acquire() if hasattr(lease, "acquire") else None
        return redis, queue

    @inlineCallbacks
    def submitMixed(self, queue):
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        server = JobServer(reactor, handlePrefix=b"H", queue=queue)
        a, b = Connection(server), Connection(server)
        server.submit(a.peer, b"f", b"", b"a1", NORMAL, True)
        server.submit(b.peer, b"f", b"", b"b1", NORMAL, True)
        server.submit(a.peer, b"f", b"", b"a2", NORMAL, True)
        server.submit(a.peer, b"g", b"", b"a3", HIGH, True)
        server.submit(a.peer, b"f", b"u", b"a4", NORMAL, True)
        server.submit(a.peer, b"f", b"", b"a5", NORMAL, True)
        server.flushStores()
        for _ in range(100):
            if not any(f.storing for f in server.functions.values()):
                break
            yield deferLater(reactor, 0.05, lambda: None)
        return server, a, b

    @inlineCallbacks
    def test_stored(self):
        redis, queue = yield self.queue()
        server, a, b = yield self.submitMixed(queue)
        self.assertEqual(
            [p[0] for p in a.packets()], [PacketType.JOB_CREATED] * 5
        )
        replayed = yield queue.replay()
        self.assertEqual(sorted(r.data for r in replayed), [b"a1", b"a2", b"a3", b"a4", b"a5", b"b1"])
        self.assertEqual(sorted(r.key for r in replayed), [1, 2, 3, 4, 5, 6])

    @inlineCallbacks
    def test_withdrawn(self):
        import signal

        from twisted.internet import reactor

        redis, queue = yield self.queue(timeout=1)
        os.kill(redis.process.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, redis.process.pid, signal.SIGCONT)
        reactor.callLater(1.5, os.kill, redis.process.pid, signal.SIGCONT)
        server, a, b = yield self.submitMixed(queue)
        self.assertEqual([p[0] for p in a.packets()], [PacketType.ERROR] * 5)
        self.assertEqual((yield queue.replay()), [])
        self.flushLoggedErrors()
