"""
The job lifecycle with a persistent queue: a job's attempts and the end of
its backoff, and dead letters, are stored, so that a restart keeps them.
"""

from typing import List

from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.errors import QueueError
from gearman_tw.protocol import PacketType
from gearman_tw.queues import DEAD_LETTERS, HANDLES, RESULTS, QueuedJob
from gearman_tw.server import jobs
from gearman_tw.server.deadletters import DeadLetter
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.lifecycle import Policies
from gearman_tw.server.model import ASSIGN, HIGH, NORMAL
from gearman_tw.server.results import COMPLETE, StoredResult
from gearman_tw.server.service import GearmanService
from tests.test_server_persistence import Connection, FakeQueue, PortEndpoint

POLICIES = """
[default]
max-attempts = 3
dead-letters = 2
backoff = { base = 10, factor = 2, jitter = 0 }
"""


def letter(ident: int, function: bytes = b"f", **changes: object) -> DeadLetter:
    fields = dict(
        ident=ident,
        function=function,
        handle=b"H:%d" % ident,
        unique=b"u%d" % ident,
        data=b"d\0%d" % ident,
        priority=NORMAL,
        attempts=3,
        error=b"worker lost",
        submitted=5.0,
        failed=9.5,
    )
    fields.update(changes)
    return DeadLetter(**fields)  # type: ignore[arg-type]


class LifecycleStoreTests(SynchronousTestCase):
    """
    What the job server stores of a job's lifecycle.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.queue = FakeQueue()
        self.server = JobServer(self.clock, handlePrefix=b"H", queue=self.queue, policies=Policies.fromText(POLICIES))
        self.client = Connection(self.server)

    def stored(self, data: bytes = b"x", unique: bytes = b"") -> None:
        """
        Submit a background job of C{f} and let the queue store it.
        """
        self.server.submit(self.client.peer, b"f", unique, data, NORMAL, True)
        self.clock.advance(0)
        self.queue.commit()
        self.client.packets()

    def takeAndLose(self) -> bytes:
        """
        A new worker takes a job of C{f} and is lost; the handle it had.
        """
        worker = Connection(self.server)
        self.server.canDo(worker.peer, b"f")
        self.server.grab(worker.peer, ASSIGN)
        [(_, args)] = worker.packets()
        self.server.peerLost(worker.peer)
        return args[0]

    def test_attemptsStored(self) -> None:
        """
        A stored job attempted again is updated in the queue, under its
        key, with its attempts and the end of its backoff, once per
        reactor turn.
        """
        self.stored(b"a")
        self.takeAndLose()
        self.assertEqual(self.queue.updates, [])
        self.clock.advance(0)
        self.assertEqual(self.queue.updates, [QueuedJob(b"f", 1, b"", b"a", NORMAL, 0, 1, 1010.0)])
        self.clock.advance(10)
        self.takeAndLose()
        self.clock.advance(0)
        self.assertEqual(self.queue.updates[1], QueuedJob(b"f", 1, b"", b"a", NORMAL, 0, 2, 1030.0))

    def test_attemptsWithoutBackoff(self) -> None:
        """
        Without a backoff the update says "due at once" (0).
        """
        self.server.setPolicies(Policies.fromText("[default]\nmax-attempts = 5\n"))
        self.stored()
        self.takeAndLose()
        self.clock.advance(0)
        self.assertEqual([(r.attempts, r.due) for r in self.queue.updates], [(1, 0.0)])

    def test_endedBeforeUpdate(self) -> None:
        """
        A job that ends in the turn it was attempted again is not updated
        (it is forgotten instead): an update never brings back a job.
        """
        self.server.setPolicies(Policies.fromText("[default]\nmax-attempts = 5\n"))
        self.stored()
        self.takeAndLose()
        worker = Connection(self.server)
        self.server.canDo(worker.peer, b"f")
        self.server.grab(worker.peer, ASSIGN)
        self.server.workComplete(worker.peer, b"H:1", b"")
        self.clock.advance(0)
        self.assertEqual((self.queue.updates, self.queue.dones), ([], [1]))

    def test_foregroundNotStored(self) -> None:
        """
        Foreground jobs are not stored, so their attempts are not either.
        """
        self.server.submit(self.client.peer, b"f", b"", b"x", NORMAL, False)
        self.takeAndLose()
        self.clock.advance(0)
        self.assertEqual(self.queue.updates, [])

    def test_restoreAttempts(self) -> None:
        """
        A replayed job keeps its attempts: it is given up after what is
        left of them.
        """
        self.server.restore(QueuedJob(b"f", 4, b"", b"x", NORMAL, 0, 2, 0.0))
        self.assertEqual(self.server.functions[b"f"].queued[NORMAL], 1)
        self.takeAndLose()
        self.clock.advance(0)
        self.assertEqual(self.server.jobCount(), 0)
        [(kind, records, done, dropped)] = self.queue.changes
        self.assertEqual((kind, done, dropped), (DEAD_LETTERS, [4], []))
        self.assertEqual(DeadLetter.decode(records[0][1]).attempts, 3)

    def test_restoreDue(self) -> None:
        """
        A replayed job that was waiting out its backoff waits for the rest
        of it; one whose backoff ended is queued at once.
        """
        self.server.restore(QueuedJob(b"f", 4, b"", b"later", HIGH, 0, 1, 1005.5))
        self.server.restore(QueuedJob(b"f", 5, b"", b"now", NORMAL, 0, 1, 999.0))
        worker = Connection(self.server)
        self.server.canDo(worker.peer, b"f")
        self.server.grab(worker.peer, ASSIGN)
        self.assertEqual(worker.packets(), [(PacketType.JOB_ASSIGN, [b"H:2", b"f", b"now"])])
        self.server.grab(worker.peer, ASSIGN)
        self.assertEqual(worker.packets(), [(PacketType.NO_JOB, [])])
        self.assertTrue(self.server.hasWork())
        self.clock.advance(5.5)
        self.server.grab(worker.peer, ASSIGN)
        self.assertEqual(worker.packets(), [(PacketType.JOB_ASSIGN, [b"H:1", b"f", b"later"])])

    def test_deadLetterStoredWithDone(self) -> None:
        """
        A stored job given up becomes a dead letter record in the same
        change that forgets the job (never a separate done), with the
        oldest letters beyond the policy's limit dropped.
        """
        for n in range(3):
            self.stored(b"%d" % n)
        for _ in range(3):
            for _ in range(3):
                self.takeAndLose()
                self.clock.advance(100)
        self.assertEqual(self.queue.dones, [1, 2, 3])
        self.assertEqual(self.queue.updates and {r.key for r in self.queue.updates}, {1, 2, 3})
        kinds = [(kind, [i for i, _ in records], done, dropped) for kind, records, done, dropped in self.queue.changes]
        self.assertEqual(
            kinds,
            [
                (DEAD_LETTERS, [b"1", b"last"], [1], []),
                (DEAD_LETTERS, [b"2", b"last"], [2], []),
                (DEAD_LETTERS, [b"3", b"last"], [3], [b"1"]),
            ],
        )
        stored = DeadLetter.decode(self.queue.changes[-1][1][0][1])
        self.assertEqual(stored, self.server.deadLetters.of(b"f")[-1])
        self.assertEqual((stored.data, stored.attempts, stored.error), (b"2", 3, b"worker lost"))

    def test_deadLetterOfFailure(self) -> None:
        """
        A background job failed with retries off is kept the same way.
        """
        self.server.setPolicies(Policies.fromText("[default]\ndead-letters = 5\n"))
        self.stored()
        worker = Connection(self.server)
        self.server.canDo(worker.peer, b"f")
        self.server.grab(worker.peer, ASSIGN)
        self.server.workFail(worker.peer, b"H:1", b"bad input")
        self.clock.advance(0)
        [(kind, [(ident, value), last], done, dropped)] = self.queue.changes
        self.assertEqual((ident, done, self.queue.dones), (b"1", [1], [1]))
        self.assertEqual(last, (b"last", b"1"))
        self.assertEqual(DeadLetter.decode(value).error, b"bad input")

    def test_keepFails(self) -> None:
        """
        A queue that cannot keep a dead letter is logged, as one line saying
        why, and counted with the queue's errors (C{/metrics}); the letter
        is kept in memory.
        """
        from twisted.internet.testing import EventLoggingObserver
        from twisted.logger import LogLevel, formatEvent, globalLogPublisher

        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        self.queue.keeping = fail(QueueError("disk full"))
        self.server.setPolicies(Policies.fromText("[default]\ndead-letters = 5\n"))
        self.stored()
        worker = Connection(self.server)
        self.server.canDo(worker.peer, b"f")
        self.server.grab(worker.peer, ASSIGN)
        self.server.workFail(worker.peer, b"H:1")
        [error] = [e for e in events if e["log_level"] >= LogLevel.warn]
        self.assertEqual(formatEvent(error), "Persistent queue could not keep dead letter 1 of f: disk full")
        self.assertNotIn("log_failure", error)
        self.assertEqual(self.server.stats.queueErrors, 1)
        self.assertEqual(len(self.server.deadLetters.of(b"f")), 1)

    def test_otherChangesFail(self) -> None:
        """
        Attempts the queue cannot store and jobs it cannot forget are
        counted with its errors too; an unexpected error is logged with its
        traceback.
        """
        self.queue.updating = fail(QueueError("disk full"))
        self.stored()
        self.takeAndLose()
        self.clock.advance(0)
        self.assertEqual(self.server.stats.queueErrors, 1)
        self.queue.forgetting = fail(ZeroDivisionError())
        self.clock.advance(100)
        worker = Connection(self.server)
        self.server.canDo(worker.peer, b"f")
        self.server.grab(worker.peer, ASSIGN)
        self.server.workComplete(worker.peer, b"H:1", b"")
        self.clock.advance(0)
        self.assertEqual(self.server.stats.queueErrors, 2)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_purgeDropsRecords(self) -> None:
        """
        Purged letters are dropped from the queue.
        """
        self.server.restoreDeadLetters([(b"4", letter(4).encode()), (b"7", letter(7).encode())])
        self.assertEqual(self.server.purgeDeadLetters(b"f", [7, 99]), 1)
        self.assertEqual(self.server.purgeDeadLetters(b"g"), 0)
        self.assertEqual(self.queue.changes, [(DEAD_LETTERS, [], [], [b"7"])])

    def test_retryDropsOnceStored(self) -> None:
        """
        A letter run again is dropped from the queue once its new job is
        stored, not before: a crash in between keeps the letter.
        """
        self.server.restoreDeadLetters([(b"4", letter(4).encode())])
        self.assertEqual(self.server.retryDeadLetters(b"f"), 1)
        self.clock.advance(0)
        [(record, _)] = self.queue.adds
        self.assertEqual((record.function, record.unique, record.data), (b"f", b"u4", b"d\x004"))
        self.assertEqual(self.queue.changes, [])
        self.queue.commit()
        self.assertEqual(self.queue.changes, [(DEAD_LETTERS, [], [], [b"4"])])
        self.assertEqual(self.server.deadLetters.of(b"f"), [])

    def test_retryRefusedKeepsRecord(self) -> None:
        """
        A letter whose new job the queue could not store is kept again,
        and its record rewritten with why.
        """
        self.server.restoreDeadLetters([(b"4", letter(4).encode())])
        self.server.retryDeadLetters(b"f")
        self.clock.advance(0)
        [(_, d)] = self.queue.adds
        d.errback(QueueError("disk full"))
        self.flushLoggedErrors(QueueError)
        [kept] = self.server.deadLetters.of(b"f")
        self.assertEqual(kept.error, b"retry refused: disk full; before: worker lost")
        [(kind, [(ident, value), last], done, dropped)] = self.queue.changes
        self.assertEqual((kind, ident, done, dropped, last), (DEAD_LETTERS, b"4", [], [], (b"last", b"4")))
        self.assertEqual(DeadLetter.decode(value), kept)

    def test_restoreDeadLetters(self) -> None:
        """
        Restored letters come back oldest (lowest number) first, beyond
        the policy's limit too; new ones are numbered above them and
        bring the function back to its limit.
        """
        records = [(b"%d" % n, letter(n, data=b"%d" % n).encode()) for n in (9, 3, 5)]
        self.server.restoreDeadLetters(records)
        self.assertEqual([x.ident for x in self.server.deadLetters.of(b"f")], [3, 5, 9])
        self.stored()
        self.server.setPolicies(Policies.fromText("[default]\ndead-letters = 2\n"))
        worker = Connection(self.server)
        self.server.canDo(worker.peer, b"f")
        self.server.grab(worker.peer, ASSIGN)
        # Numbered above the letters' handles (H:3 ... H:9), which they show.
        [(_, [handle, _, _])] = worker.packets()
        self.assertEqual(handle, b"H:10")
        self.server.workFail(worker.peer, handle)
        self.assertEqual([x.ident for x in self.server.deadLetters.of(b"f")], [9, 10])
        [(_, _, _, dropped)] = self.queue.changes
        self.assertEqual(dropped, [b"3", b"5"])

    def test_numbersNotReused(self) -> None:
        """
        The highest number given is restored, so a letter purged before a
        restart does not see its number given again.
        """
        self.server.restoreDeadLetters([(b"2", letter(2).encode()), (b"last", b"9")])
        self.assertEqual(self.server.deadLetters.nextIdent(), 10)
        self.assertRaises(QueueError, self.server.restoreDeadLetters, [(b"last", b"x")])

    def test_putBackInPlace(self) -> None:
        """
        A letter put back after a refused retry takes its place by number,
        as a restart would restore it.
        """
        self.server.restoreDeadLetters([(b"4", letter(4).encode()), (b"5", letter(5).encode())])
        self.server.retryDeadLetters(b"f", [4])
        self.clock.advance(0)
        [(_, d)] = self.queue.adds
        d.errback(QueueError("disk full"))
        self.flushLoggedErrors(QueueError)
        self.assertEqual([x.ident for x in self.server.deadLetters.of(b"f")], [4, 5])

    def test_reduceLetterKeptUntilEnd(self) -> None:
        """
        A letter of a background reduce job run again becomes a job the
        queue does not store: its record is forgotten when that job ends,
        not when it is submitted.
        """
        self.server.restoreDeadLetters([(b"4", letter(4, reducer=b"sum").encode())])
        self.assertEqual(self.server.retryDeadLetters(b"f"), 1)
        self.clock.advance(0)
        self.assertEqual((self.queue.adds, self.queue.changes), ([], []))
        worker = Connection(self.server)
        self.server.canDo(worker.peer, b"f")
        self.server.grab(worker.peer, ASSIGN)
        [(_, args)] = worker.packets()
        self.server.workComplete(worker.peer, args[0], b"done")
        self.assertEqual(self.queue.changes, [(DEAD_LETTERS, [], [], [b"4"])])

    def test_joinedJobKeepsAttempts(self) -> None:
        """
        A live foreground job waiting out a backoff that a background
        submission joins is stored with its attempts and due time.
        """
        self.server.submit(self.client.peer, b"f", b"u", b"x", NORMAL, False)
        self.takeAndLose()
        other = Connection(self.server)
        self.server.submit(other.peer, b"f", b"u", b"x", NORMAL, True)
        self.clock.advance(0)
        [(record, _)] = self.queue.adds
        self.assertEqual((record.attempts, record.due), (1, 1010.0))

    def test_cancelledBeforeFlush(self) -> None:
        """
        A job cancelled (or ended) before its batch went to the queue is
        left out of it; its submitter is still answered.  (A job with a
        unique key: a plain background job cannot be found by its handle
        before it is stored, as in gearmand, which stores it before it
        answers.)
        """
        self.server.submit(self.client.peer, b"f", b"u1", b"x", NORMAL, True)
        self.assertTrue(self.server.cancel(b"H:1"))
        self.server.submit(self.client.peer, b"f", b"u2", b"y", NORMAL, True)
        self.clock.advance(0)
        self.assertEqual([record.data for record, _ in self.queue.adds], [b"y"])
        self.queue.commit()
        self.assertEqual([ptype for ptype, _ in self.client.packets()], [PacketType.JOB_CREATED] * 2)
        self.server.submit(self.client.peer, b"f", b"u3", b"z", NORMAL, True)
        self.server.cancel(b"H:3")
        self.clock.advance(0)
        # Nothing left to send: answered without the queue.
        self.assertEqual(self.queue.adds, [])
        self.assertEqual(self.client.packets(), [(PacketType.JOB_CREATED, [b"H:3"])])

    def test_newestOfOneUniqueRestored(self) -> None:
        """
        Of replayed records with one unique key only the newest is the job
        new submissions join; the older (whose end the crash kept from the
        queue) run again once, without the key, rather than be lost.
        """
        self.server.restoreJobs(
            [
                QueuedJob(b"f", 3, b"u", b"old", NORMAL, 0),
                QueuedJob(b"f", 5, b"v", b"other", NORMAL, 0),
                QueuedJob(b"f", 8, b"u", b"new", NORMAL, 0),
                QueuedJob(b"g", 9, b"u", b"elsewhere", NORMAL, 0),
            ]
        )
        self.clock.advance(0)
        self.assertEqual(self.queue.dones, [])
        self.assertEqual(sorted(job.data for job in self.server.liveJobs()), [b"elsewhere", b"new", b"old", b"other"])
        client = Connection(self.server)
        self.server.submit(client.peer, b"f", b"u", b"again", NORMAL, False)
        [(_, [handle])] = client.packets()
        self.assertEqual(self.server.lookup(handle).data, b"new")  # type: ignore[union-attr]

    def test_restoreCorrupt(self) -> None:
        """
        A record that is not a dead letter is a QueueError.
        """
        self.assertRaises(QueueError, self.server.restoreDeadLetters, [(b"1", b"junk")])
        self.assertRaises(QueueError, self.server.restoreDeadLetters, [(b"1", letter(1).encode() + b"x")])


class ServiceRestoreTests(SynchronousTestCase):
    """
    The service restores dead letters with the jobs, before accepting.
    """

    def test_restoredBeforeAccepting(self) -> None:
        reactor = MemoryReactorClock()
        queue = FakeQueue()
        queue.records[DEAD_LETTERS] = [(b"2", letter(2).encode())]
        server = JobServer(reactor, handlePrefix=b"H", queue=queue)
        endpoint = PortEndpoint()
        service = GearmanService(GearmanServerFactory(server), [endpoint], reactor)
        service.privilegedStartService()
        service.startService()
        queue.replayed.callback([])
        self.assertTrue(endpoint.port.reading)
        self.assertEqual(server.deadLetters.of(b"f"), [letter(2)])
        self.successResultOf(service.stopService())


class EncodingTests(SynchronousTestCase):
    """
    The stored form of a dead letter.
    """

    def test_roundTrip(self) -> None:
        for original in (
            letter(1),
            letter(2**40, unique=b"", data=b"", error=b"", reducer=b"r\0"),
            letter(3, reducer=b"", attempts=2**32 - 1),
        ):
            self.assertEqual(DeadLetter.decode(original.encode()), original)

    def test_cut(self) -> None:
        encoded = letter(1).encode()
        for cut in (1, 10, len(encoded) - 1):
            self.assertRaises(QueueError, DeadLetter.decode, encoded[:cut])


class HandleNumberTests(SynchronousTestCase):
    """
    With a persistent queue, handle numbers given are stored a block ahead
    (L{JobServer.reserveHandles}), so that a server started again on the
    queue never gives a handle that named another job: a stored result or
    dead letter found by handle is that job's.
    """

    def setUp(self) -> None:
        self.patch(jobs, "HANDLE_BLOCK", 8)
        self.queue = FakeQueue()
        self.server = JobServer(Clock(), handlePrefix=b"H", queue=self.queue)
        self.client = Connection(self.server)

    def marks(self) -> List[bytes]:
        return [records[0][1] for kind, records, _, _ in self.queue.changes if kind == HANDLES]

    def submit(self, count: int) -> List[bytes]:
        """
        Submit C{count} foreground jobs; their handles.
        """
        for n in range(count):
            self.server.submit(self.client.peer, b"f", b"", b"%d" % n, NORMAL, False)
        return [args[0] for _, args in self.client.packets()]

    def test_restoredAbove(self) -> None:
        """
        New handles (the replayed jobs' too) are numbered above the stored
        mark, the results' and the letters'; then a block is reserved.
        """
        result = StoredResult(b"f", b"H:900", b"", b"", COMPLETE, b"r", 1.0, 10**9)
        self.server.restoreAll(
            [QueuedJob(b"f", 7, b"", b"replayed", NORMAL, 0)],
            {
                HANDLES: [(b"next", b"500")],
                RESULTS: [(b"H:900", result.encode())],
                DEAD_LETTERS: [(b"1", letter(1, handle=b"H:950").encode())],
            },
        )
        self.assertEqual(list(self.server.jobs), [b"H:951"])
        self.successResultOf(self.server.reserveHandles())
        self.assertEqual(self.marks(), [b"959"])
        self.assertEqual(self.submit(1), [b"H:952"])

    def test_blockAhead(self) -> None:
        """
        The next block is stored when half of the last one is given, so the
        numbers given are always at or below a stored mark.
        """
        self.server.reserveHandles()
        given = self.submit(20)
        self.assertEqual(given[-1], b"H:20")
        self.assertEqual(self.marks(), [b"8", b"12", b"16", b"20", b"24"])
        marks = [int(mark) for mark in self.marks()]
        for index, handle in enumerate(given):
            number = int(handle[2:])
            # Covered by a mark stored before it was given.
            stored = marks[: 1 + (number - 1) // 4]
            self.assertLessEqual(number, max(stored), index)

    def test_nearTheEnd(self) -> None:
        """
        The last block ends at 2**32 - 1, stored once; past it the counter
        comes round as without a queue (skipping live jobs).
        """
        self.server.restoreHandles([(b"next", b"%d" % (0xFFFFFFFF - 3,))])
        self.server.reserveHandles()
        # A stored result's handle is skipped too: it names that job.
        self.server.results.add(StoredResult(b"f", b"H:2", b"", b"", COMPLETE, b"r", 1.0, 10**9), None)
        self.assertEqual(self.submit(5), [b"H:4294967293", b"H:4294967294", b"H:4294967295", b"H:1", b"H:3"])
        self.assertEqual(self.marks(), [b"4294967295"])

    def test_restartAfterTheWrap(self) -> None:
        """
        A server restarted after the counter came round (the replayed jobs
        take numbers from 1 on) goes on skipping the numbers in use: its
        reservation does not turn the plain counting back on.
        """
        result = StoredResult(b"f", b"H:4", b"", b"", COMPLETE, b"r", 1.0, 10**9)
        self.server.restoreAll(
            [QueuedJob(b"f", n, b"", b"%d" % n, NORMAL, 0) for n in range(1, 4)],
            {HANDLES: [(b"next", b"%d" % (0xFFFFFFFF - 1,))], RESULTS: [(b"H:4", result.encode())]},
        )
        self.server.reserveHandles()
        self.assertEqual(sorted(self.server.jobs), [b"H:1", b"H:2", b"H:4294967295"])
        self.assertEqual(self.submit(2), [b"H:3", b"H:5"])

    def test_corrupt(self) -> None:
        for record in ((b"next", b"x"), (b"other", b"5"), (b"next", b"9" * 20)):
            self.assertRaises(QueueError, self.server.restoreHandles, [record])

    def test_storeFails(self) -> None:
        """
        A mark the queue cannot store is logged and counted; numbers go on.
        """
        self.patch(jobs, "_HANDLES_RETRY", 2)
        self.queue.keeping = fail(QueueError("disk full"))
        self.server.reserveHandles()
        self.assertEqual(self.server.stats.queueErrors, 1)
        self.assertEqual(self.submit(2), [b"H:1", b"H:2"])
        # Tried again a few numbers on, not at every job.
        self.assertEqual(self.marks(), [b"8"])
        self.queue.keeping = succeed(None)
        self.submit(1)
        self.assertEqual(self.marks(), [b"8", b"10"])
