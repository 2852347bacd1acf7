"""
Tests for L{gearman_tw.queues.postgresql}: the persistent queue contract
and PostgreSQL's own behaviour (gearmand's table taken over, reconnection,
timeouts, withdrawals, refused deletes, names and data that are not SQL,
a standby's lease and fenced writes), against throwaway servers
(L{tests.pgserver}).
"""

import time
from typing import Any, List

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gearman_tw.errors import QueueError
from gearman_tw.queues import FIRST_RETRY_DELAY, QueuedJob, queueFromURL
from gearman_tw.queues.postgresql import FENCED, PostgreSQLLease, PostgreSQLQueue
from tests.integration.servers import freePort
from tests.leasemixin import LeaseContractMixin
from tests.pgserver import PostgresServer
from tests.test_queues import PersistentQueueMixin, job

# gearmand 1.1's libpq queue: its CREATE TABLE (GEARMAN_UNIQUE_SIZE is 64)
# and INSERT (the data a binary parameter, the others text).
GEARMAND_CREATE = (
    "CREATE TABLE IF NOT EXISTS {table} (unique_key VARCHAR(64), function_name VARCHAR(255), "
    "priority INTEGER, data BYTEA, when_to_run INTEGER, UNIQUE (unique_key, function_name))"
)
GEARMAND_INSERT = (
    "INSERT INTO {table} (priority, unique_key, function_name, data, when_to_run) VALUES (%s, %s, %s, %b::BYTEA, %s)"
)

# Strings an SQL built by concatenation would choke on, or run.
NASTY = [
    b"'",
    b"''; DROP TABLE gearman_tw_jobs; --",
    b"\\",
    b"\\x00\\'",
    b"\0",
    b"a\0b'c\"d\\e",
    b'"; DELETE FROM gearman_tw_kept; --',
    b"$1 %s %b {jobs}",
    b"\xff\xfe\x00",
]


def sleep(seconds: float) -> "Deferred[None]":
    """
    A Deferred that fires after C{seconds} on the global reactor.
    """
    return deferLater(reactor, seconds, lambda: None)


@inlineCallbacks
def waitUntil(predicate, timeout: float = 15.0, step: float = 0.1):
    """
    Call C{predicate} (which may return a Deferred) until it gives something
    true (returned), or return its last answer after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = yield predicate()
        if value or time.monotonic() > deadline:
            return value
        yield sleep(step)


class PostgreSQLQueueTests(PersistentQueueMixin, TestCase):
    """
    The PostgreSQL backend, against a server of each test's own.
    """

    timeout = 120

    def setUp(self):
        self.pg = PostgresServer()
        self.addCleanup(self.pg.stop)

    def makeQueue(self, **query: str) -> PostgreSQLQueue:
        return PostgreSQLQueue.fromURL(self.pg.url(**query), reactor=reactor)

    @inlineCallbacks
    def openWith(self, **query: str):
        queue = self.makeQueue(**query)
        yield queue.open()
        self.addCleanup(queue.close)
        return queue

    def sql(self, statement: str, *parameters: Any) -> List[Any]:
        return self.pg.execute(statement, parameters)

    @inlineCallbacks
    def test_tables(self):
        """
        The queue makes C{<table>_jobs}, one row per job with its fields in
        columns, and C{<table>_kept}.
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(1, priority=0, when=7), job(2, attempts=2, due=5.5)])
        yield queue.keep(b"k", [(b"i", b"v")], [], [])
        self.assertEqual(
            self.sql(
                "SELECT key, function, unique_key, data, priority, when_to_run, attempts, due"
                " FROM gearman_tw_jobs ORDER BY key"
            ),
            [(1, b"f", b"k1", b"data\x001", 0, 7, 0, 0.0), (2, b"f", b"k2", b"data\x002", 1, 0, 2, 5.5)],
        )
        self.assertEqual(self.sql("SELECT kind, ident, value FROM gearman_tw_kept"), [(b"k", b"i", b"v")])
        columns = self.sql(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_name LIKE 'gearman_tw_%%' ORDER BY table_name, ordinal_position"
        )
        self.assertEqual(
            columns,
            [
                ("gearman_tw_jobs", "key", "bigint"),
                ("gearman_tw_jobs", "function", "bytea"),
                ("gearman_tw_jobs", "unique_key", "bytea"),
                ("gearman_tw_jobs", "data", "bytea"),
                ("gearman_tw_jobs", "priority", "smallint"),
                ("gearman_tw_jobs", "when_to_run", "bigint"),
                ("gearman_tw_jobs", "attempts", "bigint"),
                ("gearman_tw_jobs", "due", "double precision"),
                ("gearman_tw_kept", "kind", "bytea"),
                ("gearman_tw_kept", "ident", "bytea"),
                ("gearman_tw_kept", "value", "bytea"),
            ],
        )

    @inlineCallbacks
    def test_tableNames(self):
        """
        C{?table=} names the tables; queues with different names keep
        their jobs apart in one database.
        """
        first = yield self.openQueue()
        second = yield self.openWith(table="Other_Queue")
        yield first.add(job(1))
        yield second.add(job(2))
        self.assertEqual([j.key for j in (yield first.replay())], [1])
        self.assertEqual([j.key for j in (yield second.replay())], [2])
        self.assertEqual(self.sql('SELECT key FROM "Other_Queue_jobs"'), [(2,)])

    @inlineCallbacks
    def test_groupCommit(self):
        """
        Changes that arrive while a transaction commits share the next one.
        """
        queue = yield self.openQueue()
        before = queue.commits
        yield gatherResults([queue.add(job(n)) for n in range(500)] + [queue.done(n) for n in range(0, 500, 5)])
        self.assertLessEqual(queue.commits - before, 3)
        self.assertEqual(len((yield queue.replay())), 400)

    @inlineCallbacks
    def test_verbatim(self):
        """
        Function names, unique keys, data, kinds, idents and values that
        look like SQL, or hold quotes, backslashes and NULs, are stored and
        given back byte for byte, and run nothing.
        """
        queue = yield self.openQueue()
        jobs = [QueuedJob(nasty, n, NASTY[-n], nasty * 3, 1, 0) for n, nasty in enumerate(NASTY, 1)]
        yield queue.addMany(jobs)
        yield queue.keep(NASTY[1], [(nasty, nasty + b"!") for nasty in NASTY], [1], [])
        yield queue.keep(NASTY[6], [(NASTY[4], NASTY[5])], [], [NASTY[0]])
        self.assertEqual((yield queue.replay()), jobs[1:])
        self.assertEqual(sorted((yield queue.kept(NASTY[1]))), sorted((nasty, nasty + b"!") for nasty in NASTY))
        self.assertEqual((yield queue.kept(NASTY[6])), [(NASTY[4], NASTY[5])])
        yield queue.update([jobs[1]._replace(attempts=1, due=2.5)])
        yield queue.doneMany([jobs[2].key])
        self.assertEqual((yield queue.replay()), [jobs[1]._replace(attempts=1, due=2.5)] + jobs[3:])
        self.assertEqual(
            sorted(self.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")),
            [("gearman_tw_jobs",), ("gearman_tw_kept",)],
        )

    def gearmandTable(self, table: str, rows: List[Any]) -> None:
        """
        Make gearmand's libpq table C{table} and insert C{rows} (unique,
        function, priority, data, when) as gearmand does.
        """
        with self.pg.connect() as connection:
            connection.execute(GEARMAND_CREATE.format(table=table))
            for unique, function, priority, data, when in rows:
                connection.execute(GEARMAND_INSERT.format(table=table), (priority, unique, function, data, when))

    @inlineCallbacks
    def test_takesOverGearmandTable(self):
        """
        gearmand's table (C{queue}) is taken over at open: its rows become
        jobs after ours, in their order, their fields intact, and the table
        is dropped; the next opening finds nothing more to take.  (The
        record keys follow the largest stored, 1 here: the job server
        numbers its records above the largest replayed.)
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(1), job(2)])
        yield queue.done(2)
        yield queue.close()
        self.gearmandTable(
            "queue",
            [
                ("u1", "reverse", 2, b"\x00\x01'\\", 0),
                ("", "reverse", 0, b"", 1900000000),
                ("-", "other", 1, b"same data, same job", 0),
                ("\u00e9t\u00e9", "f\u00e9", 1, b"x" * 100000, 0),
            ],
        )
        queue = yield self.openQueue()
        self.assertEqual(
            (yield queue.replay()),
            [
                job(1),
                QueuedJob(b"reverse", 2, b"u1", b"\x00\x01'\\", 2, 0),
                QueuedJob(b"reverse", 3, b"", b"", 0, 1900000000),
                QueuedJob(b"other", 4, b"-", b"same data, same job", 1, 0),
                QueuedJob("f\u00e9".encode(), 5, "\u00e9t\u00e9".encode(), b"x" * 100000, 1, 0),
            ],
        )
        self.assertEqual(self.sql("SELECT to_regclass('queue')"), [(None,)])
        yield queue.add(job(6))
        yield queue.close()
        again = yield self.openQueue()
        self.assertEqual([j.key for j in (yield again.replay())], [1, 2, 3, 4, 5, 6])

    @inlineCallbacks
    def test_takesOverNamedGearmandTable(self):
        """
        C{?gearmand_table=} names gearmand's table (its C{--libpq-table});
        C{queue} is then left alone, and an empty name takes over nothing.
        """
        self.gearmandTable("queue", [("a", "f", 1, b"left", 0)])
        self.gearmandTable("old_jobs", [("b", "f", 1, b"taken", 0)])
        queue = yield self.openWith(gearmand_table="")
        self.assertEqual((yield queue.replay()), [])
        queue = yield self.openWith(gearmand_table="old_jobs")
        self.assertEqual((yield queue.replay()), [QueuedJob(b"f", 1, b"b", b"taken", 1, 0)])
        self.assertEqual(self.sql("SELECT unique_key FROM queue"), [("a",)])
        self.assertEqual(self.sql("SELECT to_regclass('old_jobs')"), [(None,)])

    @inlineCallbacks
    def test_foreignQueueTableLeftAlone(self):
        """
        A table called C{queue} whose columns are not gearmand's is someone
        else's: it is neither read nor dropped.
        """
        self.sql("CREATE TABLE queue (id SERIAL PRIMARY KEY, payload TEXT)")
        self.sql("INSERT INTO queue (payload) VALUES ('mine')")
        queue = yield self.openQueue()
        self.assertEqual((yield queue.replay()), [])
        self.assertEqual(self.sql("SELECT payload FROM queue"), [("mine",)])

    @inlineCallbacks
    def test_takeOverAllOrNothing(self):
        """
        A take-over that fails (our table refuses a row) changes nothing:
        gearmand's table and its rows are still there, and open fails.
        """
        queue = yield self.openQueue()
        yield queue.close()
        self.gearmandTable("queue", [("a", "f", 1, b"one", 0), ("b", "f", 1, b"two", 0)])
        self.sql("ALTER TABLE gearman_tw_jobs ADD CONSTRAINT small CHECK (length(data) < 3)")
        queue = self.makeQueue()
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertIn("small", str(failure))
        self.assertEqual(self.sql("SELECT count(*) FROM queue"), [(2,)])
        self.assertEqual(self.sql("SELECT count(*) FROM gearman_tw_jobs"), [(0,)])

    @inlineCallbacks
    def test_keyHeldByAnotherJob(self):
        """
        An add whose key holds the same job already (stored by an attempt
        whose COMMIT was not answered) succeeds; one whose key holds another
        job (another server on the same table) fails instead of being
        acknowledged unstored.
        """
        queue = yield self.openQueue()
        self.sql(
            "INSERT INTO gearman_tw_jobs (key, function, unique_key, data, priority) VALUES (1, 'f', 'k1', %s, 1),"
            " (2, 'f', 'other', 'x', 1)",
            b"data\x001",
        )
        yield queue.add(job(1))
        failure = yield self.assertFailure(queue.add(job(2)), QueueError)
        self.assertEqual(
            str(failure),
            "postgresql add: record key 2 holds another job: is another job server using table gearman_tw_jobs?",
        )
        self.assertEqual(self.sql("SELECT unique_key FROM gearman_tw_jobs WHERE key = 2"), [(b"other",)])

    @inlineCallbacks
    def test_onlyTablePrivileges(self):
        """
        A role with SELECT, INSERT, UPDATE and DELETE on tables made for it
        (no CREATE on the schema) can use the queue.
        """
        queue = yield self.openQueue()
        yield queue.close()
        self.sql("CREATE ROLE worker LOGIN")
        self.sql("GRANT SELECT, INSERT, UPDATE, DELETE ON gearman_tw_jobs, gearman_tw_kept TO worker")
        self.sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        queue = PostgreSQLQueue.fromURL(self.pg.url(user="worker"), reactor=reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        yield queue.addMany([job(1), job(2)])
        yield queue.keep(b"k", [(b"a", b"b")], [1], [])
        yield queue.update([job(2, attempts=1)])
        self.assertEqual((yield queue.replay()), [job(2, attempts=1)])

    def refuseDeletes(self):
        """
        Make the jobs table refuse deletes (a trigger raising), until
        L{allowDeletes}.
        """
        self.sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'deletes refused for the test'; END $$"
        )
        self.sql("CREATE TRIGGER refuse BEFORE DELETE ON gearman_tw_jobs FOR EACH ROW EXECUTE FUNCTION refuse()")

    def allowDeletes(self):
        self.sql("DROP TRIGGER refuse ON gearman_tw_jobs")

    @inlineCallbacks
    def test_refusedDeleteRetried(self):
        """
        Deletes the database refuses fail with its reason, are kept, and
        are retried until they succeed; adds in the same transaction are
        stored all the same.
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(n) for n in range(1, 6)])
        self.refuseDeletes()
        # The first change goes at once; the two others share the next
        # transaction.
        first = queue.add(job(6))
        refused = queue.doneMany([1, 2])
        added = queue.add(job(7))
        yield first
        failure = yield self.assertFailure(refused, QueueError)
        self.assertEqual(str(failure), "postgresql done: deletes refused for the test")
        yield added
        self.assertEqual(queue.retries.count, 2)
        yield self.assertFailure(queue.done(3), QueueError)
        self.assertEqual(queue.retries.count, 3)
        self.assertEqual([j.key for j in (yield queue.replay())], [1, 2, 3, 4, 5, 6, 7])
        self.allowDeletes()

        @inlineCallbacks
        def gone():
            return [j.key for j in (yield queue.replay())] == [4, 5, 6, 7]

        self.assertTrue((yield waitUntil(gone)))
        self.assertEqual(queue.retries.count, 0)

    @inlineCallbacks
    def test_refusedDeleteRetriedAtClose(self):
        """
        A delete that failed is retried at close() at the latest, without
        a DELETE privilege as with one.
        """
        queue = yield self.openQueue()
        yield queue.close()
        self.sql("CREATE ROLE worker LOGIN")
        self.sql("GRANT SELECT, INSERT, UPDATE ON gearman_tw_jobs, gearman_tw_kept TO worker")
        queue = PostgreSQLQueue.fromURL(self.pg.url(user="worker"), reactor=reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        yield queue.addMany([job(1), job(2)])
        failure = yield self.assertFailure(queue.done(1), QueueError)
        self.assertEqual(str(failure), "postgresql done: permission denied for table gearman_tw_jobs")
        self.sql("GRANT DELETE ON gearman_tw_jobs TO worker")
        yield queue.close()
        self.assertEqual(self.sql("SELECT key FROM gearman_tw_jobs"), [(2,)])

    @inlineCallbacks
    def test_keepFailsWhole(self):
        """
        A keep whose delete is refused stores none of its records and
        forgets none of its jobs, then or later (it is not retried).
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(1), job(2)])
        self.refuseDeletes()
        yield self.assertFailure(queue.keep(b"dead", [(b"1", b"letter")], [1], []), QueueError)
        self.allowDeletes()
        yield sleep(1.5)
        self.assertEqual((yield queue.kept(b"dead")), [])
        self.assertEqual([j.key for j in (yield queue.replay())], [1, 2])
        self.assertEqual(queue.retries.count, 0)


class PostgreSQLFaultTests(TestCase):
    """
    A database that restarts, goes away or stops answering.
    """

    timeout = 120

    def setUp(self):
        self.pg = PostgresServer()
        self.addCleanup(self.pg.stop)

    @inlineCallbacks
    def openQueue(self, timeout: float = 5.0):
        queue = PostgreSQLQueue.fromURL(self.pg.url(timeout=str(timeout)), reactor=reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        return queue

    @inlineCallbacks
    def test_reconnectsAfterCrash(self):
        """
        After the database is killed, adds wait (no JOB_CREATED yet) and
        succeed once it is back within the timeout, on a new connection;
        nothing acknowledged is lost.
        """
        queue = yield self.openQueue(timeout=10)
        yield queue.add(job(1))
        self.pg.kill()
        waiting = [queue.add(job(2)), queue.addMany([job(3), job(4)]), queue.done(1)]
        yield sleep(1)
        for d in waiting:
            self.assertNoResult(d)
        yield deferToThread(self.pg.start)
        yield gatherResults(waiting)
        self.assertEqual([j.key for j in (yield queue.replay())], [2, 3, 4])

    @inlineCallbacks
    def test_reconnectsAfterRestart(self):
        """
        After a graceful restart of the database (which ends the queue's
        session), the next change reconnects and succeeds.
        """
        queue = yield self.openQueue()
        yield queue.add(job(1))
        yield deferToThread(self.pg.restart)
        yield queue.add(job(2))
        self.assertEqual([j.key for j in (yield queue.replay())], [1, 2])

    @inlineCallbacks
    def test_downPastTimeout(self):
        """
        With the database down past the timeout, an add fails with
        QueueError saying why, within the timeout (and libpq's 2 s for a
        connection); it is not stored, and the queue works again once the
        database is back.
        """
        queue = yield self.openQueue(timeout=1.5)
        self.pg.kill()
        began = time.monotonic()
        failure = yield self.assertFailure(queue.add(job(1)), QueueError)
        elapsed = time.monotonic() - began
        self.assertEqual(
            str(failure),
            "postgresql add: cannot connect to PostgreSQL at 127.0.0.1:%d/gearman: connection refused"
            % (self.pg.port,),
        )
        self.assertGreaterEqual(elapsed, 1.4)
        self.assertLess(elapsed, 4.5)
        yield deferToThread(self.pg.start)
        yield queue.add(job(2))
        self.assertEqual([j.key for j in (yield queue.replay())], [2])

    @inlineCallbacks
    def test_pausedPastTimeout(self):
        """
        A database that stops answering (SIGSTOP) fails an add within the
        timeout, saying so; the add, never committed, is not stored, and
        the queue works again after SIGCONT.
        """
        queue = yield self.openQueue(timeout=1.5)
        yield queue.add(job(1))
        self.pg.pause()
        self.addCleanup(self.pg.resume)
        began = time.monotonic()
        failure = yield self.assertFailure(queue.add(job(2)), QueueError)
        elapsed = time.monotonic() - began
        self.assertEqual(
            str(failure),
            "postgresql add: no answer from PostgreSQL at 127.0.0.1:%d/gearman within 1.5 s" % (self.pg.port,),
        )
        self.assertLess(elapsed, 2.5)
        self.pg.resume()
        yield queue.add(job(3))
        self.assertEqual([j.key for j in (yield queue.replay())], [1, 3])

    def slowCommits(self, seconds: float) -> None:
        """
        Make every COMMIT that stores a job of function C{slow} take
        C{seconds} (a deferred constraint trigger).
        """
        self.pg.execute(
            "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN IF NEW.function = 'slow' THEN PERFORM pg_sleep(%s); END IF; RETURN NULL; END $$"
            % (float(seconds),)
        )
        self.pg.execute(
            "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON gearman_tw_jobs DEFERRABLE INITIALLY DEFERRED"
            " FOR EACH ROW EXECUTE FUNCTION slow()"
        )

    def recordDeletes(self) -> None:
        """
        Record the keys of the jobs deleted in table C{deleted}.
        """
        self.pg.execute("CREATE TABLE deleted (key BIGINT)")
        self.pg.execute(
            "CREATE FUNCTION record() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN INSERT INTO deleted VALUES (OLD.key); RETURN NULL; END $$"
        )
        self.pg.execute("CREATE TRIGGER record AFTER DELETE ON gearman_tw_jobs FOR EACH ROW EXECUTE FUNCTION record()")

    @inlineCallbacks
    def test_unansweredCommitWithdrawn(self):
        """
        An add whose COMMIT is not answered within the timeout (but
        commits after) is withdrawn before it fails: the withdrawal waits
        for that transaction, and the job is not stored.
        """
        queue = yield self.openQueue(timeout=2)
        self.slowCommits(3)
        self.recordDeletes()
        failure = yield self.assertFailure(queue.addMany([job(1, function=b"slow"), job(2)]), QueueError)
        self.assertEqual(
            str(failure),
            "postgresql add: no answer from PostgreSQL at 127.0.0.1:%d/gearman within 2 s" % (self.pg.port,),
        )
        self.assertEqual(queue.retries.count, 0)
        self.assertEqual((yield queue.replay()), [])
        # They were committed, and deleted.
        self.assertEqual(self.pg.execute("SELECT key FROM deleted ORDER BY key"), [(1,), (2,)])

    @inlineCallbacks
    def test_withdrawalRetried(self):
        """
        If the withdrawal of an unanswered add fails too (the database
        stopped), it is kept and retried: once the database is back, the
        job is gone.
        """
        queue = yield self.openQueue(timeout=1)
        self.slowCommits(1.5)
        added = queue.add(job(1, function=b"slow"))
        yield sleep(0.5)
        self.pg.pause()
        self.addCleanup(self.pg.resume)
        yield self.assertFailure(added, QueueError)
        self.assertEqual(queue.retries.count, 1)
        self.pg.resume()

        @inlineCallbacks
        def withdrawn():
            return queue.retries.count == 0 and (yield queue.replay()) == []

        self.assertTrue((yield waitUntil(withdrawn, timeout=30)))

    @inlineCallbacks
    def test_withdrawalWaitsForTransaction(self):
        """
        A withdrawal waits for a transaction that inserted one of its keys
        and has not ended, and deletes that row once it is committed.
        """
        queue = yield self.openQueue(timeout=10)
        other = self.pg.connect()
        self.addCleanup(other.close)
        other.autocommit = False
        other.execute("INSERT INTO gearman_tw_jobs (key, function) VALUES (5, 'f')")
        withdrawn = queue._retryDeletes([5])
        yield sleep(0.5)
        self.assertNoResult(withdrawn)
        other.commit()
        yield withdrawn
        self.assertEqual(self.pg.execute("SELECT count(*) FROM gearman_tw_jobs"), [(0,)])

    @inlineCallbacks
    def test_openRefused(self):
        """
        A database that refuses connections fails the open once the
        timeout has passed, saying so.
        """
        port = freePort()
        queue = PostgreSQLQueue.fromURL("postgresql://gearman@127.0.0.1:%d/gearman?timeout=1" % (port,), reactor)
        began = time.monotonic()
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertEqual(
            str(failure),
            "postgresql open: cannot connect to PostgreSQL at 127.0.0.1:%d/gearman: connection refused" % (port,),
        )
        self.assertLess(time.monotonic() - began, 4)

    @inlineCallbacks
    def test_openMissingDatabase(self):
        """
        A database that does not exist fails the open at once.
        """
        queue = PostgreSQLQueue.fromURL(self.pg.url(database="missing", timeout="30"), reactor)
        began = time.monotonic()
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertIn('database "missing" does not exist', str(failure))
        self.assertLess(time.monotonic() - began, 5)

    @inlineCallbacks
    def test_closeWhileDown(self):
        """
        close() with the database down ends within the timeout of what is
        pending, failing it.
        """
        queue = PostgreSQLQueue.fromURL(self.pg.url(timeout="1"), reactor)
        yield queue.open()
        self.pg.kill()
        added = queue.add(job(1))
        self.assertFailure(added, QueueError)
        began = time.monotonic()
        yield queue.close()
        yield added
        self.assertLess(time.monotonic() - began, 5)


class PostgreSQLLeaseTests(LeaseContractMixin, TestCase):
    """
    The lease of a standby (L{PostgreSQLQueue.lease}), and the fenced
    writes of a queue that made one: the contract (L{LeaseContractMixin}),
    and what is PostgreSQL's own.
    """

    timeout = 120
    leaseType = PostgreSQLLease
    ttl = 0.5
    expiry = 0.7
    fencedAdd = "postgresql add: " + FENCED
    fenced = FENCED

    def setUp(self):
        self.pg = PostgresServer()
        self.addCleanup(self.pg.stop)

    def makeQueue(self, **query: str) -> PostgreSQLQueue:
        queue = PostgreSQLQueue.fromURL(self.pg.url(**query), reactor=reactor)
        self.addCleanup(queue.close)
        return queue

    @inlineCallbacks
    def openQueue(self, **query: str):
        queue = self.makeQueue(**query)
        yield queue.open()
        return queue

    def leaseRow(self) -> List[Any]:
        """
        The holder of the lease and the seconds it has left, by the
        database's clock.
        """
        return self.pg.execute("SELECT holder, extract(epoch FROM expires - clock_timestamp()) FROM gearman_tw_lease")

    def snapshot(self) -> List[Any]:
        """
        Every row of the jobs and kept tables.
        """
        return self.pg.execute(
            "SELECT key, function, unique_key, data, attempts, due FROM gearman_tw_jobs ORDER BY key"
        ) + self.pg.execute("SELECT kind, ident, value FROM gearman_tw_kept ORDER BY kind, ident")

    @inlineCallbacks
    def test_leaseRow(self):
        """
        The lease is the one row of C{<table>_lease}, made by the first
        acquire: the holder, and an expiry C{ttl} seconds after it was
        taken or renewed by the database's clock; released, the row is
        gone.
        """
        queue = yield self.openQueue()
        self.assertEqual(self.pg.execute("SELECT to_regclass('gearman_tw_lease')"), [(None,)])
        lease = queue.lease(b"host:1:ab", 30)
        self.assertTrue((yield lease.acquire()))
        [(holder, left)] = self.leaseRow()
        self.assertEqual(bytes(holder), b"host:1:ab")
        self.assertTrue(29 < left <= 30, left)
        self.pg.execute("UPDATE gearman_tw_lease SET expires = clock_timestamp() + interval '5 seconds'")
        self.assertTrue((yield lease.renew()))
        [(_, left)] = self.leaseRow()
        self.assertTrue(29 < left <= 30, left)
        from psycopg.errors import CheckViolation

        with self.assertRaises(CheckViolation):
            self.pg.execute("INSERT INTO gearman_tw_lease (id, holder, expires) VALUES (2, 'x', now())")
        yield lease.release()
        self.assertEqual(self.pg.execute("SELECT count(*) FROM gearman_tw_lease"), [(0,)])

    @inlineCallbacks
    def test_acquireMakesTables(self):
        """
        acquire() opens a queue that is not open: it makes the tables.
        """
        queue = self.makeQueue()
        self.assertTrue((yield queue.lease(b"a", 30).acquire()))
        self.assertEqual(self.pg.execute("SELECT to_regclass('gearman_tw_jobs') IS NOT NULL"), [(True,)])

    @inlineCallbacks
    def test_fencedRetries(self):
        """
        The deletes of a server that lost the lease fail (done, doneMany,
        and a retried delete), are kept to be retried, and their retries
        (the first after FIRST_RETRY_DELAY) fail too and change nothing.
        """
        first, second = (yield self.openQueue()), (yield self.openQueue())
        a, b = first.lease(b"a", self.ttl), second.lease(b"b", 30)
        self.assertTrue((yield a.acquire()))
        yield first.addMany([job(1), job(2), job(3)])
        yield first.done(1)
        yield first.keep(b"dead", [(b"x", b"y")], [], [])
        before = self.snapshot()
        self.assertEqual(len(before), 3)
        yield sleep(self.expiry)
        self.assertTrue((yield b.acquire()))
        for d in [first.done(2), first.doneMany([3]), first._retryDeletes([3])]:
            failure = yield self.assertFailure(d, QueueError)
            self.assertIn(FENCED, str(failure))
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(first.retries.count, 2)
        yield sleep(FIRST_RETRY_DELAY + 0.3)
        self.assertEqual((first.retries.count, first.retries._delay), (2, 2 * FIRST_RETRY_DELAY))
        self.assertEqual(self.snapshot(), before)
        self.assertEqual([j.key for j in (yield first.replay())], [2, 3])
        self.flushLoggedErrors(QueueError)

    @inlineCallbacks
    def test_takerWaitsForWrites(self):
        """
        A write transaction that passed the fence holds the lease's row: a
        server taking the expired lease waits for it to commit, and then
        sees what it stored.
        """
        first, second = (yield self.openQueue()), (yield self.openQueue())
        a, b = first.lease(b"a", 1), second.lease(b"b", 30)
        self.assertTrue((yield a.acquire()))
        self.pg.execute(
            "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN IF NEW.function = 'slow' THEN PERFORM pg_sleep(2); END IF; RETURN NULL; END $$"
        )
        self.pg.execute(
            "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON gearman_tw_jobs DEFERRABLE INITIALLY DEFERRED"
            " FOR EACH ROW EXECUTE FUNCTION slow()"
        )
        began = time.monotonic()
        added = first.add(job(1, function=b"slow"))
        yield sleep(1.2)
        # Expired by now, but the add's transaction has not ended.
        self.assertNoResult(added)
        self.assertTrue((yield b.acquire()))
        self.assertGreater(time.monotonic() - began, 1.9)
        yield added
        self.assertEqual([j.key for j in (yield second.replay())], [1])
        yield self.assertFailure(first.add(job(2)), QueueError)
        self.flushLoggedErrors(QueueError)

    @inlineCallbacks
    def test_unfencedIgnoreLeaseRow(self):
        """
        Without a lease, writes are not fenced: they neither look at nor
        wait for the lease's row, even while another server holds it, and
        make no lease table.
        """
        queue = yield self.openQueue()
        yield queue.add(job(1))
        self.assertEqual(self.pg.execute("SELECT to_regclass('gearman_tw_lease')"), [(None,)])
        holder = self.makeQueue()
        self.assertTrue((yield holder.lease(b"someone", 30).acquire()))
        other = self.pg.connect()
        self.addCleanup(other.close)
        other.autocommit = False
        other.execute("SELECT * FROM gearman_tw_lease FOR UPDATE")
        yield queue.addMany([job(2), job(3)])
        yield queue.done(1)
        yield queue.update([job(2, attempts=1)])
        yield queue.keep(b"k", [(b"i", b"v")], [3], [])
        self.assertEqual((yield queue.replay()), [job(2, attempts=1)])
        other.rollback()

    @inlineCallbacks
    def test_gearmandTableTakenByHolder(self):
        """
        With a lease, gearmand's table is taken over by the server that
        takes the lease, not by a standby opening the queue.
        """
        with self.pg.connect() as connection:
            connection.execute(GEARMAND_CREATE.format(table="queue"))
            connection.execute(GEARMAND_INSERT.format(table="queue"), (1, "u", "f", b"old", 0))
        first, second = self.makeQueue(), self.makeQueue()
        a, b = first.lease(b"a", 30), second.lease(b"b", 30)
        yield second.open()
        self.assertEqual(self.pg.execute("SELECT count(*) FROM queue"), [(1,)])
        self.assertTrue((yield a.acquire()))
        self.assertFalse((yield b.acquire()))
        self.assertEqual((yield first.replay()), [QueuedJob(b"f", 1, b"u", b"old", 1, 0)])
        self.assertEqual(self.pg.execute("SELECT to_regclass('queue')"), [(None,)])


class FromURLTests(SynchronousTestCase):
    """
    Tests for L{PostgreSQLQueue.fromURL}, and C{queueFromURL}'s use of it.
    """

    def test_defaults(self):
        """
        Without query parameters: tables C{gearman_tw_*}, gearmand's
        C{queue} taken over, a 10 s timeout.
        """
        queue = PostgreSQLQueue.fromURL("postgresql://u:secret@db.example:5433/jobs", reactor)
        self.assertEqual(
            (queue.jobsTable, queue.keptTable, queue.gearmandTable, queue.timeout, queue.where),
            ("gearman_tw_jobs", "gearman_tw_kept", "queue", 10.0, "db.example:5433/jobs"),
        )

    def test_parameters(self):
        """
        C{table}, C{gearmand_table} and C{timeout} are the queue's; other
        parameters are libpq's, passed on.
        """
        queue = queueFromURL(
            "postgres://u@h/db?table=jobs2&sslmode=disable&gearmand_table=gm&timeout=2.5&application_name=x", reactor
        )
        self.assertIsInstance(queue, PostgreSQLQueue)
        self.assertEqual((queue.jobsTable, queue.gearmandTable, queue.timeout), ("jobs2_jobs", "gm", 2.5))
        self.assertEqual(queue.conninfo, "postgres://u@h/db?sslmode=disable&application_name=x")
        self.assertIsNone(PostgreSQLQueue.fromURL("postgresql://h/db?gearmand_table=", reactor).gearmandTable)

    def assertRefused(self, url: str) -> str:
        with self.assertRaises(QueueError) as caught:
            queueFromURL(url, reactor)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        self.assertNotIn("secret", message)
        return message

    def test_badTableNames(self):
        """
        Table names that are not plain SQL names (an injection attempt, a
        quote, a space, a leading digit, too long) are refused.
        """
        for name in (
            "x;DROP TABLE users",
            'a"b',
            "a'b",
            "a b",
            "1abc",
            "",
            "x" * 59,
            "t\u00e9",
            "public.jobs",
            "x--",
        ):
            for parameter in ("table", "gearmand_table"):
                if parameter == "gearmand_table" and name in ("", "x" * 59):
                    continue
                url = "postgresql://u:secret@h/db?%s=%s" % (parameter, name.replace(";", "%3B").replace(" ", "%20"))
                self.assertIn("bad %s name" % (parameter,), self.assertRefused(url))
        for own in ("jobs", "kept", "lease"):
            self.assertIn(
                "one of the queue's own tables",
                self.assertRefused("postgresql://h/db?gearmand_table=gearman_tw_" + own),
            )

    def test_longestTableName(self):
        """
        A table name leaves room for C{_lease}: 57 characters at most.
        """
        queue = queueFromURL("postgresql://h/db?table=" + "x" * 57, reactor)
        self.assertEqual(len(queue.leaseTable), 63)
        self.assertIn("bad table name", self.assertRefused("postgresql://h/db?table=" + "x" * 58))

    def test_badURLs(self):
        """
        A bad port, timeout or repeated parameter is refused in one line,
        without the password.
        """
        self.assertIn("bad port 'x'", self.assertRefused("postgresql://u:secret@h:x/db"))
        for timeout in ("x", "0", "-1", "nan", "inf"):
            self.assertIn("timeout", self.assertRefused("postgresql://u:secret@h/db?timeout=" + timeout))
        self.assertIn("table given twice", self.assertRefused("postgresql://u:secret@h/db?table=a&table=b"))
        self.assertIn("bad connection URL", self.assertRefused("postgresql://u:secret@h/db?nosuchoption=1"))

    def test_psycopgMissing(self):
        """
        Without psycopg a C{postgresql://} URL is refused when the queue is
        made (so at option parsing), saying what to install.
        """
        import sys

        saved = {
            name: module for name, module in sys.modules.items() if name == "psycopg" or name.startswith("psycopg.")
        }
        for name in saved:
            del sys.modules[name]
        sys.modules["psycopg"] = None  # type: ignore[assignment]

        def restore():
            del sys.modules["psycopg"]
            sys.modules.update(saved)

        self.addCleanup(restore)
        self.assertIn("needs psycopg 3", self.assertRefused("postgresql://h/db"))
