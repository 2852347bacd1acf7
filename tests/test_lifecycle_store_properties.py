# -*- test-case-name: tests.test_lifecycle_store_properties -*-
"""
What the job lifecycle keeps in a real SQLite queue across a crash: jobs,
their attempts and backoff due times, dead letters, stored results and
run-time policy changes (see C{docs/lifecycle.rst}, "With a persistent
queue").

The server-level tests run a L{JobServer} over an L{SQLiteQueue} whose
database "thread" runs inline (L{SyncPool}): the same SQL on the same file,
but deterministic.  A crash is C{kill -9}: the objects are abandoned, so
what was committed stays and what the server had not sent yet is lost.  The
next incarnation (L{World}) replays the file as
L{GearmanService <gearman_tw.server.service.GearmanService>} does at start.

The guarantees checked, by the regression tests and by hypothesis state
machines over interleavings of submit, grab, complete, fail, worker loss,
dead letter retry and purge, policy changes, time, a full disk and crashes:

  - no acknowledged job is lost: after a crash it is a live job, a dead
    letter or a stored result;
  - a crash leaves a job or its dead letter, never neither;
  - no finished job comes back, but within the at-least-once window (its
    end not yet sent to the queue when the server died);
  - after a crash with nothing left to send, the same jobs (with their
    attempts and backoff due times), dead letters, stored results and
    policies come back;
  - dead letter numbers are never given twice, across restarts too, and no
    new job gets the handle of a stored result.

The state machines run a bounded, derandomized number of examples so that
the module stays fast and repeatable.  To search harder by hand, set
C{GEARMAN_TW_PROPERTY_EXAMPLES} (examples per machine; setting it also
makes each run random rather than derandomized) and optionally
C{GEARMAN_TW_PROPERTY_STEPS} (steps per example), e.g.::

    GEARMAN_TW_PROPERTY_EXAMPLES=2000 GEARMAN_TW_PROPERTY_STEPS=80 \\
        python -m twisted.trial tests.test_lifecycle_store_properties
"""

import os
import shutil
import sqlite3
import tempfile
from typing import Any, Callable, Dict, Generator, List, Optional, Set, Tuple, cast

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gearman_tw.errors import QueueError
from gearman_tw.protocol import PacketType
from gearman_tw.queues import DEAD_LETTERS, QueuedJob
from gearman_tw.queues import sqlite as sqlitequeue
from gearman_tw.queues.sqlite import SQLiteQueue
from gearman_tw.server.deadletters import DeadLetter
from gearman_tw.server.jobs import KEPT, JobServer
from gearman_tw.server.lifecycle import Policies
from gearman_tw.server.model import ASSIGN, NORMAL, Job
from gearman_tw.server.results import StoredResult
from tests.test_server_persistence import Connection

#: Examples per state machine, and steps per example.
EXAMPLES = int(os.environ.get("GEARMAN_TW_PROPERTY_EXAMPLES", "60"))
STEPS = int(os.environ.get("GEARMAN_TW_PROPERTY_STEPS", "40"))

PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize="GEARMAN_TW_PROPERTY_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def job(n: int, **changes: Any) -> QueuedJob:
    """
    The record of background job C{n} of function C{f}, with C{changes}.
    """
    fields: Dict[str, Any] = dict(function=b"f", key=n, unique=b"", data=b"d%d" % n, priority=NORMAL, when=0)
    fields.update(changes)
    return QueuedJob(**fields)


class SyncPool:
    """
    A thread pool that runs its work at once, in the calling thread.
    """

    def callInThreadWithCallback(
        self, onResult: Callable[[bool, object], None], f: Callable[..., object], *args: object, **kwargs: object
    ) -> None:
        try:
            result = f(*args, **kwargs)
        except BaseException:
            onResult(False, Failure())
        else:
            onResult(True, result)

    def stop(self) -> None:
        pass


class HeldPool(SyncPool):
    """
    A thread pool whose work waits until L{run} runs it, in the calling
    thread: changes issued meanwhile are committed together, or one after
    another, as the queue's thread would.
    """

    def __init__(self) -> None:
        self.work: List[Callable[[], None]] = []

    def callInThreadWithCallback(
        self, onResult: Callable[[bool, object], None], f: Callable[..., object], *args: object, **kwargs: object
    ) -> None:
        self.work.append(lambda: SyncPool.callInThreadWithCallback(self, onResult, f, *args, **kwargs))

    def run(self) -> None:
        """
        Run the work waiting, and what it makes wait in turn.
        """
        while self.work:
            self.work.pop(0)()


class SyncReactor:
    """
    The queue's reactor: C{callFromThread} calls at once, time is a Clock's.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def callFromThread(self, f: Callable[..., object], *args: object, **kwargs: object) -> None:
        f(*args, **kwargs)

    def callLater(self, delay: float, f: Callable[..., object], *args: object, **kwargs: object) -> Any:
        return self.clock.callLater(delay, f, *args, **kwargs)

    def seconds(self) -> float:
        return self.clock.seconds()


def result(d: "Deferred[Any]") -> Any:
    """
    The result of a Deferred that has fired; its failure is raised.
    """
    box: List[Any] = []
    d.addBoth(box.append)
    if not box:
        raise AssertionError("the Deferred has not fired")
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def failure(d: "Deferred[Any]") -> Failure:
    """
    The failure of a Deferred that has failed.
    """
    box: List[Any] = []
    d.addBoth(box.append)
    if not box or not isinstance(box[0], Failure):
        raise AssertionError("the Deferred has not failed: %r" % (box,))
    return cast(Failure, box[0])


def openQueue(path: str, clock: Clock) -> SQLiteQueue:
    """
    An open SQLite queue on C{path} running inline, on C{clock}'s time.

    It does not wait for the disk (C{PRAGMA synchronous=OFF}): what it
    commits survives C{kill -9}, the crash these tests make, all the same.
    """
    queue = SQLiteQueue(path, reactor=SyncReactor(clock), synchronous="NORMAL", threadPool=cast(ThreadPool, SyncPool()))
    result(queue.open())
    connection = queue._connection
    assert connection is not None
    connection.execute("PRAGMA synchronous=OFF")
    return queue


def crash(queue: SQLiteQueue) -> None:
    """
    Abandon C{queue} as C{kill -9} would: its committed changes stay,
    nothing more is written.
    """
    connection = queue._connection
    if connection is not None:
        connection.close()
        queue._connection = None


def fill(queue: SQLiteQueue) -> None:
    """
    Make C{queue}'s disk full: its database may not grow, and its free
    pages are taken.
    """
    connection = queue._connection
    assert connection is not None
    connection.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    (pages,) = connection.execute("PRAGMA page_count").fetchone()
    connection.execute("PRAGMA max_page_count=%d" % (pages,))
    for size in (3000, 500, 50):
        for _ in range(2000):
            try:
                connection.execute("INSERT INTO filler VALUES (zeroblob(?))", (size,))
            except sqlite3.OperationalError:
                break


def makeRoom(queue: SQLiteQueue) -> None:
    """
    Give C{queue}'s full disk room again.
    """
    connection = queue._connection
    assert connection is not None
    connection.execute("PRAGMA max_page_count=1073741823")
    connection.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    connection.execute("DELETE FROM filler")


class World:
    """
    One incarnation of a job server over an SQLite file, started as the
    service starts it (C{GearmanService._replay}): the queue opened and
    replayed, what it kept restored (L{JobServer.restoreAll}), handle
    numbers reserved.

    @ivar clock: the server's time, which the next incarnation goes on from.
    """

    def __init__(self, path: str, policies: str, now: float = 1000.0) -> None:
        self.path = path
        self.policies = policies
        self.clock = Clock()
        self.clock.advance(now)
        self.queue = openQueue(path, self.clock)
        self.server = JobServer(
            self.clock,
            handlePrefix=b"H",
            queue=self.queue,
            policies=Policies.fromText(policies),
            random=lambda low, high: 0.0,
        )
        records = result(self.queue.replay())
        self.server.restoreAll(records, {kind: result(self.queue.kept(kind)) for kind in KEPT})
        result(self.server.reserveHandles())

    def restart(self) -> "World":
        """
        Crash (C{kill -9}) and start again on the same file.
        """
        crash(self.queue)
        return World(self.path, self.policies, self.clock.seconds())

    def turn(self, n: int = 3) -> None:
        """
        Let C{n} reactor turns go by (what each sends to the queue is
        committed at once).
        """
        for _ in range(n):
            self.clock.advance(0)

    def worker(self, function: bytes = b"f") -> Connection:
        """
        A new worker of C{function}.
        """
        worker = Connection(self.server)
        self.server.canDo(worker.peer, function)
        return worker

    def grab(self, worker: Connection) -> Optional[bytes]:
        """
        The handle of the job C{worker} is given, if any.
        """
        self.server.grab(worker.peer, ASSIGN)
        for ptype, args in worker.packets():
            if ptype == PacketType.JOB_ASSIGN:
                return cast(bytes, args[0])
        return None

    def live(self) -> Dict[bytes, Job]:
        """
        The live jobs (queued, waiting, running), by data.
        """
        found = {}
        for live in list(self.server.liveJobs()) + list(self.server.pendingJobs()):
            if not live.ignore:
                found[live.data] = live
        return found

    def letters(self) -> Dict[bytes, DeadLetter]:
        """
        The dead letters of every function, by data.
        """
        return {
            letter.data: letter
            for name in self.server.deadLetters.functions()
            for letter in self.server.deadLetters.of(name)
        }

    def results(self) -> Dict[bytes, StoredResult]:
        """
        The stored results of function C{f} not expired, by handle.
        """
        now = self.clock.seconds()
        return {stored.handle: stored for stored in self.server.results.of(b"f") if stored.expires > now}


class QueueRestartTests(SynchronousTestCase):
    """
    L{SQLiteQueue} on its own: what a restart replays.
    """

    def setUp(self) -> None:
        self.path = os.path.join(self.mktemp(), "q.db")
        os.makedirs(os.path.dirname(self.path))
        self.clock = Clock()

    def reopen(self, queue: SQLiteQueue) -> SQLiteQueue:
        """
        Crash C{queue} and open the file again.
        """
        crash(queue)
        return openQueue(self.path, self.clock)

    def test_failedKeepKeepsItsJob(self) -> None:
        """
        A keep (a dead letter stored with its job forgotten) that fails on
        a full disk leaves the job stored, even when the other job of its
        batch finishes afterwards: the crash leaves the job, as no letter
        was stored.
        """
        queue = openQueue(self.path, self.clock)
        result(queue.addMany([job(1), job(2)]))
        fill(queue)
        self.assertTrue(failure(queue.keep(DEAD_LETTERS, [(b"1", b"x" * 20000)], [1], [])).check(QueueError))
        self.flushLoggedErrors(sqlite3.OperationalError)
        makeRoom(queue)
        result(queue.doneMany([2]))
        queue = self.reopen(queue)
        self.assertEqual(result(queue.kept(DEAD_LETTERS)), [])
        self.assertEqual(result(queue.replay()), [job(1)])

    def test_failedKeepHoldsBackItsBatch(self) -> None:
        """
        A keep that fails on a full disk while the done of the other job of
        its batch waits for the next commit (and so takes the batch for
        emptied) leaves the job stored: the done does not delete the batch,
        and a crash leaves the job, as no letter was stored.
        """
        pool = HeldPool()
        queue = SQLiteQueue(
            self.path, reactor=SyncReactor(self.clock), synchronous="NORMAL", threadPool=cast(ThreadPool, pool)
        )
        opened = queue.open()
        pool.run()
        result(opened)
        added = queue.addMany([job(1), job(2)])
        pool.run()
        result(added)
        fill(queue)
        kept = queue.keep(DEAD_LETTERS, [(b"1", b"x" * 20000)], [1], [])
        done = queue.doneMany([2])
        pool.run()
        self.assertTrue(failure(kept).check(QueueError))
        self.flushLoggedErrors(sqlite3.OperationalError)
        self.assertIsNone(result(done))
        queue = self.reopen(queue)
        self.assertEqual(result(queue.kept(DEAD_LETTERS)), [])
        self.assertEqual(result(queue.replay()), [job(1)])

    def test_unsortedBatchFinished(self) -> None:
        """
        Jobs stored in one batch out of key order (the job server stores
        new jobs, then joined ones with lower keys), some finished before a
        restart, the others (one of them updated) after it: none comes back
        after the next restart.
        """
        queue = openQueue(self.path, self.clock)
        result(queue.addMany([job(6), job(7), job(5)]))
        result(queue.update([job(5, attempts=1)]))
        result(queue.doneMany([7]))
        queue = self.reopen(queue)
        self.assertEqual(result(queue.replay()), [job(5, attempts=1), job(6)])
        result(queue.doneMany([5, 6]))
        queue = self.reopen(queue)
        self.assertEqual(result(queue.replay()), [])

    def test_splitBatchesAcrossRestarts(self) -> None:
        """
        A batch stored as several rows (past C{MAX_BATCH_BYTES}), with
        updates and ends scattered over the rows, updates of ended jobs
        among them: a restart replays exactly the jobs not finished, with
        their last attempts and due times, and every one of them can still
        be finished for good.
        """
        self.patch(sqlitequeue, "MAX_BATCH_BYTES", 100)
        queue = openQueue(self.path, self.clock)
        jobs = [job(n, data=b"x" * 45 + b"%d" % n) for n in range(1, 31)]
        result(queue.addMany(jobs))
        result(queue.update([job(n, data=jobs[n - 1].data, attempts=n, due=1000.0 + n) for n in range(1, 31, 3)]))
        finished = set(range(2, 31, 4))
        result(queue.doneMany(sorted(finished)))
        result(queue.update([job(4, data=jobs[3].data, attempts=99, due=1.0), job(6, data=jobs[5].data, attempts=9)]))
        queue = self.reopen(queue)
        expected = []
        for n in range(1, 31):
            if n in finished:
                continue
            attempts, due = (n, 1000.0 + n) if n % 3 == 1 else (0, 0.0)
            if n == 4:
                attempts, due = 99, 1.0
            expected.append(job(n, data=jobs[n - 1].data, attempts=attempts, due=due))
        self.assertEqual(result(queue.replay()), expected)
        result(queue.doneMany([record.key for record in expected]))
        queue = self.reopen(queue)
        self.assertEqual(result(queue.replay()), [])

    def test_updateAfterDone(self) -> None:
        """
        An update of a finished job, in its batch's turn or once its whole
        batch has finished, brings nothing back after a restart.
        """
        queue = openQueue(self.path, self.clock)
        result(queue.addMany([job(1), job(2), job(3)]))
        result(queue.doneMany([1]))
        result(queue.update([job(1, attempts=3)]))
        result(queue.doneMany([2, 3]))
        result(queue.update([job(2, attempts=3), job(3, attempts=1)]))
        queue = self.reopen(queue)
        self.assertEqual(result(queue.replay()), [])

    def test_manyBatchesGivenUpAtOnce(self) -> None:
        """
        One keep that stores a letter for each of more single-job batches
        than one statement handles (C{ROWS_PER_STATEMENT}), after an update
        of all of them, forgets every job for good; so does dropping every
        letter in one keep.
        """
        count = 2 * sqlitequeue.ROWS_PER_STATEMENT + 1
        queue = openQueue(self.path, self.clock)
        for n in range(1, count + 1):
            queue.addMany([job(n)])
        result(queue.flush())
        result(queue.update([job(n, attempts=1) for n in range(1, count + 1)]))
        letters = [(b"%d" % n, b"letter %d" % n) for n in range(1, count + 1)]
        result(queue.keep(DEAD_LETTERS, letters, list(range(1, count + 1)), []))
        queue = self.reopen(queue)
        self.assertEqual(result(queue.replay()), [])
        self.assertEqual(len(result(queue.kept(DEAD_LETTERS))), count)
        result(queue.keep(DEAD_LETTERS, [], [], [ident for ident, _ in letters]))
        queue = self.reopen(queue)
        self.assertEqual(result(queue.replay()), [])
        self.assertEqual(result(queue.kept(DEAD_LETTERS)), [])


class ThreadedQueueOrderTests(TestCase):
    """
    L{SQLiteQueue} on its own database thread, changes issued without
    waiting for each other.
    """

    timeout = 60

    @inlineCallbacks
    def test_changesInOneTurn(self) -> Generator["Deferred[Any]", Any, None]:
        """
        Changes issued in one reactor turn, while the add of their jobs is
        in flight, apply in order: an update then a done, a done then an
        update, a keep then an update of its job; after a restart only the
        unfinished jobs come back (with their attempts), and the letter.
        """
        path = os.path.join(self.mktemp(), "q.db")
        os.makedirs(os.path.dirname(path))
        queue = SQLiteQueue(path, reactor=reactor)
        yield queue.open()
        changes = [
            queue.addMany([job(1), job(2), job(3), job(4), job(5)]),
            queue.update([job(1, attempts=1, due=5.0)]),
            queue.update([job(2, attempts=1)]),
            queue.doneMany([2]),
            queue.doneMany([3]),
            queue.update([job(3, attempts=7)]),
            queue.keep(DEAD_LETTERS, [(b"9", b"letter of 4")], [4], []),
            queue.update([job(4, attempts=9)]),
        ]
        for change in changes:
            yield change
        yield queue.close()
        queue = SQLiteQueue(path, reactor=reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        self.assertEqual((yield queue.replay()), [job(1, attempts=1, due=5.0), job(5)])
        self.assertEqual((yield queue.kept(DEAD_LETTERS)), [(b"9", b"letter of 4")])


POLICIES = """
[default]
max-attempts = 3
dead-letters = 5
backoff = { base = 10, factor = 2, jitter = 0 }
"""


class ServerRestartTests(SynchronousTestCase):
    """
    A L{JobServer} over a real SQLite file, crashed and started again.
    """

    def setUp(self) -> None:
        self.path = os.path.join(self.mktemp(), "q.db")
        os.makedirs(os.path.dirname(self.path))

    def world(self, policies: str = POLICIES) -> World:
        return World(self.path, policies)

    def keepLetter(self, world: World, letter: DeadLetter) -> None:
        """
        Store C{letter} in C{world}'s queue and restore it, as a restart
        would.
        """
        record = (b"%d" % (letter.ident,), letter.encode())
        result(world.queue.keep(DEAD_LETTERS, [record], [], []))
        world.server.restoreDeadLetters([record])

    def test_failedKeepThenSiblingCompletes(self) -> None:
        """
        A job given up while the disk is full (its letter cannot be stored)
        and then the other job of its batch completing: after a crash the
        job is there again (it runs again), as no letter was stored.
        """
        policies = "[default]\ndead-letters = 5\n"
        w = self.world(policies)
        client = Connection(w.server)
        w.server.submit(client.peer, b"f", b"", b"one", NORMAL, True)
        w.server.submit(client.peer, b"f", b"", b"two", NORMAL, True)
        w.turn()
        worker = w.worker()
        first = w.grab(worker)
        second = w.grab(worker)
        assert first is not None and second is not None
        fill(w.queue)
        w.server.workFail(worker.peer, first, b"x" * 20000)
        self.flushLoggedErrors(sqlite3.OperationalError, QueueError)
        makeRoom(w.queue)
        w.server.workComplete(worker.peer, second, b"")
        w.turn()
        self.assertIn(b"one", w.letters())
        w = w.restart()
        self.assertEqual((set(w.live()), set(w.letters())), ({b"one"}, set()))

    def test_cancelledBeforeStored(self) -> None:
        """
        A background job cancelled in the read that submitted it, before
        its batch went to the queue: its submitter is answered, the
        function counts no job being stored, and a crash does not bring it
        back.
        """
        w = self.world()
        client = Connection(w.server)
        # Unique keys: a plain background job cannot be found by its handle
        # before it is stored.
        w.server.submit(client.peer, b"f", b"u1", b"x", NORMAL, True)
        w.server.submit(client.peer, b"f", b"u2", b"y", NORMAL, True)
        self.assertTrue(w.server.cancel(b"H:1"))
        w.server.flushStores()
        w.turn()
        self.assertEqual([ptype for ptype, _ in client.packets()], [PacketType.JOB_CREATED] * 2)
        self.assertEqual(w.server.functions[b"f"].storing, 0)
        w = w.restart()
        self.assertEqual(set(w.live()), {b"y"})

    def test_joinedJobEndsBeforeStored(self) -> None:
        """
        A worker that joins the foreground job it runs with a background
        submission and completes it in the same read (before the join is
        stored) is answered, and a crash does not bring the job back.
        """
        w = self.world()
        client = Connection(w.server)
        w.server.submit(client.peer, b"f", b"u", b"x", NORMAL, False)
        worker = w.worker()
        handle = w.grab(worker)
        assert handle is not None
        w.server.submit(worker.peer, b"f", b"u", b"x", NORMAL, True)
        w.server.workComplete(worker.peer, handle, b"r")
        w.server.flushStores()
        w.turn()
        self.assertIn(PacketType.JOB_CREATED, [ptype for ptype, _ in worker.packets()])
        w = w.restart()
        self.assertEqual(w.live(), {})

    def test_joinedJobKeepsAttempts(self) -> None:
        """
        A foreground job attempted once, waiting out its backoff, that a
        background submission joins is stored with its attempts and due
        time: after a crash it has them still.
        """
        w = self.world()
        client = Connection(w.server)
        w.server.submit(client.peer, b"f", b"u", b"x", NORMAL, False)
        worker = w.worker()
        w.grab(worker)
        w.server.peerLost(worker.peer)
        w.turn()
        other = Connection(w.server)
        w.server.submit(other.peer, b"f", b"u", b"x", NORMAL, True)
        w.turn()
        self.assertIn(PacketType.JOB_CREATED, [ptype for ptype, _ in other.packets()])
        w = w.restart()
        [restored] = w.live().values()
        self.assertEqual(restored.retries, 1)
        self.assertEqual(list(w.server.pendingJobs()), [restored])
        w.clock.advance(10)
        self.assertIsNotNone(w.grab(w.worker()))

    def test_joinedAndNewJobsFinished(self) -> None:
        """
        One batch holds a job that background submissions joined (the
        lowest key, stored last) and new jobs.  One new job completes, the
        joined one is attempted again; crash.  The other two complete after
        the restart; crash: nothing comes back.
        """
        policies = "[default]\nmax-attempts = 5\n"
        w = self.world(policies)
        foreground = Connection(w.server)
        w.server.submit(foreground.peer, b"f", b"u", b"joined", NORMAL, False)
        holder = w.worker()
        w.grab(holder)
        background = Connection(w.server)
        for unique, data in ((b"u", b"joined"), (b"", b"new"), (b"", b"new2")):
            w.server.submit(background.peer, b"f", unique, data, NORMAL, True)
        w.server.flushStores()
        w.turn()
        self.assertEqual([ptype for ptype, _ in background.packets()], [PacketType.JOB_CREATED] * 3)
        worker = w.worker()
        handle = w.grab(worker)
        assert handle is not None
        found = w.server.lookup(handle)
        assert found is not None
        self.assertEqual(found.data, b"new")
        w.server.workComplete(worker.peer, handle, b"")
        w.server.peerLost(holder.peer)
        w.turn()
        w = w.restart()
        self.assertEqual(set(w.live()), {b"joined", b"new2"})
        self.assertEqual(w.live()[b"joined"].retries, 1)
        worker = w.worker()
        for _ in range(2):
            handle = w.grab(worker)
            assert handle is not None
            w.server.workComplete(worker.peer, handle, b"")
        w.turn()
        w = w.restart()
        self.assertEqual(w.live(), {})

    def test_completedThenResubmittedSameUnique(self) -> None:
        """
        A background job with unique C{u} completes and, before its end is
        sent to the queue, a new background job with C{u} is submitted and
        acknowledged; crash.  The acknowledged job is there after the
        restart (the completed one, in the at-least-once window, may run
        again), and after the next one too: restore does not forget it.
        """
        w = self.world()
        client = Connection(w.server)
        w.server.submit(client.peer, b"f", b"u", b"old", NORMAL, True)
        w.turn()
        worker = w.worker()
        handle = w.grab(worker)
        assert handle is not None
        w.server.workComplete(worker.peer, handle, b"")
        w.server.submit(client.peer, b"f", b"u", b"new", NORMAL, True)
        w.server.flushStores()
        self.assertEqual([ptype for ptype, _ in client.packets()], [PacketType.JOB_CREATED] * 2)
        w = w.restart()
        w.turn()
        self.assertIn(b"new", w.live())
        self.assertLessEqual(set(w.live()), {b"new", b"old"})
        w = w.restart()
        self.assertIn(b"new", w.live())

    def test_reduceLetterRetried(self) -> None:
        """
        A retried dead letter of a background reduce job (a job no queue
        stores) is still there after a crash before its job ended.
        """
        w = self.world()
        letter = DeadLetter(4, b"f", b"H:old:4", b"", b"data", NORMAL, 3, b"worker lost", 1.0, 2.0, b"reducer")
        self.keepLetter(w, letter)
        self.assertEqual(w.server.retryDeadLetters(b"f"), 1)
        w.turn()
        self.assertIn(b"data", w.live())
        w = w.restart()
        self.assertEqual((w.live(), w.letters()), ({}, {b"data": letter}))

    def test_reKeptLetterOrder(self) -> None:
        """
        A letter whose retry is refused (a full queue) is kept again in
        its place by number, so that the letters after a crash are the
        same, in the same order.
        """
        policies = "[default]\ndead-letters = 2\n"
        w = self.world(policies)
        for n in (4, 5):
            self.keepLetter(w, DeadLetter(n, b"f", b"H:old:%d" % n, b"", b"d%d" % n, NORMAL, 3, b"e", 1.0, 2.0))
        client = Connection(w.server)
        w.server.submit(client.peer, b"f", b"", b"filler", NORMAL, True)
        w.turn()
        w.server.setMaxQueue(b"f", (1, 1, 1))
        self.assertEqual(w.server.retryDeadLetters(b"f", [4]), 0)
        w.turn()
        before = w.server.deadLetters.of(b"f")
        self.assertEqual([letter.ident for letter in before], [4, 5])
        w = w.restart()
        self.assertEqual(w.server.deadLetters.of(b"f"), before)

    def test_letterNumbersNotReused(self) -> None:
        """
        Dead letter numbers are never given twice: with letters 1 to 3 and
        the newest purged, a crash, the next letter is number 4.
        """
        policies = "[default]\ndead-letters = 10\n"
        w = self.world(policies)
        client = Connection(w.server)
        for n in range(3):
            w.server.submit(client.peer, b"f", b"", b"j%d" % n, NORMAL, True)
        w.turn()
        worker = w.worker()
        for _ in range(3):
            handle = w.grab(worker)
            assert handle is not None
            w.server.workFail(worker.peer, handle)
        w.turn()
        self.assertEqual([letter.ident for letter in w.server.deadLetters.of(b"f")], [1, 2, 3])
        self.assertEqual(w.server.purgeDeadLetters(b"f", [3]), 1)
        w.turn()
        w = w.restart()
        client = Connection(w.server)
        w.server.submit(client.peer, b"f", b"", b"later", NORMAL, True)
        w.turn()
        worker = w.worker()
        handle = w.grab(worker)
        assert handle is not None
        w.server.workFail(worker.peer, handle)
        self.assertEqual([letter.ident for letter in w.server.deadLetters.of(b"f")], [1, 2, 4])

    def test_retriedLetterJoinsStoredJob(self) -> None:
        """
        A unique letter retried in the turn a live background job with its
        key is being stored joins that job and is dropped: after a crash
        there is the job, and no letter.
        """
        w = self.world()
        self.keepLetter(w, DeadLetter(4, b"f", b"H:old:4", b"u", b"data", NORMAL, 3, b"worker lost", 1.0, 2.0))
        client = Connection(w.server)
        w.server.submit(client.peer, b"f", b"u", b"data", NORMAL, True)
        self.assertEqual(w.server.retryDeadLetters(b"f"), 1)
        w.turn()
        w = w.restart()
        self.assertEqual(set(w.live()), {b"data"})
        self.assertEqual(w.letters(), {})

    def test_retriedLetterRefusedByFullDisk(self) -> None:
        """
        A letter retried while the disk is full (its job cannot be stored)
        is kept again, and after a crash it is still stored.
        """
        w = self.world()
        self.keepLetter(w, DeadLetter(4, b"f", b"H:old:4", b"", b"data" * 5000, NORMAL, 3, b"lost", 1.0, 2.0))
        fill(w.queue)
        w.server.retryDeadLetters(b"f")
        w.turn()
        self.flushLoggedErrors(sqlite3.OperationalError, QueueError)
        makeRoom(w.queue)
        self.assertEqual([letter.ident for letter in w.server.deadLetters.of(b"f")], [4])
        w = w.restart()
        self.assertEqual([letter.ident for letter in w.server.deadLetters.of(b"f")], [4])
        self.assertEqual(w.live(), {})

    def test_failedLetterThenSameUnique(self) -> None:
        """
        A job given up while the disk is full (its letter cannot be stored,
        so the job stays stored, to run again), then a new background job
        with its unique key once there is room: after a crash the job given
        up is a job or a dead letter.
        """
        w = self.world("[default]\ndead-letters = 5\n")
        client = Connection(w.server)
        w.server.submit(client.peer, b"f", b"u", b"old", NORMAL, True)
        w.turn()
        worker = w.worker()
        handle = w.grab(worker)
        assert handle is not None
        fill(w.queue)
        w.server.workFail(worker.peer, handle, b"e" * 12000)
        # The SQLite queue logs its error; the job server counts it.
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError, QueueError)), 1)
        self.assertEqual(w.server.stats.queueErrors, 1)
        makeRoom(w.queue)
        w.server.submit(client.peer, b"f", b"u", b"new", NORMAL, True)
        w.turn()
        self.assertEqual((set(w.live()), set(w.letters())), ({b"new"}, {b"old"}))
        w = w.restart()
        self.assertEqual(set(w.live()) | set(w.letters()), {b"old", b"new"})

    def test_policyChanges(self) -> None:
        """
        Policy changes made at run time, taken back in part or whole,
        are the same after a crash.
        """
        w = self.world()
        w.server.changePolicy(b"f", {"max-attempts": 7, "backoff": False})
        w.server.changePolicy(b"g", {"dead-letters": 2})
        w.server.changePolicy(b"g", {"dead-letters": None})
        w.server.changePolicy(b"h", {"time-limit": 1.5})
        self.assertTrue(w.server.resetPolicy(b"h"))
        before = {name: (w.server.policyOf(name), w.server.policyChanges(name)) for name in (b"f", b"g", b"h")}
        w = w.restart()
        after = {name: (w.server.policyOf(name), w.server.policyChanges(name)) for name in (b"f", b"g", b"h")}
        self.assertEqual(after, before)
        self.assertEqual(after[b"f"][0].maxAttempts, 7)
        self.assertEqual(after[b"g"][0].deadLetters, 5)

    def test_policyChangeGovernsRestoredJob(self) -> None:
        """
        A job restored with 4 attempts, under a stored change to
        C{max-attempts = 10}, goes on being attempted (the file's 3 do not
        apply).
        """
        w = self.world()
        w.server.changePolicy(b"f", {"max-attempts": 10, "backoff": False})
        client = Connection(w.server)
        w.server.submit(client.peer, b"f", b"", b"x", NORMAL, True)
        w.turn()
        for _ in range(4):
            worker = w.worker()
            w.grab(worker)
            w.server.peerLost(worker.peer)
        w.turn()
        w = w.restart()
        self.assertEqual(w.live()[b"x"].retries, 4)
        worker = w.worker()
        w.grab(worker)
        w.server.peerLost(worker.peer)
        self.assertEqual(w.live()[b"x"].retries, 5)

    def test_attemptedThenCancelled(self) -> None:
        """
        A stored job attempted again (its update not yet sent) and then
        cancelled in the same turn does not come back after a crash.
        """
        w = self.world("[default]\nmax-attempts = 5\n")
        client = Connection(w.server)
        w.server.submit(client.peer, b"f", b"", b"x", NORMAL, True)
        w.turn()
        worker = w.worker()
        w.grab(worker)
        w.server.peerLost(worker.peer)
        self.assertTrue(w.server.cancel(b"H:1"))
        w.turn()
        w = w.restart()
        self.assertEqual(w.live(), {})

    def test_attemptedThenGivenUp(self) -> None:
        """
        A stored job attempted again (its update not yet sent), then taken
        and failed for good in the same turn: after a crash it is a dead
        letter and not a job.
        """
        policies = "[default]\nmax-attempts = 5\ndead-letters = 3\n"
        w = self.world(policies)
        client = Connection(w.server)
        w.server.submit(client.peer, b"f", b"", b"x", NORMAL, True)
        w.turn()
        worker = w.worker()
        w.grab(worker)
        w.server.peerLost(worker.peer)
        worker = w.worker()
        handle = w.grab(worker)
        assert handle is not None
        w.server.workFail(worker.peer, handle)
        w.turn()
        w = w.restart()
        self.assertEqual(w.live(), {})
        self.assertEqual(set(w.letters()), {b"x"})


# A state machine's function policy: what retries, gives up, keeps.
MACHINE_POLICIES = """
[default]
max-attempts = 3
dead-letters = 3
results = 3
backoff = { base = 5, factor = 2, jitter = 0 }
"""

# A submission's unique key: none, or one of two.
UNIQUES = st.sampled_from([b"", b"u0", b"u1"])

# Jobs: their attempts and backoff due time (None: not waiting), by data.
Jobs = Dict[bytes, Tuple[int, Optional[float]]]


class LifecycleMachine(RuleBasedStateMachine):
    """
    A job server over an SQLite file, a client, two workers of C{f}; each
    crash is C{kill -9}, at a random moment or once everything was sent to
    the queue (quiescent).  At each crash, the next incarnation is checked
    against the last one:

      - every acknowledged job, dead letter and stored result is a live
        job, a dead letter or a stored result;
      - no live job has the handle of a stored result;

    and, if the disk had room since the last crash:

      - no job came back that had finished, but those whose end was not
        sent to the queue yet (the at-least-once window);
      - no job is both a live job and a dead letter;
      - after a quiescent crash, the same live jobs (with their attempts
        and backoff due times), dead letters, results and policy are back.

    At every step: no job is given the handle of a stored result, and no
    new dead letter a number given before.
    """

    #: Foreground submissions too, which background ones join.
    foreground = False
    #: The disk fills up and frees at random; jobs are large to fill it.
    disk = False

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp()
        self.w = World(os.path.join(self.directory, "q.db"), MACHINE_POLICIES)
        self.submitted = 0
        # The data of each job acknowledged to the client.
        self.acknowledged: Set[bytes] = set()
        # The data of each job a worker was given, by handle.
        self.assigned: Dict[bytes, bytes] = {}
        # The data of each stored job, by queue key.
        self.stored: Dict[int, bytes] = {}
        # Every dead letter number given.
        self.idents: Set[int] = set()
        # The disk is full, or was since the last crash.
        self.full = self.dirty = False
        self.connect()

    def teardown(self) -> None:
        crash(self.w.queue)
        shutil.rmtree(self.directory)

    def connect(self) -> None:
        """
        Connect the client and two workers to the server.
        """
        self.client = Connection(self.w.server)
        self.foregroundClient = Connection(self.w.server)
        self.workers = [self.w.worker(), self.w.worker()]
        self.held: List[List[bytes]] = [[], []]

    def data(self) -> bytes:
        self.submitted += 1
        return b"j%d" % (self.submitted,) + (b"." * 6000 if self.disk else b"")

    def observe(self) -> None:
        """
        Read what the server sent, and check that no job got the handle of
        a stored result, nor a dead letter a number given before.
        """
        server = self.w.server
        results = self.w.results()
        for ptype, args in self.client.packets():
            if ptype == PacketType.JOB_CREATED:
                found = server.lookup(args[0])
                assert found is not None, "acknowledged job %r not live" % (args[0],)
                assert args[0] not in results, "a job got the handle of a stored result: %r" % (args[0],)
                self.acknowledged.add(found.data)
        self.foregroundClient.packets()
        for held, worker in zip(self.held, self.workers):
            for ptype, args in worker.packets():
                if ptype == PacketType.JOB_ASSIGN:
                    assert args[0] not in results, "a job got the handle of a stored result: %r" % (args[0],)
                    held.append(args[0])
                    self.assigned[args[0]] = args[2]
        for live in self.w.live().values():
            if live.queueKey is not None:
                self.stored[live.queueKey] = live.data
        new = {letter.ident for letter in server.deadLetters.of(b"f")} - self.idents
        if new and self.idents:
            assert min(new) > max(self.idents), "dead letter number given again: %r after %r" % (new, self.idents)
        self.idents.update(new)

    def read(self) -> None:
        """
        End a read: the protocol sends the submissions it made to the
        queue.
        """
        self.w.server.flushStores()
        self.observe()

    @initialize(retry=st.booleans(), keep=st.booleans())
    def start(self, retry: bool, keep: bool) -> None:
        """
        Start with failures retried or not, results kept or not.
        """
        self.w.server.changePolicy(b"f", {"retry-failures": retry, "keep-results": 30 if keep else 0})

    @rule(uniques=st.lists(UNIQUES, min_size=1, max_size=3))
    def submit(self, uniques: List[bytes]) -> None:
        """
        Submit background jobs in one read (so in one batch).
        """
        for unique in uniques:
            self.w.server.submit(self.client.peer, b"f", unique, self.data(), NORMAL, True)
        self.read()

    @precondition(lambda self: self.foreground)
    @rule(unique=st.sampled_from([b"u0", b"u1"]))
    def submitForeground(self, unique: bytes) -> None:
        self.w.server.submit(self.foregroundClient.peer, b"f", unique, self.data(), NORMAL, False)
        self.read()

    @rule(i=st.sampled_from([0, 1]))
    def grab(self, i: int) -> None:
        self.w.server.grab(self.workers[i].peer, ASSIGN)
        self.read()

    @rule(i=st.sampled_from([0, 1]), complete=st.booleans())
    def end(self, i: int, complete: bool) -> None:
        """
        A worker ends the oldest job it holds, or one it takes now.
        """
        if not self.held[i]:
            if self.held[1 - i]:
                i = 1 - i
            else:
                self.grab(i)
                if not self.held[i]:
                    return
        handle = self.held[i].pop(0)
        if complete:
            self.w.server.workComplete(self.workers[i].peer, handle, b"")
        else:
            self.w.server.workFail(self.workers[i].peer, handle, b"e" * 6000 if self.disk else None)
        self.read()

    @rule(i=st.sampled_from([0, 1]))
    def lose(self, i: int) -> None:
        self.w.server.peerLost(self.workers[i].peer)
        self.workers[i] = self.w.worker()
        self.held[i] = []
        self.read()

    @rule(seconds=st.sampled_from([0, 0, 1, 5, 10, 40]))
    def wait(self, seconds: int) -> None:
        """
        Let time pass: a reactor turn at least.
        """
        self.w.clock.advance(seconds)
        self.observe()

    @rule(which=st.sampled_from(["all", "first", "last"]), purge=st.booleans())
    def letters(self, which: str, purge: bool) -> None:
        letters = self.w.server.deadLetters.of(b"f")
        if not letters:
            return
        idents = None if which == "all" else [letters[0 if which == "first" else -1].ident]
        if purge:
            self.w.server.purgeDeadLetters(b"f", idents)
        else:
            self.w.server.retryDeadLetters(b"f", idents)
        self.observe()

    @rule(
        retry=st.sampled_from([None, True, False]),
        attempts=st.sampled_from([None, 2, 4]),
        keep=st.sampled_from([None, 0, 30]),
    )
    def policy(self, retry: Optional[bool], attempts: Optional[int], keep: Optional[int]) -> None:
        """
        Change the policy of C{f} (C{None}: take back that key's change).
        """
        self.w.server.changePolicy(b"f", {"retry-failures": retry, "max-attempts": attempts, "keep-results": keep})
        self.observe()

    @precondition(lambda self: self.disk)
    @rule()
    def fill(self) -> None:
        fill(self.w.queue)
        self.full = self.dirty = True

    @precondition(lambda self: self.disk)
    @rule()
    def makeRoom(self) -> None:
        makeRoom(self.w.queue)
        self.full = False

    def snapshot(self) -> Tuple[Jobs, Dict[bytes, DeadLetter], Dict[bytes, StoredResult]]:
        """
        The live jobs, dead letters and stored results now.
        """
        due = {entry[2].data: entry[0] for entry in self.w.server._pending}
        jobs = {data: (live.retries, due.get(data)) for data, live in self.w.live().items()}
        return jobs, self.w.letters(), self.w.results()

    @rule(quiescent=st.booleans())
    def crash(self, quiescent: bool) -> None:
        server = self.w.server
        if quiescent:
            self.w.turn(5)
            self.observe()
            assert not server.storing, "jobs left to store"
            if not self.full:
                assert server.functions[b"f"].storing == 0, "jobs counted as being stored"
        live = self.w.live()
        jobs, letters, results = self.snapshot()
        # Acknowledged, or stored for another submitter (a retried letter,
        # a foreground job a background submission joined).
        jobs = {
            data: state
            for data, state in jobs.items()
            if data in self.acknowledged or (live[data].queueKey is not None and live[data].waiting is None)
        }
        window = {self.stored[key] for key in server._toForget if key in self.stored}
        policy = server.policyOf(b"f")
        self.w = self.w.restart()
        self.connect()
        jobsAfter, lettersAfter, resultsAfter = self.snapshot()

        def forms(jobs: Jobs, letters: Dict[bytes, DeadLetter], results: Dict[bytes, StoredResult]) -> Set[bytes]:
            return set(jobs) | set(letters) | {self.assigned.get(handle, handle) for handle in results}

        lost = forms(jobs, letters, results) - forms(jobsAfter, lettersAfter, resultsAfter)
        assert not lost, "lost in a crash: %r (jobs %r letters %r -> jobs %r letters %r)" % (
            lost,
            jobs,
            set(letters),
            jobsAfter,
            set(lettersAfter),
        )
        handles = {live.handle for live in self.w.live().values()} & set(resultsAfter)
        assert not handles, "handles of stored results given to jobs: %r" % (handles,)
        if not self.dirty:
            back = set(jobsAfter) - set(jobs) - window
            assert not back, "finished jobs came back: %r" % (back,)
            both = set(jobsAfter) & set(lettersAfter)
            assert not both, "both a job and a dead letter after a crash: %r" % (both,)
            if quiescent:
                assert jobsAfter == jobs, "jobs differ after a crash: %r -> %r" % (jobs, jobsAfter)
                assert lettersAfter == letters, "letters differ after a crash: %r -> %r" % (letters, lettersAfter)
                assert resultsAfter == results, "results differ after a crash: %r -> %r" % (results, resultsAfter)
                assert self.w.server.policyOf(b"f") == policy, "policy differs after a crash"
        self.full = self.dirty = False


class ForegroundJoinsMachine(LifecycleMachine):
    """
    L{LifecycleMachine} with foreground jobs, which background submissions
    join (and so store).
    """

    foreground = True


class FullDiskMachine(LifecycleMachine):
    """
    L{LifecycleMachine} with a disk that fills up and frees: a change the
    queue could not make loses nothing acknowledged.
    """

    disk = True


class LifecyclePropertyTests(SynchronousTestCase):
    """
    The state machines, over interleavings of the lifecycle and crashes.
    """

    def test_backgroundJobs(self) -> None:
        """
        Background jobs, their retries, dead letters, results and policy
        changes survive crashes as L{LifecycleMachine} says.
        """
        run_state_machine_as_test(LifecycleMachine, settings=PROPERTY_SETTINGS)

    def test_foregroundJoins(self) -> None:
        """
        So do foreground jobs joined by background submissions.
        """
        run_state_machine_as_test(ForegroundJoinsMachine, settings=PROPERTY_SETTINGS)

    def test_fullDisk(self) -> None:
        """
        A full disk loses no acknowledged job, dead letter or result.
        """
        try:
            run_state_machine_as_test(FullDiskMachine, settings=PROPERTY_SETTINGS)
        finally:
            self.flushLoggedErrors()
