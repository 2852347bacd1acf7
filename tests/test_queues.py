"""
Tests for the persistent queue backends: one mixin, run for every backend.
"""

import os
import sqlite3
import tempfile

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from gearman_tw.errors import QueueError
from gearman_tw.interfaces import IPersistentQueue
from gearman_tw.queues import QueuedJob, queueFromURL
from gearman_tw.queues.memory import MemoryQueue
from gearman_tw.queues.redis import RedisQueue, decodeRecord, encodeRecord
from gearman_tw.queues.sqlite import SQLiteQueue
from tests.redisserver import RedisServer


def job(n: int, **kwargs) -> QueuedJob:
    fields = dict(function=b"f", key=b"k%d" % n, unique=b"k%d" % n, data=b"data\0%d" % n, priority=1, when=0)
    fields.update(kwargs)
    return QueuedJob(**fields)


class PersistentQueueMixin:
    """
    The IPersistentQueue contract, for a backend made by L{makeQueue}.
    """

    timeout = 60

    def makeQueue(self):
        raise NotImplementedError()

    @inlineCallbacks
    def openQueue(self):
        queue = self.makeQueue()
        yield queue.open()
        self.addCleanup(queue.close)
        return queue

    def test_interface(self):
        """
        The backend provides IPersistentQueue.
        """
        self.assertTrue(verifyObject(IPersistentQueue, self.makeQueue()))

    @inlineCallbacks
    def test_addReplay(self):
        """
        Added jobs come back from replay in order with every field intact.
        """
        queue = yield self.openQueue()
        jobs = [
            job(1, priority=0),
            job(2, priority=2, when=1900000000),
            job(3, function=b"other", data=b"\xff" * 1000),
            job(4, key=b"\0generated", unique=b""),
        ]
        yield gatherResults([queue.add(j) for j in jobs])
        replayed = yield queue.replay()
        self.assertEqual(replayed, jobs)

    @inlineCallbacks
    def test_done(self):
        """
        A job marked done is not replayed; done for an unknown job is fine.
        """
        queue = yield self.openQueue()
        yield gatherResults([queue.add(job(n)) for n in range(5)])
        yield gatherResults([queue.done(b"f", b"k1"), queue.done(b"f", b"k3"), queue.done(b"f", b"nope")])
        replayed = yield queue.replay()
        self.assertEqual([j.key for j in replayed], [b"k0", b"k2", b"k4"])

    @inlineCallbacks
    def test_sameKeyOtherFunction(self):
        """
        The same key under two functions is two jobs.
        """
        queue = yield self.openQueue()
        yield queue.add(job(1, function=b"a"))
        yield queue.add(job(1, function=b"b"))
        yield queue.done(b"a", b"k1")
        self.assertEqual([j.function for j in (yield queue.replay())], [b"b"])

    @inlineCallbacks
    def test_survivesReopen(self):
        """
        Jobs added and not done are still there after closing and reopening.
        """
        queue = self.makeQueue()
        yield queue.open()
        yield gatherResults([queue.add(job(n)) for n in range(100)])
        yield gatherResults([queue.done(b"f", b"k%d" % n) for n in range(0, 100, 2)])
        yield queue.close()
        again = yield self.openQueue()
        replayed = yield again.replay()
        self.assertEqual([j.key for j in replayed], [b"k%d" % n for n in range(1, 100, 2)])


class SQLiteQueueTests(PersistentQueueMixin, TestCase):
    """
    The SQLite backend.
    """

    def setUp(self):
        self.path = os.path.join(tempfile.mkdtemp(), "queue.db")

    def makeQueue(self):
        return SQLiteQueue(self.path, reactor=reactor)

    @inlineCallbacks
    def test_groupCommit(self):
        """
        Jobs added while a commit is in flight share the next transaction.
        """
        queue = yield self.openQueue()
        before = queue.commits
        yield gatherResults([queue.add(job(n)) for n in range(500)])
        self.assertLessEqual(queue.commits - before, 2)
        self.assertEqual(len((yield queue.replay())), 500)

    @inlineCallbacks
    def test_gearmandLayout(self):
        """
        The table is gearmand's, so its queue files replay here: a row it
        wrote (text columns, empty unique) comes back as a job.
        """
        connection = sqlite3.connect(self.path)
        connection.execute(
            "CREATE TABLE gearman_queue (unique_key TEXT, function_name TEXT, priority INTEGER, "
            "data BLOB, when_to_run INTEGER, PRIMARY KEY(unique_key, function_name))"
        )
        connection.execute("INSERT INTO gearman_queue VALUES ('u1', 'fn', 2, X'0001', 0)")
        connection.commit()
        connection.close()
        queue = yield self.openQueue()
        self.assertEqual((yield queue.replay()), [QueuedJob(b"fn", b"u1", b"u1", b"\0\1", 2, 0)])

    @inlineCallbacks
    def test_openFails(self):
        """
        A database in a missing directory fails open() with QueueError.
        """
        queue = SQLiteQueue("/nonexistent/dir/q.db", reactor=reactor)
        yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()

    @inlineCallbacks
    def test_commitFails(self):
        """
        A failing commit fails every add in it with QueueError, and the queue
        goes on working.
        """
        queue = yield self.openQueue()
        yield self.assertFailure(queue.add(job(1, data=object())), QueueError)  # type: ignore[arg-type]
        yield queue.add(job(2))
        self.assertEqual([j.key for j in (yield queue.replay())], [b"k2"])
        self.flushLoggedErrors()


class RedisQueueTests(PersistentQueueMixin, TestCase):
    """
    The Redis backend, against a real redis-server.
    """

    def setUp(self):
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)

    def makeQueue(self, namespace="test"):
        return RedisQueue(port=self.redis.port, namespace=namespace, reactor=reactor, timeout=5)

    @inlineCallbacks
    def test_namespaces(self):
        """
        Two namespaces in one Redis keep their jobs apart.
        """
        first = yield self.openQueue()
        second = self.makeQueue("other")
        yield second.open()
        self.addCleanup(second.close)
        yield first.add(job(1))
        yield second.add(job(2))
        self.assertEqual([j.key for j in (yield first.replay())], [b"k1"])
        self.assertEqual([j.key for j in (yield second.replay())], [b"k2"])

    @inlineCallbacks
    def test_reconnects(self):
        """
        After Redis restarts, the same queue reconnects by itself and loses
        nothing acknowledged.
        """
        queue = yield self.openQueue()
        yield queue.add(job(1))
        self.redis.kill()
        self.redis.start()
        for attempt in range(50):
            try:
                yield queue.add(job(2))
                break
            except QueueError:
                d = Deferred()
                reactor.callLater(0.1, d.callback, None)
                yield d
        self.assertEqual([j.key for j in (yield queue.replay())], [b"k1", b"k2"])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_redisDown(self):
        """
        With Redis gone, adds fail with QueueError within the timeout.
        """
        queue = RedisQueue(port=self.redis.port, reactor=reactor, timeout=1)
        yield queue.open()
        self.addCleanup(queue.close)
        self.redis.stop()
        yield self.assertFailure(queue.add(job(1)), QueueError)
        self.flushLoggedErrors()


class MemoryQueueTests(SynchronousTestCase):
    """
    The memory queue stores nothing.
    """

    def test_nothing(self):
        """
        It provides the interface and replays nothing.
        """
        queue = MemoryQueue()
        self.assertTrue(verifyObject(IPersistentQueue, queue))
        self.successResultOf(queue.add(job(1)))
        self.assertEqual(self.successResultOf(queue.replay()), [])


class RecordTests(SynchronousTestCase):
    """
    The Redis record format.
    """

    def test_roundTrip(self):
        """
        A record decodes to what was encoded.
        """
        original = job(7, function=b"f:n", key=b"\0gen", unique=b"", when=123, priority=2)
        self.assertEqual(decodeRecord(encodeRecord(42, original)), (42, original))


class QueueFromURLTests(SynchronousTestCase):
    """
    Tests for L{queueFromURL}.
    """

    def test_urls(self):
        """
        memory, sqlite:PATH and redis:// URLs name their backends.
        """
        self.assertIsInstance(queueFromURL(None), MemoryQueue)
        self.assertIsInstance(queueFromURL("memory"), MemoryQueue)
        queue = queueFromURL("sqlite:/tmp/x.db", reactor)
        self.assertEqual(queue.path, "/tmp/x.db")
        queue = queueFromURL("redis://:secret@127.0.0.1:6380/2?namespace=ns", reactor)
        self.assertEqual(
            (queue.host, queue.port, queue.database, queue.password, queue.namespace),
            ("127.0.0.1", 6380, 2, "secret", "ns"),
        )

    def test_bad(self):
        """
        Unknown schemes and malformed URLs are QueueErrors.
        """
        for url in ("mysql://x", "sqlite:", "redis://h/notanumber"):
            self.assertRaises(QueueError, queueFromURL, url)
