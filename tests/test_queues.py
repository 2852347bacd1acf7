"""
Tests for the persistent queue backends: one mixin, run for every backend.
"""

import os
import shutil
import sqlite3
import struct
import sys
import tempfile
from typing import Any, Dict, List, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from gearman_tw import queues
from gearman_tw.errors import QueueError
from gearman_tw.interfaces import IPersistentQueue
from gearman_tw.queues import QueuedJob, queueFromURL
from gearman_tw.queues import sqlite as sqlitequeue
from gearman_tw.queues.memory import MemoryQueue
from gearman_tw.queues.records import decodeRecords, encodeRecord, encodeRecords
from gearman_tw.queues.redis import Encoded, RedisQueue, _encodeFields
from gearman_tw.queues.sqlite import SQLiteQueue
from tests.integration.servers import freePort
from tests.mixins import TestCaseMixin
from tests.redisserver import RedisServer


def job(n: int, **kwargs: Any) -> QueuedJob:
    fields: Dict[str, Any] = dict(function=b"f", key=n, unique=b"k%d" % n, data=b"data\0%d" % n, priority=1, when=0)
    fields.update(kwargs)
    return QueuedJob(**fields)


class OnlySequence(Sequence[QueuedJob]):
    """
    A sequence that is nothing more: no list, no tuple.
    """

    def __init__(self, jobs: List[QueuedJob]) -> None:
        self._jobs = jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        return self._jobs[index]


class PersistentQueueMixin(TestCaseMixin):
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
            job(4, unique=b""),
            job(5, data=b""),
        ]
        yield gatherResults([queue.add(j) for j in jobs])
        replayed = yield queue.replay()
        self.assertEqual(replayed, jobs)

    @inlineCallbacks
    def test_replayInKeyOrder(self):
        """
        Replay follows the record keys, whatever their order within one
        addMany.
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(5), job(2)])
        yield queue.add(job(9))
        yield queue.add(job(12))
        self.assertEqual([j.key for j in (yield queue.replay())], [2, 5, 9, 12])

    @inlineCallbacks
    def test_addSequence(self):
        """
        An addMany takes any sequence of jobs, as the job server gives one
        that makes each job as it is read (L{BatchJobs}).
        """
        queue = yield self.openQueue()
        yield queue.addMany(OnlySequence([job(3), job(4, data=b"four")]))
        self.assertEqual((yield queue.replay()), [job(3), job(4, data=b"four")])

    @inlineCallbacks
    def test_sameUniqueTwice(self):
        """
        Two records with one unique key are two records (the job server
        decides what coalesces).
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(1, unique=b"u"), job(2, unique=b"u")])
        yield queue.done(1)
        self.assertEqual((yield queue.replay()), [job(2, unique=b"u")])

    @inlineCallbacks
    def test_done(self):
        """
        A job marked done is not replayed; done for an unknown job is fine.
        """
        queue = yield self.openQueue()
        yield gatherResults([queue.add(job(n)) for n in range(5)])
        yield gatherResults([queue.done(1), queue.doneMany([3, 99])])
        replayed = yield queue.replay()
        self.assertEqual([j.key for j in replayed], [0, 2, 4])

    @inlineCallbacks
    def test_manyAtOnce(self):
        """
        Batches larger than one statement are stored and deleted whole.
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(n) for n in range(2500)])
        yield queue.doneMany(list(range(0, 2500, 2)))
        self.assertEqual([j.key for j in (yield queue.replay())], list(range(1, 2500, 2)))

    @inlineCallbacks
    def test_survivesReopen(self):
        """
        Jobs added and not done are still there after closing and reopening.
        """
        queue = self.makeQueue()
        yield queue.open()
        self.addCleanup(queue.close)
        yield gatherResults([queue.add(job(n)) for n in range(100)])
        yield gatherResults([queue.done(n) for n in range(0, 100, 2)])
        yield queue.close()
        again = yield self.openQueue()
        replayed = yield again.replay()
        self.assertEqual([j.key for j in replayed], list(range(1, 100, 2)))

    @inlineCallbacks
    def test_update(self):
        """
        An updated job replays with its attempts and due time, also after a
        reopen; its key and place are unchanged.
        """
        queue = self.makeQueue()
        yield queue.open()
        self.addCleanup(queue.close)
        yield queue.addMany([job(1), job(2), job(3)])
        yield queue.update([job(2, attempts=3, due=1900000000.25)])
        yield queue.update([job(2, attempts=4, due=1900000001.5)])
        expected = [job(1), job(2, attempts=4, due=1900000001.5), job(3)]
        self.assertEqual((yield queue.replay()), expected)
        yield queue.close()
        again = yield self.openQueue()
        self.assertEqual((yield again.replay()), expected)

    @inlineCallbacks
    def test_updateNotStored(self):
        """
        An update of a job done (or never stored) stores nothing.
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(1), job(2)])
        yield queue.done(2)
        yield queue.update([job(2, attempts=1), job(7, attempts=1)])
        self.assertEqual((yield queue.replay()), [job(1)])

    @inlineCallbacks
    def test_updateThenDone(self):
        """
        A job updated and then done is not replayed, nor its update.
        """
        queue = self.makeQueue()
        yield queue.open()
        self.addCleanup(queue.close)
        yield queue.addMany([job(n) for n in range(1, 5)])
        yield gatherResults([queue.update([job(n, attempts=1) for n in range(1, 5)]), queue.doneMany([1, 2, 3])])
        self.assertEqual((yield queue.replay()), [job(4, attempts=1)])
        yield queue.done(4)
        yield queue.close()
        again = yield self.openQueue()
        self.assertEqual((yield again.replay()), [])

    @inlineCallbacks
    def test_keep(self):
        """
        Records of a kind are kept, replaced by ident, dropped, and kept
        apart from other kinds; keeping forgets the jobs named with it.
        """
        queue = self.makeQueue()
        yield queue.open()
        self.addCleanup(queue.close)
        yield queue.addMany([job(1), job(2), job(3)])
        yield queue.keep(b"letters", [(b"1", b"one"), (b"2", b"two\0")], [1], [])
        yield queue.keep(b"other", [(b"1", b"x")], [], [])
        yield queue.keep(b"letters", [(b"2", b"TWO"), (b"3", b"three")], [3, 99], [b"1", b"404"])
        self.assertEqual(sorted((yield queue.kept(b"letters"))), [(b"2", b"TWO"), (b"3", b"three")])
        self.assertEqual((yield queue.kept(b"other")), [(b"1", b"x")])
        self.assertEqual((yield queue.kept(b"none")), [])
        self.assertEqual((yield queue.replay()), [job(2)])
        yield queue.close()
        again = yield self.openQueue()
        self.assertEqual(sorted((yield again.kept(b"letters"))), [(b"2", b"TWO"), (b"3", b"three")])
        self.assertEqual((yield again.replay()), [job(2)])

    @inlineCallbacks
    def test_keepMany(self):
        """
        Changes larger than one statement are made whole.
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(n) for n in range(1200)])
        records = [(b"%d" % n, b"v%d" % n) for n in range(1200)]
        yield queue.keep(b"k", records, list(range(0, 1200, 2)), [])
        self.assertEqual(len((yield queue.kept(b"k"))), 1200)
        self.assertEqual([j.key for j in (yield queue.replay())], list(range(1, 1200, 2)))
        yield queue.keep(b"k", [], [], [ident for ident, _ in records[:1100]])
        self.assertEqual(sorted((yield queue.kept(b"k"))), sorted(records[1100:]))


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
    def test_takesOverGearmandTable(self):
        """
        A file with gearmand's libsqlite3 table is taken over: its rows (text
        columns, empty unique, or a key gearman_tw 0.1 generated) move into
        our table after the jobs already there, in their order, and gearmand's
        table is gone; the next record number goes on from there.
        """
        queue = SQLiteQueue(self.path, reactor=reactor)
        yield queue.open()
        yield queue.add(job(1))
        yield queue.close()
        connection = sqlite3.connect(self.path)
        connection.execute(
            "CREATE TABLE gearman_queue (unique_key TEXT, function_name TEXT, priority INTEGER, "
            "data BLOB, when_to_run INTEGER, PRIMARY KEY(unique_key, function_name))"
        )
        connection.execute("INSERT INTO gearman_queue VALUES ('u1', 'fn', 2, X'0001', 0)")
        connection.execute("INSERT INTO gearman_queue VALUES ('', 'fn', 0, 'text', 1900000000)")
        connection.execute("INSERT INTO gearman_queue VALUES (X'00613a31', 'g', 1, X'', 0)")
        connection.commit()
        connection.close()
        queue = yield self.openQueue()
        self.assertEqual(
            (yield queue.replay()),
            [
                job(1),
                QueuedJob(b"fn", 2, b"u1", b"\0\1", 2, 0),
                QueuedJob(b"fn", 3, b"", b"text", 0, 1900000000),
                QueuedJob(b"g", 4, b"", b"", 1, 0),
            ],
        )
        yield queue.close()
        connection = sqlite3.connect(self.path)
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        connection.close()
        self.assertEqual(
            sorted(tables), ["gearman_tw_batches", "gearman_tw_done", "gearman_tw_kept", "gearman_tw_updates"]
        )

    def test_gearmandTableNameRefused(self):
        """
        gearmand's table name is not one of ours.
        """
        self.assertRaises(QueueError, SQLiteQueue, self.path, table="gearman_queue")

    @inlineCallbacks
    def test_noDirectory(self):
        """
        A path in a folder that does not exist fails to open with a
        QueueError naming the file and the folder.
        """
        directory = os.path.join(os.path.dirname(self.path), "missing")
        path = os.path.join(directory, "queue.db")
        queue = SQLiteQueue(path, reactor=reactor)
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertEqual(str(failure), "cannot open %s: no such directory %s" % (path, directory))

    @inlineCallbacks
    def test_threadStopsWithReactor(self):
        """
        The database thread stops when the reactor shuts down, as the
        reactor's own pool does, so a queue never keeps the process alive;
        close() withdraws that trigger.
        """

        class Recording:
            def __init__(self):
                self.triggers = {}

            def __getattr__(self, name):
                return getattr(reactor, name)

            def addSystemEventTrigger(self, phase, event, f):
                self.triggers[len(self.triggers) + 1] = (phase, event, f)
                return len(self.triggers)

            def removeSystemEventTrigger(self, trigger):
                del self.triggers[trigger]

        recording = Recording()
        queue = SQLiteQueue(self.path, reactor=recording)
        yield queue.open()
        [(phase, event, stop)] = recording.triggers.values()
        self.assertEqual((phase, event), ("during", "shutdown"))
        self.assertEqual(stop, queue._pool.stop)
        yield queue.close()
        self.assertEqual(recording.triggers, {})

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
        self.sql("ALTER TABLE gearman_tw_batches RENAME TO hidden")
        yield self.assertFailure(queue.add(job(1)), QueueError)
        self.sql("ALTER TABLE hidden RENAME TO gearman_tw_batches")
        yield queue.add(job(2))
        self.assertEqual([j.key for j in (yield queue.replay())], [2])
        self.flushLoggedErrors()

    def sql(self, statement, *parameters):
        """
        Run one statement on the queue's file from another connection.
        """
        connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            return connection.execute(statement, parameters).fetchall()
        finally:
            connection.close()

    @inlineCallbacks
    def test_oneRowPerBatch(self):
        """
        An addMany is one row; finished jobs are rows of the done table
        until their whole batch has finished, when both go.
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(1), job(2), job(3)])
        yield queue.add(job(4))
        self.assertEqual(self.sql("SELECT first, last, count FROM gearman_tw_batches"), [(1, 3, 3), (4, 4, 1)])
        yield queue.doneMany([1, 3, 4])
        self.assertEqual(self.sql("SELECT first FROM gearman_tw_batches"), [(1,)])
        self.assertEqual(self.sql("SELECT key FROM gearman_tw_done"), [(1,), (3,)])
        yield queue.done(1)
        yield queue.done(2)
        self.assertEqual(self.sql("SELECT * FROM gearman_tw_batches"), [])
        self.assertEqual(self.sql("SELECT * FROM gearman_tw_done"), [])

    @inlineCallbacks
    def test_compactsOnOpen(self):
        """
        Opening rewrites batches without their finished jobs and empties the
        done table; a batch all of whose jobs are marked done goes.
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(n) for n in range(1, 6)])
        yield queue.addMany([job(6), job(7)])
        yield queue.doneMany([1, 2, 5])
        yield queue.close()
        self.sql("INSERT INTO gearman_tw_done VALUES (6), (7), (99)")
        queue = yield self.openQueue()
        self.assertEqual(self.sql("SELECT first, last, count FROM gearman_tw_batches"), [(3, 4, 2)])
        self.assertEqual(self.sql("SELECT * FROM gearman_tw_done"), [])
        self.assertEqual((yield queue.replay()), [job(3), job(4)])
        yield queue.done(3)
        yield queue.add(job(5))
        self.assertEqual([j.key for j in (yield queue.replay())], [4, 5])

    @inlineCallbacks
    def test_updatesCompactedOnOpen(self):
        """
        Opening folds update rows into their batches (and drops those of
        finished jobs): the updates table is empty after open; update rows
        of jobs done go with them, without waiting for their batch.
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(n) for n in range(1, 5)])
        yield queue.update([job(2, attempts=1, due=5.5), job(3, attempts=2)])
        self.assertEqual(sorted(self.sql("SELECT key FROM gearman_tw_updates")), [(2,), (3,)])
        yield queue.done(3)
        self.assertEqual(self.sql("SELECT key FROM gearman_tw_updates"), [(2,)])
        yield queue.close()
        self.sql("INSERT INTO gearman_tw_updates VALUES (4, ?)", encodeRecords([job(4, attempts=9)]))
        self.sql("INSERT INTO gearman_tw_done VALUES (4)")
        queue = yield self.openQueue()
        self.assertEqual(self.sql("SELECT * FROM gearman_tw_updates"), [])
        self.assertEqual(self.sql("SELECT first, last, count FROM gearman_tw_batches"), [(1, 2, 2)])
        self.assertEqual((yield queue.replay()), [job(1), job(2, attempts=1, due=5.5)])

    @inlineCallbacks
    def test_corruptUpdate(self):
        """
        An update row that does not hold one record of its key fails open
        with QueueError.
        """
        queue = yield self.openQueue()
        yield queue.add(job(1))
        yield queue.close()
        self.sql("INSERT INTO gearman_tw_updates VALUES (1, ?)", encodeRecords([job(2)]))
        queue = SQLiteQueue(self.path, reactor=reactor)
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertIn("corrupt queue record (update of 1)", str(failure))

    @inlineCallbacks
    def test_keysMustIncrease(self):
        """
        A key not above every key stored before fails the add; duplicates
        of finished keys are ignored.
        """
        queue = yield self.openQueue()
        yield queue.add(job(5))
        yield self.assertFailure(queue.add(job(3)), QueueError)
        yield queue.addMany([job(7), job(6)])
        yield queue.doneMany([6, 6, 42])
        self.assertEqual([j.key for j in (yield queue.replay())], [5, 7])

    @inlineCallbacks
    def test_bigBatchesSplit(self):
        """
        Past MAX_BATCH_BYTES of data, an addMany becomes several rows.
        """
        self.patch(sqlitequeue, "MAX_BATCH_BYTES", 250)
        queue = yield self.openQueue()
        jobs = [job(n, data=b"%03d" % n * 33) for n in range(1, 8)]
        yield queue.addMany(jobs)
        self.assertEqual(
            self.sql("SELECT first, last, count FROM gearman_tw_batches"), [(1, 2, 2), (3, 4, 2), (5, 6, 2), (7, 7, 1)]
        )
        yield queue.doneMany([3, 4, 7])
        self.assertEqual((yield queue.replay()), [jobs[0], jobs[1], jobs[4], jobs[5]])
        self.assertEqual(len(self.sql("SELECT * FROM gearman_tw_batches")), 2)


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
        self.assertEqual([j.key for j in (yield first.replay())], [1])
        self.assertEqual([j.key for j in (yield second.replay())], [2])

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
        for _ in range(50):
            try:
                yield queue.add(job(2))
                break
            except QueueError:
                d = Deferred()
                reactor.callLater(0.1, d.callback, None)
                yield d
        self.assertEqual([j.key for j in (yield queue.replay())], [1, 2])
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


class RedisOpenTests(TestCase):
    """
    Opening a Redis queue that cannot be used.
    """

    @inlineCallbacks
    def test_refused(self):
        """
        A refused connection fails the open at once, saying so, instead of
        after the command timeout (txredisapi would retry quietly).
        """
        port = freePort()
        queue = RedisQueue(port=port, reactor=reactor, timeout=20)
        started = reactor.seconds()
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertEqual(str(failure), "cannot reach Redis at 127.0.0.1:%d: connection refused" % (port,))
        self.assertLess(reactor.seconds() - started, 5)

    def restore(self, name, module):
        if module is None:
            del sys.modules[name]
        else:
            sys.modules[name] = module

    def test_txredisapiMissing(self):
        """
        Without txredisapi a C{redis://} URL is refused when the queue is
        made (so at option parsing), saying what to install.
        """
        # The import system reads sys.modules itself, not the attribute.
        saved = sys.modules.get("txredisapi")
        sys.modules["txredisapi"] = None
        self.addCleanup(self.restore, "txredisapi", saved)
        with self.assertRaises(QueueError) as caught:
            queueFromURL("redis://127.0.0.1:6379/0", reactor)
        self.assertIn("the Redis queue needs txredisapi: pip install txredisapi", str(caught.exception))


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
    The record format of the SQLite and Redis queues.
    """

    def test_roundTrip(self):
        """
        A record decodes to what was encoded.
        """
        for original in (
            job(7, function=b"f:n", unique=b"", when=123, priority=2),
            job(2**40, unique=b"\0u\xff", data=b"", when=-5),
        ):
            self.assertEqual(list(decodeRecords(encodeRecords([original]))), [original])

    def test_attempts(self):
        """
        A job attempted before round-trips its attempts and due time; a
        record without them (as stored before they were kept) reads as
        never attempted.
        """
        attempted = job(3, attempts=2, due=1234.5, priority=2)
        self.assertEqual(list(decodeRecords(encodeRecords([attempted, job(4)]))), [attempted, job(4)])
        old = b"".join(
            [
                struct.pack(">QBqIII", 9, 0, 77, 1, 2, 3),
                b"fuudat",
            ]
        )
        self.assertEqual(list(decodeRecords(old)), [QueuedJob(b"f", 9, b"uu", b"dat", 0, 77, 0, 0.0)])
        cut = encodeRecords([attempted])[: struct.calcsize(">QBqIII") + 4]
        self.assertRaises(QueueError, list, decodeRecords(cut))

    def test_corruptRecords(self):
        """
        A blob cut short is a QueueError, not garbage jobs.
        """
        blob = encodeRecords([job(1), job(2)])
        self.assertEqual(list(decodeRecords(blob)), [job(1), job(2)])
        for cut in (1, 5, len(blob) - 30):
            self.assertRaises(QueueError, list, decodeRecords(blob[:-cut]))


class RedisEncodingTests(SynchronousTestCase):
    """
    The Redis queue writes its adds encoded beforehand (L{Encoded}), not
    through txredisapi's encoder; the bytes must be those txredisapi would
    send.
    """

    def txredisapiCommand(self, *args: bytes) -> bytes:
        import txredisapi

        protocol = txredisapi.RedisProtocol(charset=None)
        built: bytes = txredisapi.RedisProtocol._build_command(protocol, *args)
        return built

    @given(
        st.lists(
            st.builds(
                QueuedJob,
                function=st.binary(min_size=1, max_size=20),
                key=st.integers(min_value=0, max_value=2**63 - 1),
                unique=st.binary(max_size=70),
                # Records either side of 8192 bytes, whose length the
                # encoder writes otherwise.
                data=st.one_of(st.binary(max_size=40), st.integers(8100, 8250).map(lambda n: b"d" * n)),
                priority=st.integers(min_value=0, max_value=2),
                when=st.integers(min_value=0, max_value=2**40),
                attempts=st.integers(min_value=0, max_value=2**33),
                due=st.sampled_from([0.0, 1.5, 1e9]),
            ),
            max_size=6,
        )
    )
    @settings(max_examples=60, deadline=None)
    def test_fields(self, jobs: List[QueuedJob]) -> None:
        """
        An add is HSET of each job's key (decimal) and record, whatever the
        sizes and whether the job was attempted before.
        """
        arguments = []
        for each in jobs:
            arguments += [b"%d" % (each.key,), encodeRecord(each)]
        expected = self.txredisapiCommand(b"HSET", b"ns:jobs", *arguments)
        self.assertEqual(Encoded([b"HSET", b"ns:jobs"], _encodeFields(jobs), 2 * len(jobs)).command, expected)

    def test_command(self) -> None:
        """
        A command without further arguments encodes as txredisapi's does.
        """
        self.assertEqual(Encoded([b"PING"]).command, self.txredisapiCommand(b"PING"))
        self.assertEqual(Encoded([b"GET", b"", b"\r\n"]).command, self.txredisapiCommand(b"GET", b"", b"\r\n"))

    def test_connections(self) -> None:
        """
        The queue's connections, on one Redis or through Sentinel, send an
        L{Encoded} command as it is and any other as txredisapi encodes
        it.
        """
        import txredisapi

        from gearman_tw.queues.redis import _masterFactory, _queueFactory

        for factory in (_queueFactory(txredisapi), _masterFactory(txredisapi, lambda why: None)):
            protocol = factory.protocol(charset=None)
            self.assertEqual(
                protocol._build_command(Encoded([b"PING"], b"$1\r\nx\r\n", 1)), b"*2\r\n$4\r\nPING\r\n$1\r\nx\r\n"
            )
            self.assertEqual(protocol._build_command(b"HDEL", b"k", b"1"), self.txredisapiCommand(b"HDEL", b"k", b"1"))


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
        for url in ("ftp://x", "mysql://x", "sqlite:", "redis://h/notanumber"):
            self.assertRaises(QueueError, queueFromURL, url)


class StorageFaultTests(TestCase):
    """
    Storage faults are reported with their cause.
    """

    timeout = 60

    @inlineCallbacks
    def sqliteQueue(self):
        """
        An open SQLite queue in a directory of its own, and its path.
        """
        path = os.path.join(tempfile.mkdtemp(), "queue.db")
        queue = SQLiteQueue(path, reactor=reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        return path, queue

    @inlineCallbacks
    def redisQueue(self, timeout):
        """
        A redis-server of this test's own and an open queue on it.
        """
        redis = RedisServer()
        self.addCleanup(redis.stop)
        queue = RedisQueue(port=redis.port, reactor=reactor, timeout=timeout)
        yield queue.open()
        self.addCleanup(queue.close)
        return redis, queue

    @inlineCallbacks
    def test_sqliteFull(self):
        """
        A full SQLite database (its page limit reached, as a full disk
        does) fails the add with "database or disk is full", not with the
        ROLLBACK that failed after it; the queue goes on working once there
        is room.
        """
        path, queue = yield self.sqliteQueue()
        yield queue.add(job(1))

        def limit(pages):
            connection = queue._connection
            count = connection.execute("PRAGMA page_count").fetchone()[0]
            connection.execute("PRAGMA max_page_count=%d" % (count + pages,))

        yield queue._run(limit, 0)
        failure = yield self.assertFailure(queue.add(job(2, data=b"x" * 200000)), QueueError)
        self.assertIn("full", str(failure))
        self.assertNotIn("rollback", str(failure))
        yield queue._run(limit, 10000)
        yield queue.add(job(3))
        self.assertEqual([j.key for j in (yield queue.replay())], [1, 3])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_redisTimeout(self):
        """
        A Redis that stops answering (SIGSTOP) fails the add with "no
        answer from Redis within 1 s", not a repr of the timeout.
        """
        import signal

        redis, queue = yield self.redisQueue(timeout=1)
        os.kill(redis.process.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, redis.process.pid, signal.SIGCONT)
        failure = yield self.assertFailure(queue.add(job(1)), QueueError)
        self.assertEqual(str(failure), "redis add: no answer from Redis within 1 s")

    @inlineCallbacks
    def test_sqliteDirectoryDeleted(self):
        """
        With the database's directory deleted, a commit succeeds into the
        unlinked file, but the queue finds the file gone and fails the add
        with QueueError naming the cause, so that no job is acknowledged
        that a restart would lose; later adds fail too.
        """
        path, queue = yield self.sqliteQueue()
        directory = os.path.dirname(path)
        yield queue.add(job(1))
        shutil.rmtree(directory)
        failure = yield self.assertFailure(queue.add(job(2)), QueueError)
        self.assertIn("deleted", str(failure))
        self.assertIn(path, str(failure))
        yield self.assertFailure(queue.addMany([job(3), job(4)]), QueueError)
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_sqliteFileReplaced(self):
        """
        With the database file replaced by another (renamed over it), adds
        fail with QueueError saying so, and nothing more is acknowledged
        while the queue writes to a file no restart reads.
        """
        path, queue = yield self.sqliteQueue()
        directory = os.path.dirname(path)
        yield queue.add(job(1))
        other = os.path.join(directory, "other.db")
        connection = sqlite3.connect(other)
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
        connection.close()
        os.replace(other, path)
        failure = yield self.assertFailure(queue.add(job(2)), QueueError)
        self.assertIn("replaced", str(failure))
        yield self.assertFailure(queue.add(job(3)), QueueError)
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_redisTimeoutWithdrawn(self):
        """
        An add that Redis (SIGSTOPped past the timeout) did not answer is
        withdrawn before it fails: the QueueError goes out once Redis has
        answered the withdrawal, and the job is not stored, though Redis ran
        the add after all (a client that retries gets the job once).
        """
        import signal

        redis, queue = yield self.redisQueue(timeout=1)
        os.kill(redis.process.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, redis.process.pid, signal.SIGCONT)
        reactor.callLater(1.5, os.kill, redis.process.pid, signal.SIGCONT)
        failure = yield self.assertFailure(queue.addMany([job(1), job(2)]), QueueError)
        self.assertEqual(str(failure), "redis add: no answer from Redis within 1 s")
        self.assertEqual((yield queue.replay()), [])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_redisTimeoutWithdrawalUnanswered(self):
        """
        If Redis answers neither the add nor its withdrawal in time, the add
        fails, and the withdrawal, sent after the add on the same
        connection, still removes the job once Redis runs both.
        """
        import signal

        redis, queue = yield self.redisQueue(timeout=1)
        os.kill(redis.process.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, redis.process.pid, signal.SIGCONT)
        yield self.assertFailure(queue.add(job(1)), QueueError)
        os.kill(redis.process.pid, signal.SIGCONT)
        self.assertEqual((yield queue.replay()), [])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_redisRefusedAddNotWithdrawn(self):
        """
        An add that Redis refuses (NOREPLICAS) failed for certain: it fails
        at once, without waiting for a withdrawal.
        """
        redis, queue = yield self.redisQueue(timeout=5)
        redis.command(b"CONFIG", b"SET", b"min-replicas-to-write", b"1")
        began = reactor.seconds()
        failure = yield self.assertFailure(queue.add(job(1)), QueueError)
        self.assertLess(reactor.seconds() - began, 1)
        self.assertIn("NOREPLICAS", str(failure))
        redis.command(b"CONFIG", b"SET", b"min-replicas-to-write", b"0")
        self.assertEqual((yield queue.replay()), [])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_redisCloseWaitsForAdds(self):
        """
        close() waits for the adds under way, withdrawals included, before
        it disconnects, so an add Redis runs late is still withdrawn.
        """
        import signal

        redis = RedisServer()
        self.addCleanup(redis.stop)
        queue = RedisQueue(port=redis.port, reactor=reactor, timeout=1)
        yield queue.open()
        os.kill(redis.process.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, redis.process.pid, signal.SIGCONT)
        added = queue.add(job(1))
        self.assertFailure(added, QueueError)
        reactor.callLater(1.5, os.kill, redis.process.pid, signal.SIGCONT)
        yield sleep(0.5)
        yield queue.close()
        yield added
        again = RedisQueue(port=redis.port, reactor=reactor, timeout=5)
        yield again.open()
        self.addCleanup(again.close)
        self.assertEqual((yield again.replay()), [])
        self.flushLoggedErrors()

    def fillSQLite(self, queue):
        """
        Fill C{queue}'s database: its page limit is its size now.
        """

        def limit(pages):
            connection = queue._connection
            count = connection.execute("PRAGMA page_count").fetchone()[0]
            connection.execute("PRAGMA max_page_count=%d" % (count + pages,))

        return queue._run(limit, 0), lambda: queue._run(limit, 10000)

    @inlineCallbacks
    def test_sqliteFailedDeleteRetried(self):
        """
        Deletes that fail on a full database (its page limit reached: the
        done table needs pages) are kept and retried until they succeed,
        while the queue stays open.
        """
        path, queue = yield self.sqliteQueue()
        yield queue.addMany([job(n) for n in range(1, 2001)])
        full, room = self.fillSQLite(queue)
        yield full
        failure = yield self.assertFailure(queue.doneMany(list(range(1, 1001))), QueueError)
        self.assertIn("full", str(failure))
        yield room()
        for _ in range(100):
            (count,) = sqliteRows(path, "SELECT count(*) FROM gearman_tw_done")[0]
            if count == 1000:
                break
            yield sleep(0.1)
        self.assertEqual(count, 1000)
        self.assertEqual([j.key for j in (yield queue.replay())], list(range(1001, 2001)))
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_sqliteKeepFailsWhole(self):
        """
        A keep that fails on a full database stores none of its records and
        forgets none of its jobs, then or later: the jobs replay after a
        restart (the change is not retried).
        """
        path, queue = yield self.sqliteQueue()
        yield queue.addMany([job(n) for n in range(1, 11)])
        full, room = self.fillSQLite(queue)
        yield full
        records = [(b"%d" % n, b"x" * 5000) for n in range(1, 11)]
        failure = yield self.assertFailure(queue.keep(b"dead", records, list(range(1, 11)), []), QueueError)
        self.assertIn("full", str(failure))
        yield room()
        yield sleep(1.5)
        self.assertEqual((yield queue.kept(b"dead")), [])
        yield queue.close()
        again = SQLiteQueue(path, reactor=reactor)
        yield again.open()
        self.addCleanup(again.close)
        self.assertEqual([j.key for j in (yield again.replay())], list(range(1, 11)))
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_sqliteFailedDeleteRetriedAtClose(self):
        """
        A delete that failed is retried at close() at the latest, so a
        graceful restart does not bring back jobs that ended while the disk
        was full.
        """
        path, queue = yield self.sqliteQueue()
        yield queue.addMany([job(n) for n in range(1, 2001)])
        full, room = self.fillSQLite(queue)
        yield full
        yield self.assertFailure(queue.doneMany(list(range(1, 1001))), QueueError)
        yield room()
        yield queue.close()
        again = SQLiteQueue(path, reactor=reactor)
        yield again.open()
        self.addCleanup(again.close)
        self.assertEqual([j.key for j in (yield again.replay())], list(range(1001, 2001)))
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_redisFailedDeleteRetried(self):
        """
        Deletes that Redis refuses (NOREPLICAS: min-replicas-to-write set
        with no replica) are kept and retried until Redis takes them.
        """
        redis, queue = yield self.redisQueue(timeout=5)
        yield queue.addMany([job(1), job(2), job(3)])
        redis.command(b"CONFIG", b"SET", b"min-replicas-to-write", b"1")
        failure = yield self.assertFailure(queue.doneMany([1, 2]), QueueError)
        self.assertIn("NOREPLICAS", str(failure))
        redis.command(b"CONFIG", b"SET", b"min-replicas-to-write", b"0")
        for _ in range(100):
            keys = [j.key for j in (yield queue.replay())]
            if keys == [3]:
                break
            yield sleep(0.1)
        self.assertEqual(keys, [3])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_redisFailedDeleteRetriedAtClose(self):
        """
        A delete Redis refused is retried at close() at the latest.
        """
        redis, queue = yield self.redisQueue(timeout=5)
        yield queue.addMany([job(1), job(2), job(3)])
        redis.command(b"CONFIG", b"SET", b"min-replicas-to-write", b"1")
        yield self.assertFailure(queue.doneMany([1, 2]), QueueError)
        redis.command(b"CONFIG", b"SET", b"min-replicas-to-write", b"0")
        yield queue.close()
        again = RedisQueue(port=redis.port, reactor=reactor, timeout=5)
        yield again.open()
        self.addCleanup(again.close)
        self.assertEqual([j.key for j in (yield again.replay())], [3])
        self.flushLoggedErrors()


def sleep(seconds):
    """
    A Deferred that fires after C{seconds} on the global reactor.
    """
    from twisted.internet.task import deferLater

    return deferLater(reactor, seconds, lambda: None)


def sqliteRows(path, statement):
    """
    The rows of one statement, from a connection of its own.
    """
    connection = sqlite3.connect(path)
    try:
        return connection.execute(statement).fetchall()
    finally:
        connection.close()


class DeleteRetriesTests(SynchronousTestCase):
    """
    Tests for L{gearman_tw.queues.DeleteRetries}, on a fake clock.
    """

    def setUp(self):
        from twisted.internet.task import Clock

        from gearman_tw.queues import DeleteRetries

        self.clock = Clock()
        self.attempts = []
        self.retries = DeleteRetries(self.clock, self.attempt, "test", limit=5)

    def attempt(self, items):
        d = Deferred()
        self.attempts.append((list(items), d))
        return d

    def test_backoff(self):
        """
        Kept deletes are retried together after queues.FIRST_RETRY_DELAY, then
        after twice as long each time an attempt fails, until one succeeds;
        after that the delay starts over.
        """
        self.retries.keep([1, 2], 2)
        self.retries.keep([3], 1)
        self.clock.advance(queues.FIRST_RETRY_DELAY - 0.01)
        self.assertEqual(self.attempts, [])
        self.clock.advance(0.01)
        [(items, d)] = self.attempts
        self.assertEqual(items, [1, 2, 3])
        self.retries.keep([4], 1)
        self.clock.advance(60)
        self.assertEqual(len(self.attempts), 1)
        d.errback(QueueError("disk full"))
        self.assertEqual(self.retries.count, 4)
        self.clock.advance(2 * queues.FIRST_RETRY_DELAY - 0.01)
        self.assertEqual(len(self.attempts), 1)
        self.clock.advance(0.01)
        items, d = self.attempts[-1]
        self.assertEqual(items, [1, 2, 3, 4])
        d.callback(None)
        self.assertEqual(self.retries.count, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.retries.keep([5], 1)
        self.clock.advance(queues.FIRST_RETRY_DELAY)
        self.assertEqual(self.attempts[-1][0], [5])

    def test_longestDelay(self):
        """
        The delay between retries stops growing at queues.MAX_RETRY_DELAY.
        """
        self.retries.keep([1], 1)
        for _ in range(20):
            [call] = self.clock.getDelayedCalls()
            self.assertLessEqual(call.getTime() - self.clock.seconds(), queues.MAX_RETRY_DELAY)
            self.clock.advance(call.getTime() - self.clock.seconds())
            self.attempts[-1][1].errback(QueueError("disk full"))
        [call] = self.clock.getDelayedCalls()
        self.assertEqual(call.getTime() - self.clock.seconds(), queues.MAX_RETRY_DELAY)
        self.flushLoggedErrors()

    def test_bounded(self):
        """
        Past its limit, deletes are dropped (and counted), not kept.
        """
        self.retries.keep([1, 2, 3], 3)
        self.retries.keep([4, 5, 6], 3)
        self.assertEqual((self.retries.count, self.retries.dropped), (3, 3))
        self.clock.advance(queues.FIRST_RETRY_DELAY)
        self.assertEqual(self.attempts[0][0], [1, 2, 3])

    def test_close(self):
        """
        close() retries at once; what still fails is dropped, and nothing
        is scheduled after.
        """
        self.retries.keep([1, 2], 2)
        d = self.retries.close()
        self.assertNoResult(d)
        self.assertEqual(self.attempts[0][0], [1, 2])
        self.attempts[0][1].errback(QueueError("disk full"))
        self.successResultOf(d)
        self.assertEqual((self.retries.count, self.retries.dropped), (0, 2))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.retries.keep([3], 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_closeWaitsForAttempt(self):
        """
        close() waits for an attempt under way before its own.
        """
        self.retries.keep([1], 1)
        self.clock.advance(queues.FIRST_RETRY_DELAY)
        d = self.retries.close()
        self.assertNoResult(d)
        self.attempts[0][1].callback(None)
        self.successResultOf(d)
        self.assertEqual(len(self.attempts), 1)
