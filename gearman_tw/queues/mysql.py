# -*- test-case-name: tests.test_queue_mysql -*-
"""
The MySQL and MariaDB persistent queue, through PyMySQL (hidden in this
module): C{mysql://USER:PASSWORD@HOST:PORT/DATABASE?table=NAME}.

Two InnoDB tables, named from C{table} (C{gearman_tw} by default):
C{<table>_jobs}, one row per job (C{key} the primary key, then
C{function}, C{unique}, C{data}, C{priority}, C{when}, C{attempts},
C{due}), and C{<table>_kept}, the records of a kind that outlive a job
(C{kind}, C{ident}, C{value}, keyed by kind and ident).  Table names are
checked (letters, digits, underscores) and quoted; every value goes to
PyMySQL as a parameter (bytes as hexadecimal literals), never into the
text of a statement.

All database work happens on one dedicated thread, over one connection.
Stores, deletes and updates that arrive while a transaction commits wait
and go together into the next one (group commit), so one redo-log flush
covers many jobs.  Commits are durable across a crash of the database's
host only with C{innodb_flush_log_at_trx_commit=1} (the default), which
L{MySQLQueue.open} checks and warns about.

A transaction whose connection breaks (the database restarting, a network
failure, no answer within the timeout) is retried from its start on a new
connection, until the queue's timeout has passed since it began.  The
statements are idempotent, so a retry after a lost COMMIT (one that may
have been made) changes nothing more: a store is an C{INSERT ... ON
DUPLICATE KEY UPDATE} that leaves an existing row alone.  An add not
stored within the timeout after it was asked for fails with L{QueueError}
(the client gets QUEUE_ERROR), and if it may have been stored all the same
it is withdrawn: its rows are deleted in a later transaction, and that
delete is retried until it succeeds if it fails too (L{DeleteRetries}).
Deletes that fail are kept and retried the same way.

A standby (C{twistd gearman --standby}, L{gearman_tw.server.standby})
holds the lease of the tables' prefix in a third table, C{<table>_lease}
(L{MySQLLease}), made when a lease is first used: one row, the holder's
name and when the lease expires, by the database's clock
(C{UTC_TIMESTAMP(6)}).  Once a queue made a lease (L{MySQLQueue.lease}),
each of its write transactions first reads that row, locking it in share
mode, and writes nothing unless this server holds the lease; the lock keeps
another server from taking it until the transaction ends.  A queue without
a lease sends no such statement.

At L{MySQLQueue.open} a table left by gearmand's MySQL queue plugin
(C{gearman_queue}, its C{--mysql-table}) is taken over: its rows become
jobs of ours, numbered after ours in the table's order, and the table is
dropped (by a queue with a lease, once it holds it: a standby leaves it to
the server that serves).  See L{MySQLQueue._takeOverGearmand} for the steps
and what a crash between them leaves.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from gearman_tw.errors import QueueError
from gearman_tw.interfaces import ILease, IPersistentQueue
from gearman_tw.queues import DeleteRetries, QueuedJob

#: Seconds the queue waits for an add to be stored (and for each answer of
#: the database) before it gives up on it.
DEFAULT_TIMEOUT = 10.0

#: The prefix of the queue's own tables (C{<table>_jobs}, C{<table>_kept},
#: C{<table>_lease}).
DEFAULT_TABLE = "gearman_tw"

#: The table gearmand's MySQL queue writes (its C{--mysql-table} default).
GEARMAND_TABLE = "gearman_queue"

#: MySQL's port.
DEFAULT_PORT = 3306

#: The switch interval (seconds) the queue's thread works best with: it
#: waits for each answer of the database and then needs the GIL back, which
#: with Python's default 5 ms waits behind the reactor's Python code each
#: time (see L{gearman_tw.queues.sqlite.SQLiteQueue}).  Measured with the
#: reactor kept busy, a lone add took 9 to 11 ms at 5 ms and 2.6 ms at this.
SWITCH_INTERVAL = 0.0002

#: The most attempts a row holds (more are stored as this many).
MAX_ATTEMPTS = 0xFFFFFFFF

#: The longest kind and ident of a kept record, in bytes (their primary
#: key must fit InnoDB's 3072 bytes).
MAX_KIND = 64
MAX_IDENT = 2048

#: The longest name of a lease's holder, in bytes.
MAX_HOLDER = 1024

#: What a write transaction of a queue fenced by a lease that this server
#: does not hold fails with.
NOT_HOLDER = "this server does not hold the lease of the namespace"

#: Keys (or idents) per C{IN (...)} list, and rows per C{UPDATE} at most.
ROWS_PER_STATEMENT = 1000

#: A multi-row INSERT is cut into statements of about this many bytes at
#: most (below the server's C{max_allowed_packet}).
STATEMENT_BYTES = 4 << 20

#: Bytes of a statement besides its values (the INSERT's text, and each
#: value's quoting), counted when checking a job fits C{max_allowed_packet}.
STATEMENT_OVERHEAD = 1024

#: Seconds between two attempts at a transaction whose connection broke,
#: at first (the very first retry is at once) and at most.
FIRST_PAUSE = 0.05
MAX_PAUSE = 0.5

#: Names the queue accepts for its tables.
_NAME = re.compile(r"\A[A-Za-z0-9_]{1,64}\Z")

#: What a URL may say after C{?}.
_PARAMETERS = ("table", "gearmand_table", "timeout", "unix_socket")

# MySQL's error numbers that break or end a connection, or end a
# transaction without a fault of ours: the transaction is tried again (on a
# new connection unless the old one is still up).  1040 too many
# connections, 1053 server shutdown, 1158-1161 network errors, 1205 lock
# wait timeout, 1213 deadlock, 1927 connection killed, 2002/2003 cannot
# connect, 2006 gone away, 2013 lost during query, 2055 lost (system error).
_TRANSIENT = frozenset({1040, 1053, 1158, 1159, 1160, 1161, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055})

# Errors after which the connection itself is fine.
_KEEPS_CONNECTION = frozenset({1205, 1213})

# What the database thread is asked to do, in order.
_ADD = 0
_DONE = 1
_UPDATE = 2
_KEEP = 3

# What a lease asks the database thread.
_ACQUIRE = 0
_RENEW = 1
_RELEASE = 2

# The lease row's key, and its expiry when nobody holds it.
_LEASE_ROW = 1
_NEVER = "1000-01-01 00:00:00"

# A job as a row: key, function, unique, data, priority, when, attempts, due.
_Row = Tuple[int, bytes, bytes, bytes, int, int, int, float]

_T = TypeVar("_T")


class _Failed(Exception):
    """
    A piece of database work failed (for good, or past the timeout).

    @ivar why: what went wrong, for people.
    @ivar maybeCommitted: an attempt lost its connection while committing,
        so what it wrote may be stored.
    """

    def __init__(self, why: str, maybeCommitted: bool = False) -> None:
        Exception.__init__(self, why)
        self.why = why
        self.maybeCommitted = maybeCommitted


class _Operation:
    """
    One add, delete, update or keep waiting for (or in) a transaction.

    @ivar timer: an add's deadline (a delayed call), until it ends.
    @ivar expired: an add answered with L{QueueError} at its deadline.
    """

    __slots__ = ("kind", "payload", "deferred", "timer", "expired")

    def __init__(self, kind: int, payload: Any, deferred: "Deferred[None]") -> None:
        self.kind = kind
        self.payload = payload
        self.deferred = deferred
        self.timer: Any = None
        self.expired = False


@implementer(IPersistentQueue)
class MySQLQueue:
    """
    Background jobs kept in a MySQL or MariaDB database.

    @ivar commits: transactions committed so far (for tests and metrics).
    @ivar retries: the deletes (and withdrawals) that failed, retried until
        they succeed.
    @ivar switchInterval: the interpreter switch interval this queue works
        best with (L{SWITCH_INTERVAL}); C{twistd gearman} applies it.
    """

    name = "mysql"
    persistent = True
    log = Logger()

    def __init__(
        self,
        database: str,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        user: Optional[str] = None,
        password: Optional[str] = None,
        unixSocket: Optional[str] = None,
        table: str = DEFAULT_TABLE,
        gearmandTable: str = GEARMAND_TABLE,
        reactor: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
        switchInterval: Optional[float] = SWITCH_INTERVAL,
    ) -> None:
        """
        @param database: the database holding the tables.
        @param unixSocket: a Unix socket to connect to instead of
            C{host} and C{port}.
        @param table: the prefix of the queue's tables (C{_jobs},
            C{_kept}).
        @param gearmandTable: the table of gearmand's MySQL queue to take
            over.
        @param timeout: seconds an add may wait to be stored, and each
            answer of the database may take.

        @raise QueueError: PyMySQL is not installed, or a name or the
            timeout is not acceptable.
        """
        try:
            _driver()
        except ImportError as e:
            raise QueueError("the MySQL queue needs PyMySQL: pip install PyMySQL (%s)" % (e,)) from None
        if not _NAME.match(table) or len(table) > 64 - len("_lease"):
            raise QueueError("mysql: bad table name %r (letters, digits and _, at most 58)" % (table,))
        if not _NAME.match(gearmandTable):
            raise QueueError("mysql: bad gearmand_table name %r (letters, digits and _, at most 64)" % (gearmandTable,))
        self.jobsTable = table + "_jobs"
        self.keptTable = table + "_kept"
        self.leaseTable = table + "_lease"
        if gearmandTable.lower() in (self.jobsTable.lower(), self.keptTable.lower(), self.leaseTable.lower()):
            raise QueueError("mysql: gearmand_table %r is one of the queue's own tables" % (gearmandTable,))
        if not database:
            raise QueueError("mysql: no database given, e.g. mysql://user:password@host/gearman")
        if not (0 < timeout < math.inf):
            raise QueueError("mysql: the timeout must be a positive number of seconds")
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.database = database
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.unixSocket = unixSocket
        self.table = table
        self.gearmandTable = gearmandTable
        self.reactor = reactor
        self.timeout = timeout
        self.switchInterval = switchInterval
        self.commits = 0
        self.retries = DeleteRetries(reactor, self._retryDeletes, self.name)
        self._where = unixSocket if unixSocket else "%s:%d" % (host, port)
        self._pool: Optional[ThreadPool] = None
        self._shutdownTrigger: Any = None
        self._opened = False
        self._closed = False
        # Those waiting for an open under way.
        self._opening: Optional[List[Deferred[None]]] = None
        self._pending: List[_Operation] = []
        self._inFlight: Optional[List[_Operation]] = None
        self._flushed: List[Deferred[None]] = []
        # The largest statement the server takes (its max_allowed_packet),
        # read at each connection.
        self._maxPacket = 16 << 20
        # What last went wrong in the database thread (None once it works).
        self._trouble: Optional[str] = None
        # The database thread's connection, and whether it ever had one.
        self._connection: Any = None
        self._connected = False
        # The table names, quoted for statements.
        self._jobs = _quote(self.jobsTable)
        self._kept = _quote(self.keptTable)
        self._lease = _quote(self.leaseTable)
        # The holder every write transaction checks holds the lease, once a
        # lease was made (L{lease}); empty: writes are not fenced.
        self._fence = b""
        # Whether the lease table was made (or found), in the database
        # thread.
        self._leaseReady = False
        # A job stored again (after a COMMIT whose outcome was lost) is left
        # as it is.
        self._insertJobs = (
            "INSERT INTO %s (`key`, `function`, `unique`, `data`, `priority`, `when`, `attempts`, `due`)"
            " VALUES (%%s, %%s, %%s, %%s, %%s, %%s, %%s, %%s) ON DUPLICATE KEY UPDATE `key` = `key`" % (self._jobs,)
        )
        self._replaceKept = "REPLACE INTO %s (`kind`, `ident`, `value`) VALUES (%%s, %%s, %%s)" % (self._kept,)

    @classmethod
    def fromURL(cls, url: str, reactor: Any = None) -> "MySQLQueue":
        """
        The queue a URL names: C{mysql://USER:PASSWORD@HOST:PORT/DATABASE}
        (or C{mariadb://}), with optional C{?table=NAME} (the prefix of
        the queue's tables, C{gearman_tw}), C{gearmand_table=NAME} (the
        gearmand table to take over, C{gearman_queue}), C{timeout=SECONDS}
        (10) and C{unix_socket=PATH}.  User and password are
        percent-decoded.

        @raise QueueError: the URL is not one, with a one-line reason.
        """
        try:
            parsed = urlsplit(url)
            port = parsed.port
        except ValueError as e:
            raise QueueError("mysql: bad URL: %s" % (e,)) from None
        if parsed.scheme not in ("mysql", "mariadb"):
            raise QueueError("mysql: the URL must start with mysql:// or mariadb://")
        if parsed.fragment:
            raise QueueError("mysql: the URL must not have a #fragment")
        database = unquote(parsed.path[1:] if parsed.path.startswith("/") else parsed.path)
        if not database or "/" in database:
            raise QueueError("mysql: the URL must name one database, e.g. mysql://user:password@host/gearman")
        try:
            query = parse_qs(parsed.query, keep_blank_values=True, strict_parsing=bool(parsed.query))
        except ValueError as e:
            raise QueueError("mysql: bad query in the URL: %s" % (e,)) from None
        for name, values in query.items():
            if name not in _PARAMETERS:
                raise QueueError("mysql: unknown URL parameter %r (known: %s)" % (name, ", ".join(_PARAMETERS)))
            if len(values) != 1:
                raise QueueError("mysql: URL parameter %r given %d times" % (name, len(values)))
        options = {name: values[0] for name, values in query.items()}
        timeout = DEFAULT_TIMEOUT
        if "timeout" in options:
            try:
                timeout = float(options["timeout"])
            except ValueError:
                raise QueueError("mysql: timeout must be a number of seconds, not %r" % (options["timeout"],)) from None
        return cls(
            database=database,
            host=parsed.hostname or "localhost",
            port=port or DEFAULT_PORT,
            user=None if parsed.username is None else unquote(parsed.username),
            password=None if parsed.password is None else unquote(parsed.password),
            unixSocket=options.get("unix_socket") or None,
            table=options.get("table", DEFAULT_TABLE),
            gearmandTable=options.get("gearmand_table", GEARMAND_TABLE),
            reactor=reactor,
            timeout=timeout,
        )

    def _run(self, f: Callable[..., _T], *args: Any) -> "Deferred[_T]":
        assert self._pool is not None
        return deferToThreadPool(self.reactor, self._pool, f, *args)

    # Opening and closing

    def open(self) -> Deferred[None]:
        """
        Start the database thread, connect, create the tables if needed and
        take over gearmand's table (a queue fenced by a lease does that
        once it takes the lease: L{MySQLLease.acquire}).  Opening a queue
        that is open (or opening) again does nothing more.

        @return: fires when done, or fails with L{QueueError}: at once if
            the first connection is refused, or after the timeout if it is
            not answered.
        """
        if self._closed:
            return fail(QueueError("mysql: the queue was closed"))
        if self._opened:
            return succeed(None)
        if self._opening is not None:
            waiter: Deferred[None] = Deferred()
            self._opening.append(waiter)
            return waiter
        self._opening = []
        if self._pool is None:
            self._pool = ThreadPool(1, 1, name="gearman-mysql")
            self._pool.start()
            # Like the reactor's own pool: never keep the process alive.
            self._shutdownTrigger = self.reactor.addSystemEventTrigger("during", "shutdown", self._pool.stop)
        opening = self._run(self._openInThread)
        d: Deferred[None] = opening.addCallbacks(
            self._openedInThread, self._error, errbackArgs=("cannot open the queue",)
        )
        d.addBoth(self._openEnded)
        return d

    def _openEnded(self, result: object) -> object:
        """
        Give those waiting for the open its outcome.
        """
        waiters, self._opening = self._opening or [], None
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(None)
        return result

    def _openedInThread(self, result: Tuple[int, Any, str]) -> None:
        taken, flushing, version = result
        # Not if close() came first (it waited for this).
        self._opened = not self._closed
        self.log.info(
            "MySQL queue: {version} at {where}, tables {jobs} and {kept}",
            version=version,
            where=self._where,
            jobs=self.jobsTable,
            kept=self.keptTable,
        )
        if str(flushing) != "1":
            self.log.warn(
                "MySQL queue: innodb_flush_log_at_trx_commit is {value}, not 1: jobs acknowledged in the last"
                " second or so can be lost if the database or its host crashes",
                value=flushing,
            )
        if taken:
            self.log.info(
                "MySQL queue: took over {count} jobs from gearmand's table {table}",
                count=taken,
                table=self.gearmandTable,
            )

    def _error(self, failure: Failure, what: str) -> Failure:
        if failure.check(QueueError):
            return failure
        return Failure(QueueError("mysql: %s: %s" % (what, _describe(failure))))

    def close(self) -> Deferred[None]:
        """
        Wait for what is pending (each add for at most the timeout), retry
        the deletes that failed once more, disconnect and stop the thread.
        """
        return Deferred.fromCoroutine(self._close())

    async def _close(self) -> None:
        if self._closed:
            return
        await self.flush()
        await self.retries.close()
        await self.flush()
        self._closed = True
        self._opened = False
        pool = self._pool
        if pool is None:
            return
        try:
            await self._run(self._disconnect)
        finally:
            pool.stop()
            self._pool = None
            if self._shutdownTrigger is not None:
                self.reactor.removeSystemEventTrigger(self._shutdownTrigger)
                self._shutdownTrigger = None

    def flush(self) -> Deferred[None]:
        """
        Fire once everything asked for so far has been committed or has
        failed.
        """
        if self._inFlight is None and not self._pending:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._flushed.append(d)
        return d

    # Adding, finishing, updating and keeping (on the reactor thread)

    # IPersistentQueue types records as object (interfaces.py does not
    # import QueuedJob).
    def add(self, job: QueuedJob) -> Deferred[None]:
        """
        Store C{job}; fires after the transaction holding it commits.
        """
        return self.addMany([job])

    def addMany(self, jobs: Sequence[QueuedJob]) -> Deferred[None]:
        """
        Store C{jobs}; fires after the transaction holding them commits, or
        fails with L{QueueError} if that does not happen within the timeout
        (the jobs are then withdrawn if they may have been stored).
        """
        if not jobs:
            return succeed(None)
        if not self._opened:
            return fail(QueueError("mysql add: the queue is not open"))
        # A statement of one row holds each bytes value as hexadecimal, so
        # twice its length.
        limit = min(self._maxPacket, 1 << 30) // 2 - STATEMENT_OVERHEAD
        rows: List[_Row] = []
        for function, key, unique, data, priority, when, attempts, due in jobs:
            if len(data) + len(function) + len(unique) > limit:
                return fail(
                    QueueError(
                        "mysql add: a job of %d bytes does not fit the database's max_allowed_packet (%d bytes)"
                        % (len(data), self._maxPacket)
                    )
                )
            rows.append((key, function, unique, data, priority, when, min(attempts, MAX_ATTEMPTS), due))
        d: Deferred[None] = Deferred()
        operation = _Operation(_ADD, rows, d)
        operation.timer = self.reactor.callLater(self.timeout, self._expire, operation)
        self._pending.append(operation)
        self._kick()
        return d

    def _expire(self, operation: _Operation) -> None:
        """
        An add was not stored within the timeout: fail it now.  One still
        waiting is dropped; one being committed is withdrawn once that
        transaction ends, if it may have been stored.
        """
        operation.timer = None
        # One still waiting is dropped by _kick.
        operation.expired = True
        why = self._trouble or "no answer from MySQL at %s" % (self._where,)
        self.log.error(
            "MySQL queue: {count} jobs not stored within {timeout} s: {why}",
            count=len(operation.payload),
            timeout=self.timeout,
            why=why,
        )
        operation.deferred.errback(QueueError("mysql add: not stored within %g s: %s" % (self.timeout, why)))
        self._kick()

    def done(self, key: int) -> Deferred[None]:
        """
        Forget the job stored under C{key}.
        """
        return self.doneMany([key])

    def doneMany(self, keys: List[int]) -> Deferred[None]:
        """
        Forget the jobs stored under C{keys}; a delete that fails is kept
        and retried until it succeeds.
        """
        if not keys:
            return succeed(None)
        if not self._opened:
            return fail(QueueError("mysql done: the queue is not open"))
        d: Deferred[None] = Deferred()
        # Before the caller's errbacks: keep the deletes to retry them.
        d.addErrback(self._keepDeletes, list(keys))
        self._pending.append(_Operation(_DONE, list(keys), d))
        self._kick()
        return d

    def _keepDeletes(self, failure: Failure, keys: List[int]) -> Failure:
        self.retries.keep(keys, len(keys))
        return failure

    def _retryDeletes(self, kept: List[int]) -> Deferred[None]:
        """
        Delete kept keys again, in one transaction (for L{DeleteRetries}).
        """
        d: Deferred[None] = Deferred()
        self._pending.append(_Operation(_DONE, kept, d))
        self._kick()
        return d

    def _withdraw(self, keys: List[int]) -> None:
        """
        Delete the rows of adds answered with L{QueueError} that may have
        been stored; kept for retrying if that fails.
        """
        self.log.error(
            "MySQL queue: withdrawing {count} jobs whose store failed but may have been made", count=len(keys)
        )
        d: Deferred[None] = Deferred()
        d.addErrback(self._keepDeletes, keys)
        d.addErrback(lambda _: None)
        self._pending.append(_Operation(_DONE, keys, d))

    def update(self, jobs: List[QueuedJob]) -> Deferred[None]:
        """
        Rewrite the attempts and due time of the jobs still stored; keys no
        longer stored are left alone.
        """
        if not jobs:
            return succeed(None)
        if not self._opened:
            return fail(QueueError("mysql update: the queue is not open"))
        rows = [(job.key, min(job.attempts, MAX_ATTEMPTS), float(job.due)) for job in jobs]
        d: Deferred[None] = Deferred()
        self._pending.append(_Operation(_UPDATE, rows, d))
        self._kick()
        return d

    def keep(
        self, kind: bytes, records: List[Tuple[bytes, bytes]], done: List[int], dropped: List[bytes]
    ) -> Deferred[None]:
        """
        Store and drop records of C{kind} and forget the jobs under C{done},
        in one transaction.  If it fails, it is not retried (beyond the
        retries of a broken connection within the timeout), and the jobs in
        C{done} stay stored.
        """
        if not self._opened:
            return fail(QueueError("mysql keep: the queue is not open"))
        kind = bytes(kind)
        if len(kind) > MAX_KIND:
            return fail(QueueError("mysql keep: a kind is %d bytes long, more than %d" % (len(kind), MAX_KIND)))
        for ident in [ident for ident, _ in records] + list(dropped):
            if len(ident) > MAX_IDENT:
                return fail(QueueError("mysql keep: an ident is %d bytes long, more than %d" % (len(ident), MAX_IDENT)))
        d: Deferred[None] = Deferred()
        self._pending.append(_Operation(_KEEP, (kind, list(records), list(done), list(dropped)), d))
        self._kick()
        return d

    def kept(self, kind: bytes) -> Deferred[List[Tuple[bytes, bytes]]]:
        """
        Fire with the records of C{kind}, as C{(ident, value)}.
        """
        if not self._opened:
            return fail(QueueError("mysql kept: the queue is not open"))
        d = self._run(self._retrying, self._keptInThread, bytes(kind))
        d.addErrback(self._error, "cannot read kept records")
        return d

    def replay(self) -> Deferred[List[QueuedJob]]:
        """
        Fire with every stored job, in key order.
        """
        if not self._opened:
            return fail(QueueError("mysql replay: the queue is not open"))
        d = self._run(self._retrying, self._replayInThread)
        d.addErrback(self._error, "cannot replay")
        return d

    def lease(self, holder: bytes, ttl: float) -> "MySQLLease":
        """
        The lease of this queue's tables, for a server named C{holder}:
        from now on this queue writes only while C{holder} holds it (each
        write transaction checks it first), so a server that lost it
        writes nothing (the fence of a standby; see
        L{gearman_tw.server.standby}).

        @param holder: the server's name, at most L{MAX_HOLDER} bytes.
        @param ttl: seconds the lease lasts without a renewal.
        """
        self._fence = bytes(holder)
        return MySQLLease(self, self._fence, ttl)

    def _leaseCall(self, what: int, holder: bytes, ttl: float) -> Deferred[bool]:
        """
        Take, renew or give up the lease in the database thread; fires with
        whether C{holder} holds it after.
        """
        if not self._opened:
            return fail(QueueError("mysql lease: the queue is not open"))
        d: Deferred[bool] = self._run(self._leaseInThread, what, holder, ttl).addCallbacks(
            self._leaseAnswered, self._error, errbackArgs=("lease",)
        )
        return d

    def _leaseAnswered(self, result: Tuple[bool, int]) -> bool:
        held, taken = result
        if taken:
            self.log.info(
                "MySQL queue: took over {count} jobs from gearmand's table {table}",
                count=taken,
                table=self.gearmandTable,
            )
        return held

    # Group commit

    def _kick(self) -> None:
        if self._inFlight is not None:
            return
        # Adds that expired while they waited were never sent: drop them.
        batch = [operation for operation in self._pending if not operation.expired]
        self._pending = []
        if not batch:
            waiters, self._flushed = self._flushed, []
            for waiter in waiters:
                waiter.callback(None)
            return
        self._inFlight = batch
        operations = [(operation.kind, operation.payload) for operation in batch]
        d = self._run(self._commitInThread, operations)
        d.addCallbacks(self._committed, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))

    def _committed(self, _: object, batch: List[_Operation]) -> None:
        self.commits += 1
        self._inFlight = None
        stored: List[int] = []
        for operation in batch:
            if operation.timer is not None:
                operation.timer.cancel()
                operation.timer = None
            if operation.expired:
                # Answered QUEUE_ERROR already, but stored.
                stored.extend(row[0] for row in operation.payload)
            else:
                operation.deferred.callback(None)
        if stored:
            self._withdraw(stored)
        self._kick()

    def _failed(self, failure: Failure, batch: List[_Operation]) -> None:
        self._inFlight = None
        value = failure.value
        maybeCommitted = isinstance(value, _Failed) and value.maybeCommitted
        why = _describe(failure)
        self.log.error(
            "MySQL queue: a transaction of {count} changes failed: {why}{maybe}",
            count=len(batch),
            why=why,
            maybe=" (it may have been committed)" if maybeCommitted else "",
        )
        names = {_ADD: "add", _DONE: "done", _UPDATE: "update", _KEEP: "keep"}
        stored: List[int] = []
        for operation in batch:
            if operation.timer is not None:
                operation.timer.cancel()
                operation.timer = None
            if operation.kind == _ADD and maybeCommitted:
                stored.extend(row[0] for row in operation.payload)
            if not operation.expired:
                operation.deferred.errback(QueueError("mysql %s: %s" % (names[operation.kind], why)))
        if stored:
            self._withdraw(stored)
        self._kick()

    # The database thread

    def _connect(self) -> Any:
        """
        The connection, made if there is none (or it is closed).
        """
        connection = self._connection
        if connection is not None and connection.open:
            return connection
        self._connection = None
        connection = _driver().connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or "",
            database=self.database,
            unix_socket=self.unixSocket,
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            write_timeout=self.timeout,
            autocommit=True,
            charset="utf8mb4",
        )
        try:
            with connection.cursor() as cursor:
                # Refuse what does not fit instead of cutting it, and a table
                # that would not be InnoDB.
                cursor.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
                cursor.execute("SET SESSION innodb_lock_wait_timeout = %s", (max(1, math.ceil(self.timeout)),))
                cursor.execute("SELECT @@max_allowed_packet")
                (self._maxPacket,) = cursor.fetchone()
        except BaseException:
            _close(connection)
            raise
        self._connection = connection
        if self._connected:
            self.reactor.callFromThread(
                self.log.info, "MySQL queue: connected to MySQL at {where} again", where=self._where
            )
        self._connected = True
        return connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            _close(connection)

    def _retrying(
        self,
        work: Callable[..., _T],
        *args: Any,
        flag: Optional[List[bool]] = None,
        reconnect: bool = True,
    ) -> _T:
        """
        Run C{work(cursor, *args)}; if the connection breaks, again on a new
        one, until the timeout has passed.

        @param flag: set (C{flag[0]}) by C{work} when it has sent a COMMIT
            whose outcome the broken connection hides.
        @param reconnect: whether to try again when the first connection
            cannot be made (L{open} fails at once then).
        @raise _Failed: what went wrong last.
        """
        deadline = time.monotonic() + self.timeout
        pause = 0.0
        maybe = flag if flag is not None else [False]
        connected = False
        while True:
            try:
                connection = self._connect()
                connected = True
                with connection.cursor() as cursor:
                    cursor.max_stmt_length = min(STATEMENT_BYTES, self._maxPacket - STATEMENT_OVERHEAD)
                    result = work(cursor, *args)
                self._trouble = None
                return result
            except QueueError as e:
                raise _Failed(str(e), maybe[0]) from None
            except Exception as e:
                why = self._why(e)
                transient = _transient(e)
                connection = self._connection
                if connection is not None and (
                    not connection.open or (transient and _code(e) not in _KEEPS_CONNECTION)
                ):
                    self._disconnect()
                if not transient or not (reconnect or connected):
                    raise _Failed(why, maybe[0]) from None
                self._trouble = why
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Failed(why, maybe[0]) from None
            # The last attempt at the deadline.
            time.sleep(min(pause, remaining))
            pause = min(max(pause * 2, FIRST_PAUSE), MAX_PAUSE)

    def _why(self, error: Exception) -> str:
        """
        What went wrong, in a few words.
        """
        code = _code(error)
        text = str(error.args[1]) if code is not None and len(error.args) > 1 else str(error)
        if isinstance(error, _driver().err.InterfaceError):
            return "lost the connection to MySQL at %s" % (self._where,)
        if "timed out" in text:
            return "no answer from MySQL at %s within %g s" % (self._where, self.timeout)
        if code in (2002, 2003):
            reason = "connection refused" if "refused" in text.lower() else text
            return "cannot reach MySQL at %s: %s" % (self._where, reason)
        if code in (2006, 2013, 2055, 1053, 1927):
            return "lost the connection to MySQL at %s (%s)" % (self._where, text or type(error).__name__)
        if code is not None:
            return "MySQL error %d: %s" % (code, text)
        return text or type(error).__name__

    def _openInThread(self) -> Tuple[int, Any, str]:
        return self._retrying(self._openWith, reconnect=False)

    def _openWith(self, cursor: Any) -> Tuple[int, Any, str]:
        """
        Create the tables if needed, check them, and take over gearmand's.
        Safe to run again from the start after any failure.
        """
        jobs, kept = self._jobs, self._kept
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS %s ("
            " `key` BIGINT NOT NULL PRIMARY KEY,"
            " `function` MEDIUMBLOB NOT NULL,"
            " `unique` BLOB NOT NULL,"
            " `data` LONGBLOB NOT NULL,"
            " `priority` TINYINT UNSIGNED NOT NULL,"
            " `when` BIGINT NOT NULL,"
            " `attempts` INT UNSIGNED NOT NULL DEFAULT 0,"
            " `due` DOUBLE NOT NULL DEFAULT 0"
            ") ENGINE=InnoDB ROW_FORMAT=DYNAMIC" % (jobs,)
        )
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS %s ("
            " `kind` VARBINARY(%d) NOT NULL,"
            " `ident` VARBINARY(%d) NOT NULL,"
            " `value` LONGBLOB NOT NULL,"
            " PRIMARY KEY (`kind`, `ident`)"
            ") ENGINE=InnoDB ROW_FORMAT=DYNAMIC" % (kept, MAX_KIND, MAX_IDENT)
        )
        cursor.execute(
            "SELECT table_name, engine, table_type FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_name IN (%s, %s, %s)",
            (self.jobsTable, self.keptTable, self.gearmandTable),
        )
        tables = {str(name).lower(): (engine, kind) for name, engine, kind in cursor.fetchall()}
        for name in (self.jobsTable, self.keptTable):
            engine, _ = tables.get(name.lower(), (None, None))
            if str(engine).lower() != "innodb":
                raise QueueError(
                    "table %s uses the %s engine, not InnoDB: its commits would not be durable" % (name, engine)
                )
        taken = 0
        if self._fence:
            # A standby takes gearmand's table over once it holds the lease.
            self._makeLeaseTable(cursor)
        else:
            found = tables.get(self.gearmandTable.lower())
            if found is not None:
                taken = self._takeOverGearmand(cursor, found[0], found[1])
        cursor.execute("SELECT @@innodb_flush_log_at_trx_commit, VERSION()")
        flushing, version = cursor.fetchone()
        return taken, flushing, str(version)

    def _takeOverGearmand(self, cursor: Any, engine: Any, kind: Any) -> int:
        """
        Move the rows of gearmand's table into ours, numbered after ours in
        the table's order, and drop that table.

        The steps, each safe to run again from the start: (1) a table that
        is not InnoDB is converted (C{ALTER TABLE ... ENGINE=InnoDB}: one
        statement, after which the table is the same rows in InnoDB, or
        the old table if the server died before it finished); (2) one
        transaction reads its rows (locking them, and the gaps between
        them), inserts them into ours and deletes them from it; (3) the
        table, now empty, is dropped if still empty.  A crash before (2)
        commits leaves gearmand's table as it was and ours without its
        rows; after, ours with them and gearmand's empty (dropped at the
        next open): nothing lost, nothing twice.  Rows a gearmand still
        running inserts after (2) commits are taken over at the next open,
        unless it inserts them between the check and the drop of (3):
        stop gearmand first.

        @return: how many jobs were taken over.
        """
        table = _quote(self.gearmandTable)
        if str(kind).upper() == "VIEW":
            raise QueueError("%s is a view, not gearmand's table" % (self.gearmandTable,))
        if str(engine).lower() != "innodb":
            cursor.execute("ALTER TABLE %s ENGINE=InnoDB" % (table,))
        cursor.connection.begin()
        try:
            if self._fence:
                self._checkFence(cursor)
            # gearmand's columns, read as the bytes stored (gearmand stored
            # the strings its connection sent, in the column's character
            # set); without an ORDER BY, as gearmand replayed them.
            cursor.execute(
                "SELECT CAST(`unique_key` AS BINARY), CAST(`function_name` AS BINARY), `data`, `priority`,"
                " `when_to_run` FROM %s FOR UPDATE" % (table,)
            )
            found = cursor.fetchall()
            cursor.execute("SELECT COALESCE(MAX(`key`), 0) FROM %s" % (self._jobs,))
            (last,) = cursor.fetchone()
            rows: List[_Row] = []
            for number, (unique, function, data, priority, when) in enumerate(found, int(last) + 1):
                rows.append(
                    (
                        number,
                        _bytes(function),
                        _bytes(unique),
                        _bytes(data),
                        min(max(int(priority or 0), 0), 2),
                        int(when or 0),
                        0,
                        0.0,
                    )
                )
            if rows:
                cursor.executemany(self._insertJobs, rows)
                cursor.execute("DELETE FROM %s" % (table,))
            cursor.connection.commit()
        except BaseException:
            _rollback(cursor.connection)
            raise
        cursor.execute("SELECT 1 FROM %s LIMIT 1" % (table,))
        if cursor.fetchone() is None:
            cursor.execute("DROP TABLE IF EXISTS %s" % (table,))
        return len(rows)

    def _commitInThread(self, operations: List[Tuple[int, Any]]) -> None:
        """
        Apply C{operations} in one transaction, retried on a new connection
        if one breaks.
        """
        flag = [False]
        self._retrying(self._transaction, operations, flag, flag=flag)

    def _transaction(self, cursor: Any, operations: List[Tuple[int, Any]], flag: List[bool]) -> None:
        connection = cursor.connection
        connection.begin()
        try:
            if self._fence:
                self._checkFence(cursor)
            # In order; consecutive operations of one kind are merged.
            start = 0
            while start < len(operations):
                kind = operations[start][0]
                end = start
                while end < len(operations) and operations[end][0] == kind:
                    end += 1
                payloads = [payload for _, payload in operations[start:end]]
                if kind == _ADD:
                    cursor.executemany(self._insertJobs, [row for rows in payloads for row in rows])
                elif kind == _DONE:
                    self._deleteKeys(cursor, [key for keys in payloads for key in keys])
                elif kind == _UPDATE:
                    latest: Dict[int, Tuple[int, float]] = {}
                    for rows in payloads:
                        for key, attempts, due in rows:
                            latest[key] = (attempts, due)
                    self._update(cursor, latest)
                else:
                    for keptKind, records, done, dropped in payloads:
                        self._deleteKeys(cursor, done)
                        if records:
                            cursor.executemany(self._replaceKept, [(keptKind, i, v) for i, v in records])
                        for offset in range(0, len(dropped), ROWS_PER_STATEMENT):
                            chunk = dropped[offset : offset + ROWS_PER_STATEMENT]
                            statement = "DELETE FROM %s WHERE `kind` = %%s AND `ident` IN (%s)" % (
                                self._kept,
                                _marks(len(chunk)),
                            )
                            cursor.execute(statement, [keptKind] + chunk)
                start = end
        except BaseException:
            _rollback(connection)
            raise
        try:
            connection.commit()
        except Exception as e:
            if _transient(e) and _code(e) not in _KEEPS_CONNECTION:
                # Sent, perhaps made: retries must be (and are) idempotent,
                # and a failure in the end withdraws the adds.
                flag[0] = True
            raise

    def _checkFence(self, cursor: Any) -> None:
        """
        In a transaction: check that this server holds the lease, and keep
        it from passing to another until the transaction ends (a shared
        lock on its row).

        @raise QueueError: it does not (nothing was written).
        """
        try:
            cursor.execute(
                "SELECT `holder` = %%s AND `expires` > UTC_TIMESTAMP(6) FROM %s WHERE `id` = %d LOCK IN SHARE MODE"
                % (self._lease, _LEASE_ROW),
                (self._fence,),
            )
        except _driver().err.ProgrammingError as e:
            if _code(e) == 1146:
                # No lease table: nobody holds a lease.
                raise QueueError(NOT_HOLDER) from None
            raise
        row = cursor.fetchone()
        if row is None or not row[0]:
            raise QueueError(NOT_HOLDER)

    def _makeLeaseTable(self, cursor: Any) -> None:
        """
        Create the lease table and its row if needed, and check it is
        InnoDB (a lock on its row is what fences the writes).
        """
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS %s ("
            " `id` TINYINT UNSIGNED NOT NULL PRIMARY KEY,"
            " `holder` VARBINARY(%d) NOT NULL,"
            " `expires` DATETIME(6) NOT NULL"
            ") ENGINE=InnoDB" % (self._lease, MAX_HOLDER)
        )
        cursor.execute(
            "SELECT engine FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
            (self.leaseTable,),
        )
        found = cursor.fetchone()
        engine = found[0] if found else None
        if str(engine).lower() != "innodb":
            raise QueueError(
                "table %s uses the %s engine, not InnoDB: it cannot fence writes" % (self.leaseTable, engine)
            )
        cursor.execute(
            "INSERT INTO %s (`id`, `holder`, `expires`) VALUES (%d, '', '%s') ON DUPLICATE KEY UPDATE `id` = `id`"
            % (self._lease, _LEASE_ROW, _NEVER)
        )
        self._leaseReady = True

    def _leaseInThread(self, what: int, holder: bytes, ttl: float) -> Tuple[bool, int]:
        return self._retrying(self._leaseWith, what, holder, ttl)

    def _leaseWith(self, cursor: Any, what: int, holder: bytes, ttl: float) -> Tuple[bool, int]:
        """
        Take (L{_ACQUIRE}), extend (L{_RENEW}) or give up (L{_RELEASE}) the
        lease for C{holder}, in one transaction locking its row, by the
        database's clock; then, if it was just taken, take over gearmand's
        table.  Safe to run again from the start after any failure.

        @return: whether C{holder} holds the lease after, and how many jobs
            were taken over from gearmand's table.
        """
        if not self._leaseReady:
            self._makeLeaseTable(cursor)
        connection = cursor.connection
        connection.begin()
        try:
            cursor.execute(
                "SELECT `holder`, `expires` > UTC_TIMESTAMP(6) FROM %s WHERE `id` = %d FOR UPDATE"
                % (self._lease, _LEASE_ROW)
            )
            row = cursor.fetchone()
            if row is None:
                # Deleted by hand: made again, free.
                cursor.execute(
                    "INSERT INTO %s (`id`, `holder`, `expires`) VALUES (%d, '', '%s')"
                    % (self._lease, _LEASE_ROW, _NEVER)
                )
                row = (b"", 0)
            mine = bytes(row[0]) == holder
            current = bool(row[1])
            if what == _RELEASE:
                held = False
                if mine:
                    cursor.execute(
                        "UPDATE %s SET `holder` = '', `expires` = '%s' WHERE `id` = %d"
                        % (self._lease, _NEVER, _LEASE_ROW)
                    )
            else:
                held = (mine and current) or (what == _ACQUIRE and not current)
                if held:
                    cursor.execute(
                        "UPDATE %s SET `holder` = %%s, `expires` = UTC_TIMESTAMP(6) + INTERVAL %%s MICROSECOND"
                        " WHERE `id` = %d" % (self._lease, _LEASE_ROW),
                        (holder, max(1000, int(ttl * 1000000))),
                    )
            connection.commit()
        except BaseException:
            _rollback(connection)
            raise
        taken = 0
        if what == _ACQUIRE and held:
            cursor.execute(
                "SELECT engine, table_type FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_name = %s",
                (self.gearmandTable,),
            )
            found = cursor.fetchone()
            if found is not None:
                taken = self._takeOverGearmand(cursor, found[0], found[1])
        return held, taken

    def _deleteKeys(self, cursor: Any, keys: List[int]) -> None:
        for offset in range(0, len(keys), ROWS_PER_STATEMENT):
            chunk = keys[offset : offset + ROWS_PER_STATEMENT]
            cursor.execute("DELETE FROM %s WHERE `key` IN (%s)" % (self._jobs, _marks(len(chunk))), chunk)

    def _update(self, cursor: Any, latest: Dict[int, Tuple[int, float]]) -> None:
        """
        Set attempts and due of the rows that exist among C{latest}, with
        one UPDATE joined to a derived table of the values per
        L{ROWS_PER_STATEMENT} keys.
        """
        items = list(latest.items())
        for offset in range(0, len(items), ROWS_PER_STATEMENT):
            chunk = items[offset : offset + ROWS_PER_STATEMENT]
            values = " UNION ALL ".join(["SELECT %s AS k, %s AS a, %s AS d"] + ["SELECT %s, %s, %s"] * (len(chunk) - 1))
            cursor.execute(
                "UPDATE %s AS j JOIN (%s) AS u ON j.`key` = u.k SET j.`attempts` = u.a, j.`due` = u.d"
                % (self._jobs, values),
                [value for key, (attempts, due) in chunk for value in (key, attempts, due)],
            )

    def _replayInThread(self, cursor: Any) -> List[QueuedJob]:
        cursor.execute(
            "SELECT `function`, `key`, `unique`, `data`, `priority`, `when`, `attempts`, `due` FROM %s"
            " ORDER BY `key`" % (self._jobs,)
        )
        return [
            QueuedJob(bytes(f), int(k), bytes(u), bytes(d), int(p), int(w), int(a), float(due))
            for f, k, u, d, p, w, a, due in cursor.fetchall()
        ]

    def _keptInThread(self, cursor: Any, kind: bytes) -> List[Tuple[bytes, bytes]]:
        cursor.execute("SELECT `ident`, `value` FROM %s WHERE `kind` = %%s" % (self._kept,), (kind,))
        return [(bytes(ident), bytes(value)) for ident, value in cursor.fetchall()]


@implementer(ILease)
class MySQLLease:
    """
    The right to serve the namespace of a L{MySQLQueue} (its tables'
    prefix), for one server: the row of C{<table>_lease} holding the
    server's name and an expiry, C{ttl} seconds after the lease was last
    taken or renewed, by the database's clock.

    @ivar ttl: seconds the lease lasts without a renewal.
    """

    def __init__(self, queue: MySQLQueue, holder: bytes, ttl: float) -> None:
        self.queue = queue
        self.holder = holder
        self.ttl = ttl

    def acquire(self) -> Deferred[bool]:
        """
        Take the lease if nobody holds it or it expired (or extend it if
        this server holds it); fires with whether this server holds it
        now.  Opens the queue first if needed, and once the lease is held,
        takes gearmand's table over.
        """
        d: Deferred[Any] = self.queue.open()
        d.addCallback(lambda _: self.queue._leaseCall(_ACQUIRE, self.holder, self.ttl))
        return d

    def renew(self) -> Deferred[bool]:
        """
        Extend the lease if this server holds it (and it has not expired);
        fires with whether it does.
        """
        return self.queue._leaseCall(_RENEW, self.holder, self.ttl)

    def release(self) -> Deferred[None]:
        """
        Give the lease up, if this server holds it, so that a standby takes
        over at once.
        """
        d: Deferred[None] = self.queue._leaseCall(_RELEASE, self.holder, self.ttl).addCallback(lambda _: None)
        return d


def _quote(name: str) -> str:
    """
    A table name (checked against L{_NAME} already) quoted for MySQL.
    """
    if not _NAME.match(name):
        raise QueueError("mysql: bad table name %r" % (name,))
    return "`%s`" % (name,)


def _marks(count: int) -> str:
    """
    C{count} parameter markers, separated by commas.
    """
    return ",".join(["%s"] * count)


def _driver() -> Any:
    """
    PyMySQL.

    @raise ImportError: it is not installed.
    """
    import pymysql  # type: ignore[import-untyped,unused-ignore]

    return pymysql


def _describe(failure: Failure) -> str:
    """
    What went wrong, from a failure of the database thread.
    """
    value = failure.value
    if isinstance(value, _Failed):
        return value.why
    return str(value) or type(value).__name__


def _code(error: BaseException) -> Optional[int]:
    """
    MySQL's error number of a PyMySQL error, if it has one.
    """
    if isinstance(error, _driver().err.MySQLError) and error.args and isinstance(error.args[0], int):
        return int(error.args[0]) or None
    return None


def _transient(error: BaseException) -> bool:
    """
    Whether C{error} broke the connection or ended the transaction without
    a fault of the statements (so that trying again may work).
    """
    pymysql = _driver()
    if isinstance(error, pymysql.err.InterfaceError):
        # The connection is closed.
        return True
    if isinstance(error, (OSError, EOFError)):
        return True
    if isinstance(error, pymysql.err.InternalError) and "sequence" in str(error):
        # The connection's state is lost ("Packet sequence number wrong").
        return True
    return _code(error) in _TRANSIENT


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None:
        return b""
    return bytes(value)


def _rollback(connection: Any) -> None:
    """
    Roll back the transaction an error interrupted, keeping that error.
    """
    if connection.open:
        try:
            connection.rollback()
        except (_driver().err.MySQLError, OSError):
            pass


def _close(connection: Any) -> None:
    try:
        connection.close()
    except (_driver().err.MySQLError, OSError):
        pass


__all__ = ["DEFAULT_TIMEOUT", "GEARMAND_TABLE", "MySQLLease", "MySQLQueue"]
