"""
Tests for L{gearman_tw.server.runqueue}: plain background jobs kept as
compact records, seen from the job server.
"""

from typing import Dict, List

from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.protocol import MAX_ARGUMENT_SIZE, PacketType
from gearman_tw.queues.memory import MemoryQueue
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.model import HIGH, LOW, NO_QUEUES, NORMAL, Function, Job
from gearman_tw.server.protocol import statusPayload
from gearman_tw.server.runqueue import MAX_RECORD_DATA, RunQueue, packRecord, recordNumber, unpackRecord
from tests.test_server_jobs import (
    NO_JOB,
    NOT_FOUND_DATA,
    NOT_FOUND_EXCEPTION,
    NOT_FOUND_RESULT,
    Conn,
    JobServerTestCase,
    StoringQueue,
)

P = PacketType


class QueuedRecordTests(JobServerTestCase):
    """
    Plain background jobs are queued as compact records (QueuedRecord) and
    become L{Job}s only when taken or cancelled; nothing a peer sees
    changes, and the server sees only L{Job}s.
    """

    def isRecord(self, handle: bytes) -> bool:
        number = self.server.handleNumber(handle)
        return number is not None and self.server.runQueue.has(number) and handle not in self.server.jobs

    def test_onlyPlainBackground(self) -> None:
        """
        Only a background job with no unique key, start time or reducer is
        a record; every other submission is a L{Job}.
        """
        client = self.conn()
        self.clock.advance(100)
        plain = client.created(background=True)
        others = [
            client.created(),
            client.created(background=True, unique=b"u"),
            client.created(background=True, unique=b"-"),
            client.created(background=True, when=500),
            client.created(background=True, reducer=b"r"),
        ]
        self.assertTrue(self.isRecord(plain))
        self.assertEqual([self.isRecord(handle) for handle in others], [False] * 5)
        job = self.server.lookup(plain)
        assert job is not None
        self.assertEqual(
            (job.handle, job.function, job.priority, job.data, job.created, job.background, job.unique),
            (plain, self.server.functions[b"f"], NORMAL, b"x", 100.0, True, b""),
        )
        self.assertEqual(self.live(), [b"H:%d" % (number,) for number in range(1, 7)])
        self.assertEqual(self.server.jobCount(), 6)

    def test_persistentQueue(self) -> None:
        """
        With a persistent queue a plain background job is a record too once
        stored, and carries its record number in the queue: a worker takes
        a L{Job} with that L{Job.queueKey}.  Other background jobs are
        L{Job}s from the start.
        """
        stored = JobServer(self.clock, handlePrefix=b"H", queue=StoringQueue())
        client = Conn(stored)
        client.submit(background=True)
        client.submit(background=True, unique=b"u")
        self.assertIsInstance(stored.jobs[b"H:2"], Job)
        self.assertNotIn(b"H:1", stored.jobs)
        self.clock.advance(0)
        self.assertEqual(client.packets(), [(P.JOB_CREATED, [b"H:1"]), (P.JOB_CREATED, [b"H:2"])])
        self.assertTrue(stored.runQueue.has(1))
        self.assertNotIn(b"H:1", stored.jobs)
        worker = Conn(stored)
        worker.canDo(b"f")
        self.assertEqual(worker.take(), (b"H:1", b"x"))
        self.assertEqual((stored.jobs[b"H:1"].queueKey, stored.jobs[b"H:2"].queueKey), (1, 2))
        memory = JobServer(self.clock, handlePrefix=b"H", queue=MemoryQueue())
        Conn(memory).submit(background=True)
        self.assertEqual((list(memory.jobs), len(memory.runQueue), memory.jobCount()), ([], 1, 1))

    def test_packed(self) -> None:
        """
        A record is one bytes object holding every field, whatever their
        sizes: empty data, data with NULs, the largest handle number and a
        function number past 32 bits.
        """
        for fields in (
            (1, 1, NORMAL, b"x", 100.0),
            (0xFFFFFFFF, 2**40, LOW, b"", 1.5e9),
            (7, 3, HIGH, b"\0a\0" * 1000, 0.0),
        ):
            record = packRecord(*fields)
            self.assertIsInstance(record, bytes)
            self.assertEqual(unpackRecord(record), fields)
            self.assertEqual(recordNumber(record), fields[0])

    def test_functionNumbers(self) -> None:
        """
        A record names its function by number, which no other function is
        given, even after functions are dropped: a record taken or looked
        up finds the function it was submitted to.
        """
        client, worker = self.conn(), self.conn()
        first = client.created(b"a", background=True, data=b"1")
        self.assertIs(self.server.dropFunction(b"b"), None)
        client.created(b"b", background=True, data=b"2")
        self.assertIs(self.server.dropFunction(b"a"), False)
        other = self.conn()
        other.canDo(b"b")
        other.complete(other.take()[0])
        other.lose()
        dropped = self.server.functions[b"b"].ident
        self.assertIs(self.server.dropFunction(b"b"), True)
        third = client.created(b"c", background=True, data=b"3")
        idents = [function.ident for function in self.server.functions.values()]
        self.assertEqual(len(set(idents)), 2)
        self.assertNotIn(dropped, idents)
        self.assertEqual(sorted(self.server.runQueue._byIdent), sorted(idents))
        firstJob, thirdJob = self.server.lookup(first), self.server.lookup(third)
        assert firstJob is not None and thirdJob is not None
        self.assertIs(firstJob.function, self.server.functions[b"a"])
        self.assertEqual(thirdJob.function.name, b"c")
        worker.canDo(b"a")
        self.assertEqual(worker.take(), (first, b"1"))

    def test_largeData(self) -> None:
        """
        A background job with more data than L{MAX_RECORD_DATA} is a L{Job}
        holding the very bytes submitted, not a copy.
        """
        client, worker = self.conn(), self.conn()
        small = client.created(background=True, data=b"s" * MAX_RECORD_DATA)
        data = b"l" * (MAX_RECORD_DATA + 1)
        large = client.created(background=True, data=data)
        self.assertTrue(self.isRecord(small))
        self.assertFalse(self.isRecord(large))
        self.assertIs(self.server.jobs[large].data, data)
        worker.canDo(b"f")
        self.assertEqual([worker.take() for _ in range(2)], [(small, b"s" * MAX_RECORD_DATA), (large, data)])

    def test_longFunctionName(self) -> None:
        """
        A plain background job for a function with a name as long as a
        packet argument may be is queued and taken like any other.
        """
        name = b"g" * (MAX_ARGUMENT_SIZE - 1)
        client, worker = self.conn(), self.conn()
        handle = client.created(name, background=True, data=b"d")
        worker.canDo(name)
        self.assertEqual(worker.grab(P.GRAB_JOB), [(P.JOB_ASSIGN, [handle, name, b"d"])])

    def test_fifoWithJobs(self) -> None:
        """
        Records and L{Job}s in one queue are taken in submission order,
        each with its own handle, data and unique key.
        """
        client, worker = self.conn(), self.conn()
        for index in range(6):
            client.created(background=True, data=b"%d" % index, unique=b"u%d" % index if index % 2 else b"")
        worker.canDo(b"f")
        assigned = [args for _, args in (worker.grab()[0] for _ in range(6))]
        self.assertEqual(
            assigned,
            [[b"H:%d" % (i + 1), b"f", b"u%d" % i if i % 2 else b"", b"%d" % i] for i in range(6)],
        )
        self.assertEqual(worker.grab(), [NO_JOB])
        self.assertEqual(self.queued(), [0, 0, 0])

    def test_priorities(self) -> None:
        """
        Records keep their priority: HIGH, NORMAL then LOW.
        """
        client, worker = self.conn(), self.conn()
        for priority in (LOW, NORMAL, HIGH):
            client.created(background=True, priority=priority, data=b"%d" % priority)
        self.assertEqual(self.queued(), [1, 1, 1])
        worker.canDo(b"f")
        self.assertEqual([worker.take()[1] for _ in range(3)], [b"0", b"1", b"2"])

    def test_takenAsJob(self) -> None:
        """
        A worker takes a record as a L{Job} with every field of the
        submission; the time it waited is measured from its submission.
        """
        client, worker = self.conn(), self.conn()
        self.clock.advance(10)
        handle = client.created(background=True, priority=LOW, data=b"d")
        self.clock.advance(3)
        worker.canDo(b"f")
        self.assertEqual(worker.grab(P.GRAB_JOB_ALL), [(P.JOB_ASSIGN_UNIQ, [handle, b"f", b"", b"d"])])
        job = self.server.jobs[handle]
        self.assertEqual(list(worker.peer.held), [job])
        self.assertEqual(
            (job.handle, job.function.name, job.unique, job.data, job.priority, job.created, job.started),
            (handle, b"f", b"", b"d", LOW, 10.0, 13.0),
        )
        self.assertEqual((job.background, job.persisted, job.reducer, job.key, job.when), (True, True, None, None, 0))
        self.assertEqual(self.server.stats.wait.total, 3.0)
        self.assertEqual(self.status(), (1, 1, 1))
        worker.complete(handle)
        self.assertEqual(worker.packets(), [])
        self.assertNotIn(handle, self.server.jobs)
        self.assertEqual(self.status(), (0, 0, 1))

    def test_lookup(self) -> None:
        """
        L{JobServer.lookup} of a queued record gives a L{Job} copy and
        changes nothing: the record stays queued, and the next worker gets
        the job.
        """
        client, worker = self.conn(), self.conn()
        first = client.created(background=True, data=b"a")
        second = client.created(background=True, data=b"b")
        job = self.server.lookup(second)
        assert job is not None
        self.assertEqual((job.handle, job.data, job.background, job.worker), (second, b"b", True, None))
        self.assertIsNot(self.server.lookup(second), job)
        self.assertTrue(self.isRecord(second))
        self.assertEqual(self.server.jobCount(), 2)
        for unknown in (b"H:99", b"H:01", b"H:+1", b"H:", b"H:1x", b"G:1", b"1", b"H:" + b"1" * 5000):
            self.assertIsNone(self.server.lookup(unknown), unknown)
            self.assertEqual(statusPayload(self.server.getStatus(unknown)), unknown + b"\x000\x000\x000\x000")
        worker.canDo(b"f")
        self.assertEqual(worker.take(), (first, b"a"))
        self.assertEqual(worker.take(), (second, b"b"))
        self.assertEqual(list(worker.peer.held), [self.server.jobs[first], self.server.jobs[second]])
        self.assertEqual(self.queued(), [0, 0, 0])

    def test_liveJobs(self) -> None:
        """
        L{JobServer.liveJobs} lists jobs and records alike, as L{Job}s.
        """
        client = self.conn()
        record = client.created(background=True, data=b"r")
        job = client.created(data=b"j")
        self.assertEqual(
            sorted((j.handle, j.data, j.background) for j in self.server.liveJobs()),
            [(record, b"r", True), (job, b"j", False)],
        )

    def test_status(self) -> None:
        """
        GET_STATUS knows a queued record (not running, no progress) without
        turning it into a L{Job}.
        """
        handle = self.conn().created(background=True)
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x001\x000\x000\x000")
        self.assertTrue(self.isRecord(handle))

    def test_resultForQueued(self) -> None:
        """
        Work packets naming a queued record's handle are refused as for any
        job the worker does not hold.
        """
        handle = self.conn().created(background=True)
        worker = self.conn()
        worker.canDo(b"f")
        worker.data(handle)
        worker.complete(handle)
        worker.exception(handle)
        self.assertEqual(worker.packets(), [NOT_FOUND_DATA, NOT_FOUND_RESULT, NOT_FOUND_EXCEPTION])
        self.assertEqual(self.status(), (1, 0, 1))

    def test_cancel(self) -> None:
        """
        A cancelled record stays counted until a GRAB reaps it, as a
        cancelled L{Job} does; the next job runs.
        """
        client, worker = self.conn(), self.conn()
        handle = client.created(background=True)
        client.created(background=True, data=b"next")
        self.assertTrue(self.server.cancel(handle))
        cancelled = self.server.lookup(handle)
        assert cancelled is not None
        self.assertTrue(cancelled.ignore)
        self.assertIs(self.server.jobs[handle], cancelled)
        self.assertEqual(self.status(), (2, 0, 0))
        self.assertTrue(self.server.hasWork())
        worker.canDo(b"f")
        self.assertEqual(worker.take(), (b"H:2", b"next"))
        self.assertNotIn(handle, self.server.jobs)
        self.assertFalse(self.server.cancel(handle))
        self.assertEqual(self.status(), (1, 1, 1))

    def test_hasWork(self) -> None:
        """
        A queued record is work; once cancelled it is not.
        """
        handle = self.conn().created(background=True)
        self.assertTrue(self.server.hasWork())
        self.server.cancel(handle)
        self.assertFalse(self.server.hasWork())

    def test_requeued(self) -> None:
        """
        A record a worker took and lost is requeued as its L{Job} and run
        again with the same handle and data.
        """
        client, worker = self.conn(), self.conn()
        handle = client.created(background=True, data=b"d")
        worker.canDo(b"f")
        worker.take()
        worker.lose()
        other = self.conn()
        other.canDo(b"f")
        self.assertEqual(other.take(), (handle, b"d"))
        job = self.server.lookup(handle)
        assert job is not None
        self.assertEqual(job.retries, 1)


class RunQueueTests(SynchronousTestCase):
    """
    L{RunQueue} on its own: records and jobs in one FIFO per priority.
    """

    def setUp(self) -> None:
        self.jobs: Dict[bytes, Job] = {}
        self.freed: List[Job] = []
        self.busy: List[Function] = []
        self.queue = RunQueue(self.jobs, lambda number: b"H:%d" % number, self.freed.append, self.busy.append)
        self.function = Function(b"f", 7)

    def job(self, number: int, priority: int = NORMAL) -> Job:
        job = Job(b"H:%d" % number, self.function, b"u", b"u", b"j", priority, False, 0, None)
        self.jobs[job.handle] = job
        return job

    def test_order(self) -> None:
        """
        C{take} gives HIGH before NORMAL before LOW, each in the order
        pushed, records as L{Job}s that join C{jobs}; C{busy} hears of the
        function's first queue once.
        """
        self.queue.pushRecord(self.function, 1, LOW, b"r1", 5.0)
        second = self.job(2)
        self.queue.push(second)
        self.queue.pushRecord(self.function, 3, NORMAL, b"r3", 6.0)
        self.queue.pushRecord(self.function, 4, HIGH, b"r4", 7.0)
        self.assertEqual(self.busy, [self.function])
        self.assertEqual((len(self.queue), self.function.queued), (3, [1, 2, 1]))
        taken = [self.queue.take(self.function) for _ in range(5)]
        self.assertIs(taken[1], second)
        self.assertIsNone(taken[4])
        self.assertEqual(
            [(job.handle, job.data, job.priority) for job in taken[:4] if job is not None],
            [(b"H:4", b"r4", HIGH), (b"H:2", b"j", NORMAL), (b"H:3", b"r3", NORMAL), (b"H:1", b"r1", LOW)],
        )
        self.assertEqual(sorted(self.jobs), [b"H:1", b"H:2", b"H:3", b"H:4"])
        self.assertEqual(len(self.queue), 0)

    def test_findChangesNothing(self) -> None:
        """
        C{find} makes a copy each time and leaves the record queued.
        """
        self.queue.pushRecord(self.function, 1, NORMAL, b"r", 5.0)
        first, second = self.queue.find(1), self.queue.find(1)
        assert first is not None
        self.assertIsNot(first, second)
        self.assertEqual((first.handle, first.function, first.data, first.created), (b"H:1", self.function, b"r", 5.0))
        self.assertEqual((self.jobs, len(self.queue), self.queue.has(1)), ({}, 1, True))
        self.assertIsNone(self.queue.find(2))

    def test_detach(self) -> None:
        """
        A detached record is a L{Job} in C{jobs} at once; its queue entry
        frees it when reached, and the next job is taken.
        """
        self.queue.pushRecord(self.function, 1, NORMAL, b"r1", 5.0)
        self.queue.pushRecord(self.function, 2, NORMAL, b"r2", 5.0)
        detached = self.queue.detach(1)
        assert detached is not None
        self.assertIs(self.jobs[b"H:1"], detached)
        self.assertIsNone(self.queue.detach(1))
        self.assertFalse(self.queue.has(1))
        taken = self.queue.take(self.function)
        assert taken is not None
        self.assertEqual((taken.handle, self.freed), (b"H:2", [detached]))

    def test_ignoredJobsFreed(self) -> None:
        """
        Cancelled or abandoned L{Job}s at a queue's head are freed on the
        way to the next live job; only live jobs count for C{hasLive}.
        """
        dead = self.job(1)
        self.queue.push(dead)
        dead.ignore = True
        self.assertFalse(self.queue.hasLive())
        live = self.job(2)
        self.queue.push(live)
        self.assertTrue(self.queue.hasLive())
        self.assertIs(self.queue.take(self.function), live)
        self.assertEqual(self.freed, [dead])

    def test_retire(self) -> None:
        """
        A retired function gives up its queues and is no longer listed as
        having work; its next job makes it busy again.
        """
        self.queue.push(self.job(1))
        self.assertEqual(self.queue.withWork(), [self.function])
        self.queue.take(self.function)
        self.queue.retire(self.function)
        self.assertEqual((self.function.queues, self.queue.withWork()), (NO_QUEUES, []))
        self.queue.push(self.job(2))
        self.assertEqual(self.busy, [self.function, self.function])
