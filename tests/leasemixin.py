"""
The L{ILease} contract and the fenced writes of a queue that made a lease:
one mixin, run for every backend with a lease (Redis, Redis behind
Sentinel, PostgreSQL, MySQL), as L{tests.test_queues.PersistentQueueMixin}
is for L{IPersistentQueue}.
"""

from typing import Any, Type

from twisted.internet.defer import gatherResults, inlineCallbacks
from zope.interface.verify import verifyObject

from gearman_tw.errors import QueueError
from gearman_tw.interfaces import ILease
from tests.mixins import TestCaseMixin
from tests.test_queues import job, sleep


class LeaseContractMixin(TestCaseMixin):
    """
    The lease of a queue made by L{makeQueue}, and its fenced writes.

    @ivar leaseType: the class of the backend's leases.
    @ivar ttl: the seconds of a lease the tests let expire: short, but long
        enough for the backend to answer a few commands within it.
    @ivar expiry: how long the tests wait for such a lease to expire: a
        little more than C{ttl}.
    @ivar fencedAdd: what the failure of a fenced add says, exactly.
    @ivar fenced: what the failure of every fenced write says.
    """

    leaseType: Type[Any]
    ttl: float
    expiry: float
    fencedAdd: str
    fenced: str

    def makeQueue(self) -> Any:
        """
        A queue of the backend, not opened, closed when the test ends; every
        queue a test makes shares its jobs and its lease.
        """
        raise NotImplementedError()

    @inlineCallbacks
    def openQueue(self) -> Any:
        """
        A queue from L{makeQueue}, opened.
        """
        queue = self.makeQueue()
        yield queue.open()
        return queue

    def snapshot(self) -> Any:
        """
        What the backend stores, seen directly (not through a queue), to
        show that fenced writes change nothing; by default nothing (the
        tests then look through the queues' reads only).
        """
        return None

    @inlineCallbacks
    def test_provider(self):
        """
        The queue's C{lease} makes an L{ILease} with the given time.
        """
        queue = yield self.openQueue()
        lease = queue.lease(b"a", 2.5)
        self.assertIsInstance(lease, self.leaseType)
        self.assertTrue(verifyObject(ILease, lease))
        self.assertEqual(lease.ttl, 2.5)

    @inlineCallbacks
    def test_oneHolder(self):
        """
        One holder at a time; it may renew and take it again; once released
        (or expired, by the backend's clock) another takes it, and the one
        it expired for can no longer renew it; its own expired lease, a
        holder takes again.
        """
        first, second = (yield self.openQueue()), (yield self.openQueue())
        a, b = first.lease(b"a", self.ttl), second.lease(b"b", self.ttl)
        self.assertTrue((yield a.acquire()))
        self.assertFalse((yield b.acquire()))
        self.assertTrue((yield a.renew()))
        self.assertTrue((yield a.acquire()))
        self.assertFalse((yield b.renew()))
        yield b.release()
        self.assertFalse((yield b.acquire()))
        yield a.release()
        self.assertTrue((yield b.acquire()))
        self.assertFalse((yield a.acquire()))
        yield sleep(self.expiry)
        self.assertFalse((yield b.renew()))
        self.assertTrue((yield a.acquire()))
        self.assertFalse((yield b.renew()))
        self.assertFalse((yield b.acquire()))
        yield sleep(self.expiry)
        # Its own, expired: taken again.
        self.assertTrue((yield a.acquire()))
        self.assertFalse((yield b.acquire()))

    @inlineCallbacks
    def test_acquireOpens(self):
        """
        Acquiring opens the queue if it is not open; opening it again (as
        the job server does once the lease is held) does nothing more.
        """
        queue = self.makeQueue()
        lease = queue.lease(b"a", 30)
        self.assertTrue((yield lease.acquire()))
        opened = queue.open()
        self.assertTrue(opened.called)
        yield opened
        yield gatherResults([queue.open(), queue.open()])
        yield queue.add(job(1))
        self.assertEqual((yield queue.replay()), [job(1)])

    @inlineCallbacks
    def test_fencedWrites(self):
        """
        A queue that made a lease writes only while its holder holds it:
        adds, dones, updates and keeps of a server that lost it fail with
        L{QueueError} saying so, and change nothing; its reads are not
        fenced; once the lease passes, the roles swap.
        """
        first, second = (yield self.openQueue()), (yield self.openQueue())
        a, b = first.lease(b"a", 30), second.lease(b"b", 30)
        self.assertTrue((yield a.acquire()))
        yield first.addMany([job(1), job(2), job(3)])
        yield first.done(1)
        yield first.keep(b"dead", [(b"x", b"y")], [], [])
        before = self.snapshot()
        failure = yield self.assertFailure(second.add(job(4)), QueueError)
        self.assertEqual(str(failure), self.fencedAdd)
        writes = [
            second.addMany([job(5), job(6)]),
            second.done(2),
            second.doneMany([3]),
            second.update([job(2, attempts=5, due=9.5)]),
            second.keep(b"dead", [(b"2", b"letter")], [2], [b"x"]),
        ]
        for d in writes:
            failure = yield self.assertFailure(d, QueueError)
            self.assertIn(self.fenced, str(failure))
        self.assertEqual(self.snapshot(), before)
        # Reads are not fenced.
        self.assertEqual([j.key for j in (yield second.replay())], [2, 3])
        self.assertEqual((yield second.kept(b"dead")), [(b"x", b"y")])
        self.assertEqual([j.key for j in (yield first.replay())], [2, 3])
        self.assertEqual((yield first.kept(b"dead")), [(b"x", b"y")])
        # Once the lease passes, the roles swap (the backends that keep
        # failed deletes to retry them may delete 2 and 3 by now).
        yield a.release()
        self.assertTrue((yield b.acquire()))
        yield self.assertFailure(first.add(job(7)), QueueError)
        yield second.add(job(8))
        self.assertEqual([j.key for j in (yield first.replay()) if j.key > 3], [8])
        self.flushLoggedErrors(QueueError)

    @inlineCallbacks
    def test_expiredHolderFenced(self):
        """
        A holder whose lease expired (by the backend's clock) writes
        nothing, even before another server takes it; taken again, it
        writes.
        """
        queue = yield self.openQueue()
        lease = queue.lease(b"a", self.ttl)
        self.assertTrue((yield lease.acquire()))
        yield queue.add(job(1))
        yield sleep(self.expiry)
        failure = yield self.assertFailure(queue.add(job(2)), QueueError)
        self.assertEqual(str(failure), self.fencedAdd)
        self.assertTrue((yield lease.acquire()))
        yield queue.add(job(3))
        self.assertEqual([j.key for j in (yield queue.replay())], [1, 3])
        self.flushLoggedErrors(QueueError)

    @inlineCallbacks
    def test_leaseNeverTakenFences(self):
        """
        A queue that made a lease but never took it writes nothing, while
        another server holds it or while nobody does.
        """
        fenced = yield self.openQueue()
        fenced.lease(b"c", 30)
        yield self.assertFailure(fenced.add(job(1)), QueueError)
        holder = yield self.openQueue()
        self.assertTrue((yield holder.lease(b"someone", 30).acquire()))
        yield holder.add(job(2))
        yield self.assertFailure(fenced.add(job(3)), QueueError)
        self.assertEqual([j.key for j in (yield fenced.replay())], [2])
        self.flushLoggedErrors(QueueError)

    @inlineCallbacks
    def test_unfencedUnchanged(self):
        """
        Without a lease, writes are not fenced, even while another server
        holds the lease.
        """
        holder = yield self.openQueue()
        self.assertTrue((yield holder.lease(b"someone", 30).acquire()))
        queue = yield self.openQueue()
        yield queue.add(job(1))
        yield queue.addMany([job(2), job(3)])
        yield queue.done(1)
        yield queue.doneMany([4])
        yield queue.update([job(2, attempts=1)])
        yield queue.keep(b"k", [(b"i", b"v")], [3], [])
        self.assertEqual((yield queue.replay()), [job(2, attempts=1)])
        self.assertEqual((yield queue.kept(b"k")), [(b"i", b"v")])
