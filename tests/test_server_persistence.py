"""
The job server with a persistent queue: store before acknowledging, keep
reply order, forget ended jobs, replay at start.
"""

import os
from functools import partial
from typing import Dict, List, Sequence, Tuple

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from gearman_tw.errors import QueueError
from gearman_tw.interfaces import IPersistentQueue
from gearman_tw.protocol import RES, PacketType, encode, parseAll
from gearman_tw.queues import QueuedJob
from gearman_tw.queues.sqlite import SQLiteQueue
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.model import ASSIGN, ASSIGN_UNIQ, HIGH, LOW, NORMAL
from gearman_tw.server.packets import PacketPeer
from gearman_tw.server.service import GearmanService


@implementer(IPersistentQueue)
class FakeQueue:
    """
    A persistent queue whose adds wait until the test fires them.
    """

    name = "fake"
    persistent = True

    def __init__(self) -> None:
        self.adds: List[Tuple[QueuedJob, Deferred[None]]] = []
        # What each addMany was given.
        self.given: List[Sequence[QueuedJob]] = []
        self.dones: List[int] = []
        self.updates: List[QueuedJob] = []
        self.changes: List[Tuple[bytes, List[Tuple[bytes, bytes]], List[int], List[bytes]]] = []
        # What keep(), update() and doneMany() answer.
        self.keeping: Deferred[None] = succeed(None)
        self.updating: Deferred[None] = succeed(None)
        self.forgetting: Deferred[None] = succeed(None)
        # What kept() answers, by kind.
        self.records: Dict[bytes, List[Tuple[bytes, bytes]]] = {}
        self.opened = self.closed = False
        self.replayed: Deferred[List[QueuedJob]] = Deferred()

    def open(self) -> Deferred[None]:
        self.opened = True
        return succeed(None)

    def close(self) -> Deferred[None]:
        self.closed = True
        return succeed(None)

    def add(self, job: QueuedJob) -> Deferred[None]:
        return self.addMany([job])

    def addMany(self, jobs: Sequence[QueuedJob]) -> Deferred[None]:
        self.given.append(jobs)
        d: Deferred[None] = Deferred()
        for job in jobs:
            self.adds.append((job, d))
        return d

    def done(self, key: int) -> Deferred[None]:
        return self.doneMany([key])

    def doneMany(self, keys: List[int]) -> Deferred[None]:
        self.dones.extend(keys)
        return self.forgetting

    def replay(self) -> Deferred[List[QueuedJob]]:
        return self.replayed

    def update(self, jobs: List[QueuedJob]) -> Deferred[None]:
        self.updates.extend(jobs)
        return self.updating

    def keep(
        self, kind: bytes, records: List[Tuple[bytes, bytes]], done: List[int], dropped: List[bytes]
    ) -> Deferred[None]:
        self.changes.append((kind, records, done, dropped))
        self.dones.extend(done)
        return self.keeping

    def kept(self, kind: bytes) -> Deferred[List[Tuple[bytes, bytes]]]:
        return succeed(list(self.records.get(kind, [])))

    def commit(self) -> None:
        adds, self.adds = self.adds, []
        for d in {id(d): d for _, d in adds}.values():
            d.callback(None)


class Connection:
    """
    A Peer that records what it was sent.
    """

    def __init__(self, server: JobServer) -> None:
        self.sent: List[bytes] = []
        self.peer = PacketPeer(self.sent.append, 1, "127.0.0.1")
        server.peerConnected(self.peer)

    def packets(self):
        data = b"".join(self.sent)
        self.sent.clear()
        return [(ptype, args) for ptype, args, _ in parseAll(data, magic=RES)]


class PersistenceTests(SynchronousTestCase):
    """
    Tests for L{JobServer} with a persistent queue.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.queue = FakeQueue()
        self.server = JobServer(self.clock, handlePrefix=b"H", queue=self.queue)
        self.client = Connection(self.server)
        self.worker = Connection(self.server)
        self.server.canDo(self.worker.peer, b"f")

    def adds(self) -> list:
        """
        The queue's pending adds, once this reactor turn's batch went out.
        """
        self.clock.advance(0)
        return self.queue.adds

    def commit(self) -> None:
        self.clock.advance(0)
        self.queue.commit()
        self.clock.advance(0)

    def dones(self) -> list:
        self.clock.advance(0)
        return self.queue.dones

    def test_acknowledgedAfterStore(self) -> None:
        """
        JOB_CREATED for a background job waits for the queue; until then no
        worker can take the job.
        """
        self.server.submit(self.client.peer, b"f", b"u", b"data", HIGH, True)
        self.assertEqual(self.client.packets(), [])
        self.server.grab(self.worker.peer, ASSIGN)
        self.assertEqual(self.worker.packets(), [(PacketType.NO_JOB, [])])
        [(record, _)] = self.adds()
        self.assertEqual(record, QueuedJob(b"f", 1, b"u", b"data", HIGH, 0))
        self.commit()
        self.assertEqual(self.client.packets(), [(PacketType.JOB_CREATED, [b"H:1"])])
        self.server.grab(self.worker.peer, ASSIGN)
        self.assertEqual(self.worker.packets(), [(PacketType.JOB_ASSIGN, [b"H:1", b"f", b"data"])])

    def test_replyOrder(self) -> None:
        """
        A foreground submission after a background one being stored is
        answered after it, so clients can match replies in order.
        """
        self.server.submit(self.client.peer, b"f", b"", b"bg", NORMAL, True)
        self.server.submit(self.client.peer, b"f", b"", b"fg", NORMAL, False)
        self.client.peer.write(encode(PacketType.ECHO_RES, b"e"))
        self.assertEqual(self.client.packets(), [])
        self.commit()
        self.assertEqual(
            self.client.packets(),
            [
                (PacketType.JOB_CREATED, [b"H:1"]),
                (PacketType.JOB_CREATED, [b"H:2"]),
                (PacketType.ECHO_RES, [b"e"]),
            ],
        )

    def test_recordKeys(self) -> None:
        """
        Every stored job gets the next record number, unique key or not.
        """
        for unique in (b"", b"u", b""):
            self.server.submit(self.client.peer, b"f", unique, b"x", NORMAL, True)
        self.assertEqual(sorted(record.key for record, _ in self.adds()), [1, 2, 3])

    def test_manyClientsOneCommit(self) -> None:
        """
        Submissions of several connections in one reactor turn go to the
        queue as one batch, and each connection gets its replies in order,
        in one write.
        """
        other = Connection(self.server)
        for n in range(3):
            self.server.submit(self.client.peer, b"f", b"", b"c%d" % n, NORMAL, True)
            self.server.submit(other.peer, b"f", b"", b"o%d" % n, NORMAL, True)
        self.assertEqual(len({id(d) for _, d in self.adds()}), 1)
        self.commit()
        self.assertEqual(len(self.client.sent), 1)
        self.assertEqual(
            self.client.packets(), [(PacketType.JOB_CREATED, [b"H:%d" % n]) for n in (1, 3, 5)]
        )
        self.assertEqual(other.packets(), [(PacketType.JOB_CREATED, [b"H:%d" % n]) for n in (2, 4, 6)])

    def test_foregroundNotStored(self) -> None:
        """
        Foreground and reduce jobs are not stored, as in gearmand.
        """
        self.server.submit(self.client.peer, b"f", b"", b"x", NORMAL, False)
        self.server.submit(self.client.peer, b"f", b"", b"x", NORMAL, True, reducer=b"r")
        self.assertEqual(self.adds(), [])

    def test_coalescedBackgroundStored(self) -> None:
        """
        A background submission coalescing onto a foreground job stores it
        (gearmand loses it), and is answered once stored.
        """
        self.server.submit(self.client.peer, b"f", b"u", b"x", NORMAL, False)
        self.client.packets()
        other = Connection(self.server)
        self.server.submit(other.peer, b"f", b"u", b"x", NORMAL, True)
        self.assertEqual(other.packets(), [])
        self.assertEqual(len(self.adds()), 1)
        self.commit()
        self.assertEqual(other.packets(), [(PacketType.JOB_CREATED, [b"H:1"])])
        self.server.peerLost(self.client.peer)
        self.assertFalse(self.server.jobs[b"H:1"].ignore)

    def test_coalescingWhileStoring(self) -> None:
        """
        A submission coalescing onto a job being stored is answered with it.
        """
        self.server.submit(self.client.peer, b"f", b"u", b"x", NORMAL, True)
        other = Connection(self.server)
        self.server.submit(other.peer, b"f", b"u", b"x", NORMAL, False)
        self.assertEqual(other.packets(), [])
        self.commit()
        self.assertEqual(other.packets(), [(PacketType.JOB_CREATED, [b"H:1"])])
        self.assertEqual(len(self.adds()), 0)

    def test_sameConnectionTwiceWhileStoring(self) -> None:
        """
        A connection that joins its own job being stored gets JOB_CREATED
        for each submission, in order.
        """
        self.server.submit(self.client.peer, b"f", b"u", b"x", NORMAL, True)
        self.server.submit(self.client.peer, b"f", b"u", b"x", NORMAL, False)
        self.server.submit(self.client.peer, b"f", b"", b"y", NORMAL, True)
        self.commit()
        self.assertEqual(
            self.client.packets(),
            [
                (PacketType.JOB_CREATED, [b"H:1"]),
                (PacketType.JOB_CREATED, [b"H:1"]),
                (PacketType.JOB_CREATED, [b"H:2"]),
            ],
        )

    def test_laterBatchWaitsForEarlier(self) -> None:
        """
        Replies to jobs of a later batch wait behind a job of an earlier
        batch still being stored.
        """
        self.server.submit(self.client.peer, b"f", b"", b"a", NORMAL, True)
        first = self.adds()[0][1]
        self.server.submit(self.client.peer, b"f", b"", b"b", NORMAL, True)
        second = self.adds()[1][1]
        second.callback(None)
        self.assertEqual(self.client.packets(), [])
        first.callback(None)
        self.assertEqual(
            self.client.packets(), [(PacketType.JOB_CREATED, [b"H:1"]), (PacketType.JOB_CREATED, [b"H:2"])]
        )

    def test_storeFails(self) -> None:
        """
        If the queue cannot store the job, the client gets QUEUE_ERROR with
        the queue's message and the job is gone.
        """
        self.server.submit(self.client.peer, b"f", b"u", b"x", NORMAL, True)
        self.adds()[0][1].errback(QueueError("disk full"))
        self.assertEqual(
            self.client.packets(), [(PacketType.ERROR, [b"QUEUE_ERROR", b"disk full"])]
        )
        self.assertEqual(self.server.jobs, {})
        self.assertEqual(self.server.functions[b"f"].total, 0)
        self.flushLoggedErrors()
        self.queue.adds.clear()
        self.server.submit(self.client.peer, b"f", b"u", b"x", NORMAL, True)
        self.assertEqual(len(self.adds()), 1)

    def test_joinedStoreFails(self) -> None:
        """
        If storing a foreground job that a background submission joined
        fails, that submission and any joining meanwhile get QUEUE_ERROR, the
        job runs on for its foreground client, and a later background
        submission tries to store it again.
        """
        self.server.submit(self.client.peer, b"f", b"u", b"x", NORMAL, False)
        self.client.packets()
        other = Connection(self.server)
        self.server.submit(other.peer, b"f", b"u", b"x", NORMAL, True)
        self.server.submit(other.peer, b"f", b"u", b"x", NORMAL, False)
        other.peer.write(encode(PacketType.ECHO_RES, b"e"))
        self.adds()[0][1].errback(QueueError("locked"))
        error = (PacketType.ERROR, [b"QUEUE_ERROR", b"locked"])
        self.assertEqual(other.packets(), [error, error, (PacketType.ECHO_RES, [b"e"])])
        job = self.server.jobs[b"H:1"]
        self.assertIsNone(job.queueKey)
        self.flushLoggedErrors()
        self.queue.adds.clear()
        self.server.submit(other.peer, b"f", b"u", b"x", NORMAL, True)
        self.assertEqual(len(self.adds()), 1)
        self.commit()
        self.assertEqual(other.packets(), [(PacketType.JOB_CREATED, [b"H:1"])])

    def test_maxQueueCountsStoring(self) -> None:
        """
        Jobs being stored count towards the function's queue limit, as
        gearmand's (queued at once) do; once stored or failed, they count
        as queued jobs or not at all.
        """
        self.server.setMaxQueue(b"f", (2, 2, 2))
        for data in (b"1", b"2", b"3"):
            self.server.submit(self.client.peer, b"f", b"", data, NORMAL, True)
        self.assertEqual(len(self.adds()), 2)
        self.commit()
        full = (PacketType.ERROR, [b"QUEUE_ERROR", b"Job queue is full"])
        self.assertEqual(
            self.client.packets(),
            [(PacketType.JOB_CREATED, [b"H:1"]), (PacketType.JOB_CREATED, [b"H:2"]), full],
        )
        self.server.submit(self.client.peer, b"f", b"", b"4", NORMAL, True)
        self.assertEqual(self.client.packets(), [full])
        self.assertEqual(self.server.functions[b"f"].storing, 0)
        self.server.setMaxQueue(b"f", (3, 3, 3))
        self.server.submit(self.client.peer, b"f", b"", b"5", NORMAL, True)
        self.adds()[0][1].errback(QueueError("disk full"))
        self.flushLoggedErrors()
        self.queue.adds.clear()
        self.assertEqual(self.server.functions[b"f"].storing, 0)
        self.server.submit(self.client.peer, b"f", b"", b"6", NORMAL, True)
        self.assertEqual(len(self.adds()), 1)

    def test_dropWhileStoring(self) -> None:
        """
        A function whose only job is still being stored cannot be dropped.
        """
        self.server.resetAbilities(self.worker.peer)
        self.server.submit(self.client.peer, b"f", b"", b"x", NORMAL, True)
        self.assertFalse(self.server.dropFunction(b"f"))
        self.commit()
        self.assertFalse(self.server.dropFunction(b"f"))

    def test_doneWhenEnded(self) -> None:
        """
        A stored job is forgotten when it completes, fails, raises, is
        cancelled or runs out of retries.
        """
        self.server.jobRetries = 1
        for n in range(5):
            self.server.submit(self.client.peer, b"f", b"u%d" % n, b"x", NORMAL, True)
        self.commit()
        worker = self.worker.peer
        ends = [
            lambda h: self.server.workComplete(worker, h, h + b"\0r"),
            lambda h: self.server.workFail(worker, h),
            lambda h: self.server.workException(worker, h, h + b"\0e"),
        ]
        for end in ends:
            self.server.grab(worker, ASSIGN)
            handle = self.worker.packets()[0][1][0]
            end(handle)
        self.server.grab(worker, ASSIGN)
        self.server.resetAbilities(worker)
        self.assertTrue(self.server.cancel(b"H:5"))
        self.assertEqual(sorted(self.dones()), [1, 2, 3, 4, 5])
        function = self.server.functions[b"f"]
        self.assertEqual((function.completed, function.failed, function.exceptions), (1, 2, 1))

    def test_plainBatch(self) -> None:
        """
        Plain background jobs of one batch go to the queue as one sequence
        (not a list: each job is made as the queue reads it), in the order
        submitted whatever their functions and priorities; their
        submissions are answered in that order, and the jobs queued by
        function and priority.
        """
        other = Connection(self.server)
        submissions = [(b"f", NORMAL), (b"f", NORMAL), (b"g", HIGH), (b"f", NORMAL), (b"f", LOW)]
        for name, priority in submissions:
            self.server.submit(self.client.peer, name, b"", name + b"%d" % priority, priority, True)
        self.clock.advance(0)
        self.server.submit(other.peer, b"f", b"", b"other", NORMAL, True)
        self.clock.advance(0)
        first, second = self.queue.given
        self.assertNotIsInstance(first, list)
        expected = [
            QueuedJob(name, n, b"", name + b"%d" % priority, priority, 0)
            for n, (name, priority) in enumerate(submissions, 1)
        ]
        self.assertEqual((len(first), list(first), list(first), first[2]), (5, expected, expected, expected[2]))
        self.assertEqual(list(second), [QueuedJob(b"f", 6, b"", b"other", NORMAL, 0)])
        self.assertEqual(self.client.packets(), [])
        self.queue.commit()
        self.assertEqual(self.client.packets(), [(PacketType.JOB_CREATED, [b"H:%d" % n]) for n in range(1, 6)])
        self.assertEqual(other.packets(), [(PacketType.JOB_CREATED, [b"H:6"])])
        self.server.canDo(self.worker.peer, b"g")
        taken = []
        for _ in range(6):
            self.server.grab(self.worker.peer, ASSIGN)
            [(_, [handle, _, _])] = self.worker.packets()
            taken.append(handle)
        # HIGH first, then NORMAL in order, then LOW.
        self.assertEqual(taken, [b"H:3", b"H:1", b"H:2", b"H:4", b"H:6", b"H:5"])

    def test_otherRepliesBetween(self) -> None:
        """
        Replies made between plain background submissions of one batch
        keep their places among the JOB_CREATED, also where the handle
        numbers gain a digit.
        """
        self.server._lastHandle = 7
        self.server.submit(self.client.peer, b"f", b"", b"a", NORMAL, True)
        self.client.peer.write(encode(PacketType.ECHO_RES, b"1"))
        self.server.submit(self.client.peer, b"f", b"", b"b", NORMAL, True)
        self.server.submit(self.client.peer, b"f", b"", b"c", NORMAL, True)
        self.server.submit(self.client.peer, b"f", b"", b"d", NORMAL, False)
        self.server.submit(self.client.peer, b"f", b"", b"e", NORMAL, True)
        self.client.peer.write(encode(PacketType.ECHO_RES, b"2"))
        self.commit()
        created = [(PacketType.JOB_CREATED, [b"H:%d" % n]) for n in range(8, 13)]
        self.assertEqual(
            self.client.packets(),
            created[:1] + [(PacketType.ECHO_RES, [b"1"])] + created[1:] + [(PacketType.ECHO_RES, [b"2"])],
        )

    def test_mixedBatch(self) -> None:
        """
        A batch of plain jobs and others (a unique key) goes to the queue
        as one list, each job with its own record key.
        """
        self.server.submit(self.client.peer, b"f", b"", b"a", NORMAL, True)
        self.server.submit(self.client.peer, b"f", b"u", b"b", NORMAL, True)
        self.server.submit(self.client.peer, b"f", b"", b"c", NORMAL, True)
        self.clock.advance(0)
        [given] = self.queue.given
        self.assertEqual(sorted((job.key, job.data) for job in given), [(1, b"a"), (2, b"b"), (3, b"c")])
        self.queue.commit()
        self.assertEqual(self.client.packets(), [(PacketType.JOB_CREATED, [b"H:%d" % n]) for n in range(1, 4)])

    def test_plainStoreFails(self) -> None:
        """
        If the queue cannot store a batch of plain background jobs (stored
        as records, without a L{Job} each), each of their submissions gets
        QUEUE_ERROR in its place among the connection's replies, and no job
        is left queued or counted as being stored.
        """
        self.server.submit(self.client.peer, b"f", b"", b"a", NORMAL, True)
        self.server.submit(self.client.peer, b"f", b"u", b"b", NORMAL, True)
        self.server.submit(self.client.peer, b"f", b"", b"c", NORMAL, True)
        self.server.submit(self.client.peer, b"f", b"", b"d", NORMAL, True)
        self.client.peer.write(encode(PacketType.ECHO_RES, b"e"))
        self.assertEqual(len(self.adds()), 4)
        self.adds()[0][1].errback(QueueError("disk full"))
        error = (PacketType.ERROR, [b"QUEUE_ERROR", b"disk full"])
        self.assertEqual(self.client.packets(), [error] * 4 + [(PacketType.ECHO_RES, [b"e"])])
        function = self.server.functions[b"f"]
        self.assertEqual((function.total, function.storing, len(self.server.runQueue), self.server.jobs), (0, 0, 0, {}))
        self.server.grab(self.worker.peer, ASSIGN)
        self.assertEqual(self.worker.packets(), [(PacketType.NO_JOB, [])])
        self.flushLoggedErrors(QueueError)
        self.queue.adds.clear()
        self.server.submit(self.client.peer, b"f", b"", b"x", NORMAL, True)
        self.commit()
        self.assertEqual(self.client.packets(), [(PacketType.JOB_CREATED, [b"H:5"])])

    def test_plainStoreFailsIdleFunction(self) -> None:
        """
        A function whose only jobs failed to be stored is idle again: it can
        be dropped.
        """
        self.server.submit(self.client.peer, b"g", b"", b"a", NORMAL, True)
        self.assertFalse(self.server.dropFunction(b"g"))
        self.adds()[0][1].errback(QueueError("disk full"))
        self.flushLoggedErrors(QueueError)
        self.assertTrue(self.server.dropFunction(b"g"))

    def test_plainNotTakenBeforeStored(self) -> None:
        """
        A plain background job is neither taken nor found by its handle
        before the queue has it (its handle is not yet given to anyone);
        once stored, a sleeping worker is woken for it.
        """
        self.server.preSleep(self.worker.peer)
        self.server.submit(self.client.peer, b"f", b"", b"x", NORMAL, True)
        self.server.grab(self.worker.peer, ASSIGN)
        self.assertEqual(self.worker.packets(), [(PacketType.NO_JOB, [])])
        self.assertFalse(self.server.cancel(b"H:1"))
        self.assertEqual(self.server.getStatus(b"H:1").known, False)
        self.server.preSleep(self.worker.peer)
        self.commit()
        self.assertEqual(self.worker.packets(), [(PacketType.NOOP, [])])
        self.assertEqual(self.server.getStatus(b"H:1").known, True)
        self.server.grab(self.worker.peer, ASSIGN)
        self.assertEqual(self.worker.packets(), [(PacketType.JOB_ASSIGN, [b"H:1", b"f", b"x"])])

    def test_plainDoneWhenEnded(self) -> None:
        """
        A stored plain background job, queued as a record, is forgotten by
        its record number when it completes, fails, raises, is cancelled
        (queued or running) or runs out of retries.
        """
        self.server.jobRetries = 1
        for n in range(6):
            self.server.submit(self.client.peer, b"f", b"", b"x%d" % n, NORMAL, True)
        self.commit()
        self.assertEqual(len(self.client.packets()), 6)
        worker = self.worker.peer
        ends = [
            lambda h: self.server.workComplete(worker, h, b"r"),
            lambda h: self.server.workFail(worker, h),
            lambda h: self.server.workException(worker, h, b"e"),
            lambda h: self.assertTrue(self.server.cancel(h)),
        ]
        for end in ends:
            self.server.grab(worker, ASSIGN)
            handle = self.worker.packets()[0][1][0]
            end(handle)
        self.assertTrue(self.server.cancel(b"H:5"))
        self.server.grab(worker, ASSIGN)
        [(_, [handle, _, data])] = self.worker.packets()
        self.assertEqual((handle, data), (b"H:6", b"x5"))
        self.server.peerLost(worker)
        self.assertEqual(sorted(self.dones()), [1, 2, 3, 4, 5, 6])
        self.assertEqual(self.server.jobCount(), 0)

    def test_plainSubmitterLost(self) -> None:
        """
        A connection that goes away while its plain background jobs are
        being stored is not answered; the jobs are stored and run.
        """
        self.server.submit(self.client.peer, b"f", b"", b"x", NORMAL, True)
        self.server.peerLost(self.client.peer)
        self.commit()
        self.assertEqual(self.client.packets(), [])
        self.server.grab(self.worker.peer, ASSIGN)
        [(_, [handle, _, _])] = self.worker.packets()
        self.server.workComplete(self.worker.peer, handle, b"r")
        self.assertEqual(self.dones(), [1])

    def test_restore(self) -> None:
        """
        Replayed jobs get fresh handles and keep function, unique, data,
        priority and epoch; they coalesce and are forgotten when done.
        """
        server = JobServer(self.clock, handlePrefix=b"R", queue=self.queue)
        server.restore(QueuedJob(b"f", 3, b"u", b"one", LOW, 0))
        server.restore(QueuedJob(b"f", 7, b"", b"two", HIGH, 0))
        server.restore(QueuedJob(b"f", 9, b"e", b"later", NORMAL, 100))
        self.assertEqual(self.adds(), [])
        self.assertEqual(sorted(server.jobs), [b"R:1", b"R:2", b"R:3"])
        self.assertEqual(server.functions[b"f"].queued, [1, 1, 1])
        client = Connection(server)
        server.submit(client.peer, b"f", b"u", b"again", NORMAL, False)
        self.assertEqual(client.packets(), [(PacketType.JOB_CREATED, [b"R:1"])])
        worker = Connection(server)
        server.canDo(worker.peer, b"f")
        server.grab(worker.peer, ASSIGN_UNIQ)
        [(_, args)] = worker.packets()
        self.assertEqual(args, [b"R:2", b"f", b"", b"two"])
        server.workComplete(worker.peer, b"R:2", b"R:2\0")
        self.assertEqual(self.dones(), [7])

    def test_restoreThenStore(self) -> None:
        """
        New jobs after a replay get record numbers above every replayed one,
        and a second record of a replayed unique key is forgotten.
        """
        server = JobServer(self.clock, handlePrefix=b"R", queue=self.queue)
        server.restore(QueuedJob(b"f", 41, b"u", b"one", NORMAL, 0))
        server.restore(QueuedJob(b"f", 12, b"u", b"one", NORMAL, 0))
        self.assertEqual(len(server.jobs), 1)
        self.assertEqual(self.dones(), [12])
        client = Connection(server)
        server.submit(client.peer, b"f", b"", b"new", NORMAL, True)
        self.assertEqual([record.key for record, _ in self.adds()], [42])


class PausablePort:
    """
    A listening port that records whether it accepts connections.
    """

    def __init__(self) -> None:
        self.reading = True
        self.stopped = False

    def startReading(self) -> None:
        self.reading = True

    def stopReading(self) -> None:
        self.reading = False

    def stopListening(self):
        self.stopped = True
        return succeed(None)

    def getHost(self):
        return IPv4Address("TCP", "127.0.0.1", 4730)


@implementer(IStreamServerEndpoint)
class PortEndpoint:
    """
    A server endpoint handing out one L{PausablePort}.
    """

    def __init__(self) -> None:
        self.port = PausablePort()

    def listen(self, factory):
        return succeed(self.port)


class ServiceReplayTests(SynchronousTestCase):
    """
    The service replays the queue before it accepts connections.
    """

    def service(self, queue, **kwargs):
        reactor = MemoryReactorClock()
        server = JobServer(reactor, handlePrefix=b"H", queue=queue)
        endpoint = PortEndpoint()
        return GearmanService(GearmanServerFactory(server), [endpoint], reactor, **kwargs), endpoint.port, server

    def test_replayBeforeAccepting(self) -> None:
        """
        The port is bound at once (before twistd drops privileges) but
        accepts nothing until replay is done; then the replayed jobs are
        queued and connections accepted; stopping closes the queue.
        """
        queue = FakeQueue()
        service, port, server = self.service(queue)
        self.assertFalse(server.replaying)
        service.privilegedStartService()
        service.startService()
        self.assertTrue(queue.opened)
        self.assertFalse(port.reading)
        self.assertTrue(server.replaying)
        queue.replayed.callback([QueuedJob(b"f", 1, b"u", b"x", NORMAL, 0)])
        self.assertTrue(port.reading)
        self.assertFalse(server.replaying)
        self.assertEqual(list(server.jobs), [b"H:1"])
        self.successResultOf(service.stopService())
        self.assertTrue(queue.closed)

    def test_replayFails(self) -> None:
        """
        If replay fails the port never accepts and is closed, and the
        failure is logged as one critical line, without a traceback.
        """
        from twisted.internet.testing import EventLoggingObserver
        from twisted.logger import LogLevel, formatEvent, globalLogPublisher

        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        queue = FakeQueue()
        failed: List[bool] = []
        service, port, _ = self.service(queue, exitOnStartFailure=lambda: failed.append(True))
        service.startService()
        self.assertEqual(failed, [])
        queue.replayed.errback(QueueError("corrupt"))
        self.assertFalse(port.reading)
        self.assertTrue(port.stopped)
        self.assertEqual(failed, [True])
        [critical] = [e for e in events if e["log_level"] == LogLevel.critical]
        self.assertEqual(formatEvent(critical), "Cannot start the job server: corrupt")
        self.assertNotIn("log_failure", critical)


    def test_handlesNotStored(self) -> None:
        """
        A queue that replays but cannot store the handle numbers given (so
        the server would give handles given before again after a crash)
        fails the start, in one line, and nothing is accepted.
        """
        from twisted.internet.testing import EventLoggingObserver
        from twisted.logger import LogLevel, formatEvent, globalLogPublisher

        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        queue = FakeQueue()
        queue.keeping = fail(QueueError("READONLY"))
        failed: List[bool] = []
        service, port, server = self.service(queue, exitOnStartFailure=partial(failed.append, True))
        service.startService()
        queue.replayed.callback([])
        self.assertEqual((port.reading, port.stopped, failed, server.replaying), (False, True, [True], True))
        [critical] = [e for e in events if e["log_level"] == LogLevel.critical]
        self.assertEqual(
            formatEvent(critical), "Cannot start the job server: cannot store the handle numbers given: READONLY"
        )

    def test_stoppedWhileReplaying(self) -> None:
        """
        A server stopped while it replays (the queue closed under the
        replay, which then fails, or a replay that ends anyway) logs no
        error, does not stop the reactor again or exit with an error, and
        never accepts on its closed ports.
        """
        from twisted.internet.testing import EventLoggingObserver
        from twisted.logger import LogLevel, globalLogPublisher

        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        for outcome in ("fails", "ends"):
            queue = FakeQueue()
            failed: List[bool] = []
            service, port, _ = self.service(queue, exitOnStartFailure=partial(failed.append, True))
            stops: List[bool] = []
            service.reactor.stop = partial(stops.append, True)  # type: ignore[attr-defined]
            service.startService()
            service.stopService()
            if outcome == "fails":
                queue.replayed.errback(QueueError("redis replay: Lost connection"))
            else:
                queue.replayed.callback([])
            self.assertEqual((port.reading, port.stopped, failed, stops), (False, True, [], []), outcome)
        self.assertEqual([e for e in events if e["log_level"] >= LogLevel.warn], [])


class ForgottenFunctionTests(TestCase):
    """
    A function forgotten once idle and made again keeps the SQLite queue
    right: its jobs are stored, forgotten when done, and replayed by name.
    """

    @inlineCallbacks
    def submit(self, server: JobServer, client: Connection, data: bytes, unique: bytes = b""):
        """
        Submit a background job of C{f}; fire with its handle once the
        queue has stored it (within 10 s).
        """
        server.submit(client.peer, b"f", unique, data, NORMAL, True)
        for _ in range(1000):
            packets = client.packets()
            if packets:
                [(ptype, [handle])] = packets
                self.assertEqual(ptype, PacketType.JOB_CREATED)
                return handle
            yield deferLater(reactor, 0.01, lambda: None)
        self.fail("no JOB_CREATED")

    @inlineCallbacks
    def test_sqlite(self):
        """
        Jobs of a function forgotten twice (C{idleFunctions} 0) are stored
        and deleted as they end; those queued when the server stops are
        replayed into a new server, which makes the function again.
        """
        path = os.path.join(self.mktemp(), "queue.db")
        os.makedirs(os.path.dirname(path))
        queue = SQLiteQueue(path, reactor=reactor)
        yield queue.open()
        server = JobServer(reactor, handlePrefix=b"H", queue=queue, idleFunctions=0)
        client, worker = Connection(server), Connection(server)
        for data in (b"1", b"2"):
            server.canDo(worker.peer, b"f")
            handle = yield self.submit(server, client, data)
            server.grab(worker.peer, ASSIGN)
            self.assertEqual(worker.packets(), [(PacketType.JOB_ASSIGN, [handle, b"f", data])])
            server.workComplete(worker.peer, handle, handle + b"\0")
            server.cantDo(worker.peer, b"f")
            self.assertNotIn(b"f", server.functions)
        for data in (b"3", b"4"):
            yield self.submit(server, client, data, b"u" + data)
        yield queue.close()

        again = SQLiteQueue(path, reactor=reactor)
        yield again.open()
        self.addCleanup(again.close)
        replayed = yield again.replay()
        self.assertEqual(
            [(job.function, job.unique, job.data) for job in replayed], [(b"f", b"u3", b"3"), (b"f", b"u4", b"4")]
        )
        restarted = JobServer(reactor, handlePrefix=b"H", queue=again, idleFunctions=0)
        for job in replayed:
            restarted.restore(job)
        worker = Connection(restarted)
        restarted.canDo(worker.peer, b"f")
        restarted.grab(worker.peer, ASSIGN_UNIQ)
        self.assertEqual(worker.packets(), [(PacketType.JOB_ASSIGN_UNIQ, [b"H:1", b"f", b"u3", b"3"])])
