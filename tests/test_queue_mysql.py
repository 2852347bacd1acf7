"""
Tests for L{gearman_tw.queues.mysql}: the shared persistent-queue contract
against a real MariaDB server, and what is MySQL's own: taking over
gearmand's table, reconnecting, faults, hostile names and data, and the
lease of a standby with its fenced writes.
"""

import sys
import time

from twisted.internet import reactor
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gearman_tw.errors import QueueError
from gearman_tw.queues import QueuedJob, queueFromURL
from gearman_tw.queues.mysql import NOT_HOLDER, MySQLLease, MySQLQueue, _driver
from tests.integration.servers import freePort
from tests.leasemixin import LeaseContractMixin
from tests.mysqlserver import DATABASE, USER, MariaDBServer
from tests.test_queues import PersistentQueueMixin, job, sleep

# gearmand 1.1's libgearman-server/plugins/queue/mysql/queue.cc creates its
# table so (GEARMAN_UNIQUE_SIZE is 64), with no engine: the server's default.
GEARMAND_CREATE = (
    "CREATE TABLE %s(unique_key VARCHAR(64),function_name VARCHAR(255),priority INT,data LONGBLOB,"
    "when_to_run INT,unique key (unique_key, function_name))"
)
GEARMAND_INSERT = (
    "INSERT INTO %s (unique_key, function_name, priority, data, when_to_run) VALUES(%%s, %%s, %%s, %%s, %%s)"
)


class MySQLQueueTests(PersistentQueueMixin, TestCase):
    """
    The MySQL backend, against a real MariaDB server.
    """

    def setUp(self):
        self.mysql = MariaDBServer()
        self.addCleanup(self.mysql.stop)

    def makeQueue(self, **parameters):
        return MySQLQueue.fromURL(self.mysql.url(**parameters), reactor=reactor)

    @inlineCallbacks
    def openQueue(self, **parameters):
        queue = self.makeQueue(**parameters)
        yield queue.open()
        self.addCleanup(queue.close)
        return queue

    def gearmandTable(self, rows, name="gearman_queue", engine=None):
        """
        Create gearmand's table with C{rows} (unique, function, priority,
        data, when), inserted as gearmand does.
        """
        create = GEARMAND_CREATE % (name,)
        if engine:
            create += " ENGINE=" + engine
        self.mysql.sql(create)
        for row in rows:
            self.mysql.sql(GEARMAND_INSERT % (name,), *row)

    def tables(self):
        return sorted(name for (name,) in self.mysql.sql("SHOW TABLES"))

    @inlineCallbacks
    def test_tables(self):
        """
        A job is one row of C{<table>_jobs}, an InnoDB table; a record of
        a kind one row of C{<table>_kept}.
        """
        queue = yield self.openQueue(table="q1")
        yield queue.add(job(7, priority=2, when=1900000000))
        yield queue.keep(b"dead", [(b"7", b"letter")], [], [])
        self.assertEqual(self.tables(), ["q1_jobs", "q1_kept"])
        self.assertEqual(
            self.mysql.sql("SELECT `key`, `function`, `unique`, `data`, priority, `when`, attempts, due FROM q1_jobs"),
            [(7, b"f", b"k7", b"data\x007", 2, 1900000000, 0, 0.0)],
        )
        self.assertEqual(self.mysql.sql("SELECT kind, ident, value FROM q1_kept"), [(b"dead", b"7", b"letter")])
        engines = self.mysql.sql(
            "SELECT table_name, engine FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", DATABASE
        )
        self.assertEqual(engines, [("q1_jobs", "InnoDB"), ("q1_kept", "InnoDB")])

    @inlineCallbacks
    def test_groupCommit(self):
        """
        Adds asked for while a transaction commits share the next one.
        """
        queue = yield self.openQueue()
        before = queue.commits
        yield gatherResults([queue.add(job(n)) for n in range(1, 101)])
        self.assertLessEqual(queue.commits - before, 2)
        self.assertEqual(len((yield queue.replay())), 100)

    # Taking over gearmand's table

    @inlineCallbacks
    def test_takesOverGearmandTable(self):
        """
        At open, the rows of gearmand's C{gearman_queue} table become jobs
        numbered after ours, in the table's order, with their unique key,
        priority, data and epoch time; the table is dropped, and opening
        again takes nothing twice.
        """
        queue = self.makeQueue()
        yield queue.open()
        yield queue.addMany([job(1), job(2)])
        yield queue.close()
        self.gearmandTable(
            [
                ("u-b", "resize", 1, b"\x00\xffpayload", 0),
                ("", "resize", 0, b"high", 0),
                ("550e8400-e29b-41d4-a716-446655440000", "mail", 2, b"low", 1900000000),
                ("u-a", "resize", None, None, None),
            ]
        )
        again = yield self.openQueue()
        self.assertEqual(
            (yield again.replay()),
            [
                job(1),
                job(2),
                QueuedJob(b"resize", 3, b"u-b", b"\x00\xffpayload", 1, 0),
                QueuedJob(b"resize", 4, b"", b"high", 0, 0),
                QueuedJob(b"mail", 5, b"550e8400-e29b-41d4-a716-446655440000", b"low", 2, 1900000000),
                QueuedJob(b"resize", 6, b"u-a", b"", 0, 0),
            ],
        )
        self.assertEqual(self.tables(), ["gearman_tw_jobs", "gearman_tw_kept"])
        yield again.close()
        third = yield self.openQueue()
        self.assertEqual([j.key for j in (yield third.replay())], [1, 2, 3, 4, 5, 6])

    @inlineCallbacks
    def test_takesOverMyISAMTable(self):
        """
        A gearmand table that is not InnoDB (a MyISAM default) is made
        InnoDB first, so that moving its rows is one transaction.
        """
        self.gearmandTable([("a", "f", 1, b"one", 0), ("b", "f", 1, b"two", 0)], engine="MyISAM")
        queue = yield self.openQueue()
        self.assertEqual([(j.key, j.data) for j in (yield queue.replay())], [(1, b"one"), (2, b"two")])
        self.assertNotIn("gearman_queue", self.tables())

    @inlineCallbacks
    def test_takesOverNamedTable(self):
        """
        C{gearmand_table} names gearmand's C{--mysql-table}; other tables
        are left alone.
        """
        self.gearmandTable([("a", "f", 1, b"mine", 0)], name="jobs_of_gearmand")
        self.gearmandTable([("b", "f", 1, b"not mine", 0)])
        queue = yield self.openQueue(gearmand_table="jobs_of_gearmand")
        self.assertEqual([j.data for j in (yield queue.replay())], [b"mine"])
        self.assertEqual(self.tables(), ["gearman_queue", "gearman_tw_jobs", "gearman_tw_kept"])

    @inlineCallbacks
    def test_takeOverInterrupted(self):
        """
        If the drop of gearmand's table fails after its rows were moved (as
        a crash between the two would leave it), opening again drops the
        emptied table and takes nothing twice.
        """
        self.gearmandTable([("a", "f", 1, b"one", 0), ("b", "f", 1, b"two", 0)])
        self.mysql.sql("REVOKE DROP ON `%s`.* FROM %%s@%%s" % (DATABASE,), USER, "127.0.0.1")
        queue = self.makeQueue()
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertIn("DROP command denied", str(failure))
        self.assertEqual(self.mysql.sql("SELECT COUNT(*) FROM gearman_queue"), [(0,)])
        self.mysql.sql("GRANT DROP ON `%s`.* TO %%s@%%s" % (DATABASE,), USER, "127.0.0.1")
        again = yield self.openQueue()
        self.assertEqual([(j.key, j.data) for j in (yield again.replay())], [(1, b"one"), (2, b"two")])
        self.assertNotIn("gearman_queue", self.tables())

    @inlineCallbacks
    def test_gearmandTableNotGearmands(self):
        """
        A table by gearmand's name without gearmand's columns fails the
        open, and is left as it is.
        """
        self.mysql.sql("CREATE TABLE gearman_queue (id INT PRIMARY KEY)")
        self.mysql.sql("INSERT INTO gearman_queue VALUES (1)")
        queue = self.makeQueue()
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertIn("Unknown column", str(failure))
        self.assertEqual(self.mysql.sql("SELECT id FROM gearman_queue"), [(1,)])

    # Connections lost and refused

    @inlineCallbacks
    def test_reconnectsAfterRestart(self):
        """
        After the database restarts the queue reconnects by itself and
        loses nothing acknowledged; an add asked for while it is down is
        held, then stored.
        """
        queue = yield self.openQueue()
        yield queue.add(job(1))
        self.mysql.restart()
        yield queue.add(job(2))
        self.mysql.kill()
        held = queue.add(job(3))
        yield sleep(0.5)
        self.assertNoResult(held)
        self.mysql.start()
        yield held
        self.assertEqual([j.key for j in (yield queue.replay())], [1, 2, 3])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_downPastTimeout(self):
        """
        With the database down longer than the timeout, an add fails with
        L{QueueError} saying why, within the timeout; it is not replayed
        once the database is back, and the queue works again.
        """
        queue = yield self.openQueue(timeout="1")
        yield queue.add(job(1))
        self.mysql.kill()
        started = time.monotonic()
        failure = yield self.assertFailure(queue.add(job(2)), QueueError)
        self.assertLess(time.monotonic() - started, 1.5)
        self.assertIn("cannot reach MySQL at 127.0.0.1:%d: connection refused" % (self.mysql.port,), str(failure))
        self.mysql.start()
        yield queue.add(job(3))
        self.assertEqual([j.key for j in (yield queue.replay())], [1, 3])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_pausedPastTimeout(self):
        """
        With the database frozen (SIGSTOP) past the timeout, adds fail
        within the timeout; once it goes on (SIGCONT) the queue recovers,
        and the failed adds are not stored (withdrawn if they were).
        """
        queue = yield self.openQueue(timeout="1")
        yield queue.add(job(1))
        self.mysql.pause()
        self.addCleanup(self.mysql.resume)
        started = time.monotonic()
        failures = yield gatherResults([self.assertFailure(queue.add(job(n)), QueueError) for n in (2, 3)])
        self.assertLess(time.monotonic() - started, 1.5)
        # The add's deadline, or the socket's read timeout (as long, and
        # started just after it) when the reactor wakes up late.
        self.assertRegex(str(failures[0]), "not stored within 1 s|no answer from MySQL at .* within 1 s")
        yield sleep(1.5)
        self.mysql.resume()
        for attempt in range(20):
            try:
                yield queue.add(job(10 + attempt))
                break
            except QueueError:
                pass
        yield queue.flush()
        # A withdrawal sent while the database was still frozen failed
        # too, and is retried with backoff (DeleteRetries): wait for it.
        for _ in range(100):
            if queue.retries.count == 0 and not queue._pending and queue._inFlight is None:
                break
            yield sleep(0.1)
        self.assertEqual(queue.retries.count, 0)
        keys = [j.key for j in (yield queue.replay())]
        self.assertEqual(keys[0], 1)
        self.assertNotIn(2, keys)
        self.assertNotIn(3, keys)
        self.assertGreaterEqual(len(keys), 2)
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_lostCommitRetried(self):
        """
        A COMMIT made whose answer is lost with the connection is tried
        again on a new connection, and storing the same jobs twice stores
        them once.
        """
        queue = LosingCommits.fromURL(self.mysql.url(), reactor=reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        queue.losses = 2
        yield queue.addMany([job(1), job(2)])
        self.assertEqual(queue.losses, 0)
        self.assertEqual((yield queue.replay()), [job(1), job(2)])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_lostCommitWithdrawn(self):
        """
        An add whose COMMIT answers stay lost until the timeout fails, and
        the jobs it may have stored (here it did) are withdrawn: not
        replayed.
        """
        queue = LosingCommits.fromURL(self.mysql.url(timeout="1"), reactor=reactor)
        yield queue.open()
        self.addCleanup(queue.close)
        yield queue.add(job(1))
        queue.losses = 1000
        failure = yield self.assertFailure(queue.addMany([job(2), job(3)]), QueueError)
        self.assertIn("lost the connection", str(failure))
        self.assertEqual([key for (key,) in self.mysql.sql("SELECT `key` FROM gearman_tw_jobs ORDER BY 1")], [1, 2, 3])
        queue.losses = 0
        for _ in range(100):
            yield queue.flush()
            keys = [j.key for j in (yield queue.replay())]
            if keys == [1]:
                break
            yield sleep(0.1)
        self.assertEqual(keys, [1])
        self.assertEqual(queue.retries.count, 0)
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_refused(self):
        """
        A refused first connection fails the open at once, saying so, even
        with a long timeout.
        """
        port = freePort()
        queue = MySQLQueue(DATABASE, host="127.0.0.1", port=port, reactor=reactor, timeout=20)
        started = time.monotonic()
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertEqual(
            str(failure),
            "mysql: cannot open the queue: cannot reach MySQL at 127.0.0.1:%d: connection refused" % (port,),
        )
        self.assertLess(time.monotonic() - started, 5)

    @inlineCallbacks
    def test_wrongPassword(self):
        """
        A refused login fails the open at once with MySQL's reason.
        """
        queue = MySQLQueue(
            DATABASE, host="127.0.0.1", port=self.mysql.port, user=USER, password="wrong", reactor=reactor
        )
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertIn("MySQL error 1045: Access denied for user 'gearman'", str(failure))

    @inlineCallbacks
    def test_notInnoDB(self):
        """
        Tables of ours in another engine fail the open: their commits would
        not be durable.
        """
        self.mysql.sql(
            "CREATE TABLE gearman_tw_jobs (`key` BIGINT NOT NULL PRIMARY KEY, `function` MEDIUMBLOB NOT NULL,"
            " `unique` BLOB NOT NULL, `data` LONGBLOB NOT NULL, priority TINYINT UNSIGNED NOT NULL,"
            " `when` BIGINT NOT NULL, attempts INT UNSIGNED NOT NULL, due DOUBLE NOT NULL) ENGINE=MyISAM"
        )
        queue = self.makeQueue()
        failure = yield self.assertFailure(queue.open(), QueueError)
        yield queue.close()
        self.assertIn("table gearman_tw_jobs uses the MyISAM engine, not InnoDB", str(failure))

    @inlineCallbacks
    def test_warnsWithoutDurableCommits(self):
        """
        Opening warns when C{innodb_flush_log_at_trx_commit} is not 1.
        """
        self.mysql.sql("SET GLOBAL innodb_flush_log_at_trx_commit = 2")
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        yield self.openQueue()
        warnings = [e for e in events if "innodb_flush_log_at_trx_commit" in e.get("log_format", "")]
        self.assertEqual([e["value"] for e in warnings], [2])

    # Faults of single changes

    @inlineCallbacks
    def test_refusedDeleteRetried(self):
        """
        Deletes the database refuses (a trigger signalling an error) fail,
        are kept, and are retried until they succeed.
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(1), job(2), job(3)])
        self.mysql.sql(
            "CREATE TRIGGER refuse BEFORE DELETE ON gearman_tw_jobs FOR EACH ROW"
            " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'deletes refused'"
        )
        failure = yield self.assertFailure(queue.doneMany([1, 2]), QueueError)
        self.assertIn("deletes refused", str(failure))
        self.assertEqual(queue.retries.count, 2)
        yield sleep(0.7)
        self.assertEqual(queue.retries.count, 2)
        self.mysql.sql("DROP TRIGGER refuse")
        for _ in range(100):
            if queue.retries.count == 0 and not queue._pending and queue._inFlight is None:
                break
            yield sleep(0.1)
        self.assertEqual([j.key for j in (yield queue.replay())], [3])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_refusedDeleteRetriedAtClose(self):
        """
        A refused delete is retried once more at close().
        """
        queue = self.makeQueue()
        yield queue.open()
        yield queue.addMany([job(1), job(2)])
        self.mysql.sql(
            "CREATE TRIGGER refuse BEFORE DELETE ON gearman_tw_jobs FOR EACH ROW"
            " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'deletes refused'"
        )
        yield self.assertFailure(queue.done(1), QueueError)
        self.mysql.sql("DROP TRIGGER refuse")
        yield queue.close()
        again = yield self.openQueue()
        self.assertEqual([j.key for j in (yield again.replay())], [2])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_keepFailsWhole(self):
        """
        A keep the database refuses stores none of its records and forgets
        none of its jobs, and is not retried.
        """
        queue = yield self.openQueue()
        yield queue.addMany([job(1), job(2)])
        self.mysql.sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON gearman_tw_kept FOR EACH ROW"
            " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'records refused'"
        )
        yield self.assertFailure(queue.keep(b"dead", [(b"1", b"x")], [1], []), QueueError)
        self.mysql.sql("DROP TRIGGER refuse")
        yield sleep(1)
        self.assertEqual((yield queue.kept(b"dead")), [])
        self.assertEqual([j.key for j in (yield queue.replay())], [1, 2])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_tooLargeForPacket(self):
        """
        A job that cannot fit the database's C{max_allowed_packet} fails at
        once, alone.
        """
        self.mysql.sql("SET GLOBAL max_allowed_packet = 1048576")
        queue = yield self.openQueue()
        big = queue.add(job(1, data=b"x" * 600000))
        small = queue.add(job(2))
        failure = yield self.assertFailure(big, QueueError)
        self.assertIn("does not fit the database's max_allowed_packet (1048576 bytes)", str(failure))
        yield small
        yield queue.add(job(3, data=b"y" * 500000))
        self.assertEqual([(j.key, len(j.data)) for j in (yield queue.replay())], [(2, 6), (3, 500000)])

    @inlineCallbacks
    def test_longIdentRefused(self):
        """
        A record whose ident does not fit the primary key fails at once.
        """
        queue = yield self.openQueue()
        failure = yield self.assertFailure(queue.keep(b"policy", [(b"f" * 3000, b"{}")], [], []), QueueError)
        self.assertIn("an ident is 3000 bytes long, more than 2048", str(failure))

    # Hostile names and data

    def test_injectedTableNames(self):
        """
        Table names other than letters, digits and underscores are refused
        when the queue is made, before anything is sent.
        """
        for name in ["x`; DROP TABLE t; --", "a b", "t'", "", "é", "x" * 59, "gearman_tw_jobs`"]:
            with self.assertRaises(QueueError, msg=name):
                MySQLQueue(DATABASE, table=name, reactor=reactor)
        # The longest prefix whose lease table's name fits.
        self.assertEqual(MySQLQueue(DATABASE, table="x" * 58, reactor=reactor).leaseTable, "x" * 58 + "_lease")
        for name in ["g`q", "x" * 65, "gearman_tw_jobs", "GEARMAN_TW_KEPT", "gearman_tw_lease"]:
            with self.assertRaises(QueueError, msg=name):
                MySQLQueue(DATABASE, gearmandTable=name, reactor=reactor)
        with self.assertRaises(QueueError):
            MySQLQueue.fromURL(self.mysql.url(table="t`x"), reactor=reactor)

    @inlineCallbacks
    def test_dataVerbatim(self):
        """
        Quotes, backslashes, NULs, SQL and bytes that are not UTF-8 are
        stored and replayed as they are, in every field and record.
        """
        nasty = b"'; DROP TABLE gearman_tw_jobs; -- \\' \" \x00 \\0 \x1a \r\n %s %%s \xff\xfe\xc3("
        jobs = [
            job(1, function=nasty, unique=nasty[:64], data=nasty),
            job(2, data=bytes(range(256)) * 10),
            job(3, function=b"\\", unique=b"\x00", data=b"\\"),
        ]
        queue = yield self.openQueue()
        yield queue.addMany(jobs)
        yield queue.keep(nasty, [(nasty, nasty), (b"\xff", b"")], [], [])
        self.assertEqual((yield queue.replay()), jobs)
        self.assertEqual(sorted((yield queue.kept(nasty))), sorted([(nasty, nasty), (b"\xff", b"")]))
        yield queue.keep(nasty, [], [1], [nasty])
        self.assertEqual((yield queue.kept(nasty)), [(b"\xff", b"")])
        self.assertEqual((yield queue.replay()), jobs[1:])
        self.assertEqual(self.tables(), ["gearman_tw_jobs", "gearman_tw_kept"])

    @inlineCallbacks
    def test_noBackslashEscapes(self):
        """
        A server whose SQL mode makes backslashes plain characters stores
        the same bytes (the queue sets its own SQL mode, and sends bytes as
        hexadecimal).
        """
        self.mysql.sql("SET GLOBAL sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES'")
        queue = yield self.openQueue()
        record = job(1, unique=b"\\'", data=b"\\\x00'\"")
        yield queue.add(record)
        self.assertEqual((yield queue.replay()), [record])


class MySQLLeaseTests(LeaseContractMixin, TestCase):
    """
    The MySQL queue's lease (L{MySQLLease}), and its fenced writes,
    against a real MariaDB server: the contract (L{LeaseContractMixin}),
    and what is MySQL's own.
    """

    timeout = 60
    leaseType = MySQLLease
    ttl = 0.6
    expiry = 0.8
    fencedAdd = "mysql add: " + NOT_HOLDER
    fenced = NOT_HOLDER

    def setUp(self):
        self.mysql = MariaDBServer()
        self.addCleanup(self.mysql.stop)

    def makeQueue(self, **parameters):
        queue = MySQLQueue.fromURL(self.mysql.url(**parameters), reactor=reactor)
        self.addCleanup(queue.close)
        return queue

    @inlineCallbacks
    def openQueue(self, **parameters):
        queue = self.makeQueue(**parameters)
        yield queue.open()
        return queue

    def snapshot(self):
        """
        Every row of the jobs and kept tables.
        """
        return self.mysql.sql("SELECT * FROM gearman_tw_jobs ORDER BY `key`") + self.mysql.sql(
            "SELECT * FROM gearman_tw_kept ORDER BY kind, ident"
        )

    def selects(self):
        """
        How many SELECTs the database has run, in every session.
        """
        [(_, value)] = self.mysql.sql("SHOW GLOBAL STATUS LIKE 'Com_select'")
        return int(value)

    @inlineCallbacks
    def test_table(self):
        """
        The lease is the one row of C{<table>_lease}, an InnoDB table made
        when a lease is first used: its holder, and its expiry, C{ttl}
        after the take or renewal by the database's clock (with
        microseconds); released, it has no holder and long expired.
        """
        queue = yield self.openQueue(table="q1")
        self.assertNotIn("q1_lease", [name for (name,) in self.mysql.sql("SHOW TABLES")])
        lease = queue.lease(b"server-a", 30)
        self.assertTrue((yield lease.acquire()))
        [(holder, left)] = self.mysql.sql(
            "SELECT holder, TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires) FROM q1_lease"
        )
        self.assertEqual(holder, b"server-a")
        self.assertTrue(29e6 < left <= 30e6, left)
        self.assertEqual(
            self.mysql.sql("SELECT engine FROM information_schema.tables WHERE table_name = 'q1_lease'"),
            [("InnoDB",)],
        )
        yield lease.release()
        self.assertEqual(self.mysql.sql("SELECT holder, expires < UTC_TIMESTAMP(6) FROM q1_lease"), [(b"", 1)])

    @inlineCallbacks
    def test_databaseClock(self):
        """
        A lease expires by the database's clock: one whose expiry is in the
        database's past is free, whatever this machine's clock says.
        """
        first, second = (yield self.openQueue()), (yield self.openQueue())
        a, b = first.lease(b"a", 3600), second.lease(b"b", 3600)
        self.assertTrue((yield a.acquire()))
        self.assertFalse((yield b.acquire()))
        self.mysql.sql("UPDATE gearman_tw_lease SET expires = UTC_TIMESTAMP(6) - INTERVAL 1 MICROSECOND")
        self.assertFalse((yield a.renew()))
        self.assertTrue((yield b.acquire()))
        self.assertEqual(self.mysql.sql("SELECT holder FROM gearman_tw_lease"), [(b"b",)])

    @inlineCallbacks
    def test_openedOnce(self):
        """
        Concurrent opens of a queue share one; a closed queue does not open
        again.
        """
        queue = self.makeQueue()
        yield gatherResults([queue.open(), queue.open()])
        yield queue.close()
        yield self.assertFailure(queue.open(), QueueError)

    @inlineCallbacks
    def test_fencedRetries(self):
        """
        A withdrawal, and a done that failed, of a server that lost the
        lease are kept to be retried, and their retries fail too and change
        nothing; once the server holds the lease, they succeed.
        """
        first, second = (yield self.openQueue()), (yield self.openQueue())
        a, b = first.lease(b"a", 30), second.lease(b"b", 30)
        self.assertTrue((yield a.acquire()))
        yield first.addMany([job(1), job(2), job(3)])
        yield first.keep(b"deadletter", [(b"9", b"kept")], [], [])
        before = self.snapshot()
        yield self.assertFailure(second.done(2), QueueError)
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        second._withdraw([3])
        second._kick()
        yield second.flush()
        self.assertEqual(second.retries.count, 2)
        for _ in range(50):
            if any("failed again" in e.get("log_format", "") for e in events):
                break
            yield sleep(0.1)
        self.assertTrue(any(NOT_HOLDER in str(e.get("why")) for e in events if "failed again" in e["log_format"]))
        self.assertEqual(second.retries.count, 2)
        self.assertEqual(self.snapshot(), before)
        # Once the lease passes, the retries succeed.
        yield a.release()
        self.assertTrue((yield b.acquire()))
        for _ in range(100):
            if second.retries.count == 0:
                break
            yield sleep(0.1)
        self.assertEqual(second.retries.count, 0)
        self.assertEqual([j.key for j in (yield first.replay())], [1])
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_unfencedSendNoSelect(self):
        """
        Without a lease, writes are not fenced, even while another server
        holds the lease, and send no statement more than before (no
        SELECT); a fenced write sends one.
        """
        holder = yield self.openQueue()
        self.assertTrue((yield holder.lease(b"someone", 30).acquire()))
        queue = yield self.openQueue()
        yield queue.add(job(1))
        before = self.selects()
        yield queue.addMany([job(2), job(3)])
        yield queue.done(1)
        yield queue.update([job(2, attempts=1)])
        yield queue.keep(b"deadletter", [(b"2", b"x")], [2], [])
        self.assertEqual(self.selects(), before)
        self.assertEqual([j.key for j in (yield queue.replay())], [3])
        fenced = yield self.openQueue()
        fenced.lease(b"someone", 30)
        before = self.selects()
        yield fenced.add(job(4))
        self.assertEqual(self.selects(), before + 1)

    @inlineCallbacks
    def test_standbyTakesOverGearmandOnceHeld(self):
        """
        A queue with a lease takes gearmand's table over when it takes the
        lease, not when it opens: a standby leaves it to the server that
        serves.
        """
        serving = yield self.openQueue()
        self.assertTrue((yield serving.lease(b"a", 30).acquire()))
        yield serving.add(job(1))
        self.mysql.sql(GEARMAND_CREATE % ("gearman_queue",))
        self.mysql.sql(GEARMAND_INSERT % ("gearman_queue",), "u", "f", 1, b"old", 0)
        standby = self.makeQueue()
        lease = standby.lease(b"b", 30)
        self.assertFalse((yield lease.acquire()))
        self.assertEqual(self.mysql.sql("SELECT COUNT(*) FROM gearman_queue"), [(1,)])
        yield serving.close()
        self.mysql.sql("UPDATE gearman_tw_lease SET expires = UTC_TIMESTAMP(6)")
        self.assertTrue((yield lease.acquire()))
        self.assertEqual([(j.key, j.data) for j in (yield standby.replay())], [(1, b"data\x001"), (2, b"old")])
        self.assertNotIn("gearman_queue", [name for (name,) in self.mysql.sql("SHOW TABLES")])


class LosingCommits(MySQLQueue):
    """
    A queue whose connection breaks just after each COMMIT is made (its
    answer lost), L{losses} times.
    """

    losses = 0

    def _transaction(self, cursor, operations, flag):
        MySQLQueue._transaction(self, cursor, operations, flag)
        if self.losses:
            self.losses -= 1
            flag[0] = True
            cursor.connection.close()
            raise _driver().err.OperationalError(2013, "Lost connection to MySQL server during query")


class URLTests(SynchronousTestCase):
    """
    Tests for L{MySQLQueue.fromURL} and its dispatch from C{queueFromURL}.
    """

    def test_full(self):
        """
        Every part of a URL is read; user and password are percent-decoded.
        """
        queue = MySQLQueue.fromURL(
            "mysql://us%40r:p%3Ass%2F@db.example:3307/jobs%2Dq?table=t1&gearmand_table=old&timeout=2.5",
            reactor=object(),
        )
        self.assertEqual(
            (queue.host, queue.port, queue.user, queue.password, queue.database, queue.jobsTable, queue.keptTable),
            ("db.example", 3307, "us@r", "p:ss/", "jobs-q", "t1_jobs", "t1_kept"),
        )
        self.assertEqual((queue.gearmandTable, queue.timeout, queue.unixSocket), ("old", 2.5, None))

    def test_defaults(self):
        """
        The defaults: localhost:3306, no user, tables C{gearman_tw_*},
        gearmand's C{gearman_queue}, 10 s.
        """
        queue = queueFromURL("mariadb://localhost/gearman", object())
        self.assertIsInstance(queue, MySQLQueue)
        self.assertEqual(
            (queue.host, queue.port, queue.user, queue.password, queue.database),
            ("localhost", 3306, None, None, "gearman"),
        )
        self.assertEqual(
            (queue.jobsTable, queue.gearmandTable, queue.timeout), ("gearman_tw_jobs", "gearman_queue", 10)
        )
        self.assertEqual(queue.name, "mysql")
        self.assertTrue(queue.persistent)

    def test_unixSocket(self):
        """
        C{unix_socket} connects through a Unix socket.
        """
        queue = queueFromURL("mysql://u:p@localhost/db?unix_socket=/run/mysqld/mysqld.sock", object())
        self.assertEqual(queue.unixSocket, "/run/mysqld/mysqld.sock")

    def test_bad(self):
        """
        Bad URLs are refused with a one-line L{QueueError}.
        """
        for url, reason in [
            ("mysql://localhost", "must name one database"),
            ("mysql://localhost/", "must name one database"),
            ("mysql://localhost/a/b", "must name one database"),
            ("mysql://localhost:port/db", "bad URL"),
            ("mysql://localhost:99999/db", "bad URL"),
            ("mysql://localhost/db?tabel=x", "unknown URL parameter 'tabel'"),
            ("mysql://localhost/db?table=a&table=b", "given 2 times"),
            ("mysql://localhost/db?timeout=soon", "timeout must be a number"),
            ("mysql://localhost/db?timeout=0", "positive number"),
            ("mysql://localhost/db?timeout=inf", "positive number"),
            ("mysql://localhost/db?table=a;b", "bad table name"),
            ("mysql://localhost/db?table=%60x", "bad table name"),
            ("mysql://localhost/db?gearmand_table=gearman_tw_jobs", "one of the queue's own tables"),
            ("mysql://localhost/db#x", "fragment"),
        ]:
            with self.assertRaises(QueueError, msg=url) as caught:
                queueFromURL(url, object())
            self.assertIn(reason, str(caught.exception), url)
            self.assertNotIn("\n", str(caught.exception))

    def restore(self, name, module):
        if module is None:
            del sys.modules[name]
        else:
            sys.modules[name] = module

    def test_pymysqlMissing(self):
        """
        Without PyMySQL a C{mysql://} URL is refused when the queue is made
        (so at option parsing), saying what to install.
        """
        saved = sys.modules.get("pymysql")
        sys.modules["pymysql"] = None  # type: ignore[assignment]
        self.addCleanup(self.restore, "pymysql", saved)
        with self.assertRaises(QueueError) as caught:
            queueFromURL("mysql://localhost/gearman", object())
        self.assertIn("the MySQL queue needs PyMySQL: pip install PyMySQL", str(caught.exception))

    def test_notOpen(self):
        """
        Before open, every change fails with L{QueueError}.
        """
        queue = MySQLQueue("db", reactor=object())
        for d in [
            queue.add(job(1)),
            queue.doneMany([1]),
            queue.update([job(1)]),
            queue.keep(b"k", [], [], []),
            queue.replay(),
            queue.kept(b"k"),
        ]:
            self.failureResultOf(d, QueueError)
