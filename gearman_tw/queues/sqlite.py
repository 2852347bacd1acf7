# -*- test-case-name: tests.test_queues -*-
"""
The embedded persistent queue: SQLite in WAL mode, with group commit.

All database work happens on one dedicated thread.  Adds and dones that
arrive while a transaction is being committed wait and go together into
the next one, so one fsync covers many jobs, and rows go up to a thousand
to a statement.

Jobs live in C{gearman_tw_queue(id INTEGER PRIMARY KEY, function_name,
unique_key, priority, when_to_run, data)}: keyed by the job server's record
number, so an add appends to the table's B-tree and a done deletes by rowid.
A file that holds gearmand's own C{libsqlite3} table (C{gearman_queue}) is
taken over when opened: its rows move into ours, in their order, in one
transaction.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Any, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from gearman_tw.errors import QueueError
from gearman_tw.interfaces import IPersistentQueue
from gearman_tw.queues import QueuedJob

_ADD = 0
_DONE = 1

#: Rows per INSERT or DELETE statement at most (6 parameters a row, well
#: under SQLite's limit of 32766).  Fewer, larger statements beat
#: fixed-size ones: each statement hands the GIL back and forth once.
ROWS_PER_STATEMENT = 1000

#: The table gearmand's libsqlite3 queue writes.
GEARMAND_TABLE = "gearman_queue"

#: The switch interval (seconds) kept while a queue is open.
SWITCH_INTERVAL = 0.0002

_COLUMNS = "id, function_name, unique_key, priority, when_to_run, data"


@implementer(IPersistentQueue)
class SQLiteQueue:
    """
    Background jobs kept in an SQLite database file.

    @ivar commits: transactions committed so far (for tests and metrics).
    """

    name = "sqlite"
    persistent = True
    log = Logger()

    def __init__(
        self,
        path: str,
        reactor: Any = None,
        table: str = "gearman_tw_queue",
        synchronous: str = "FULL",
        threadPool: Optional[ThreadPool] = None,
        switchInterval: Optional[float] = SWITCH_INTERVAL,
    ) -> None:
        """
        @param table: the table to keep jobs in.
        @param synchronous: SQLite's C{synchronous} setting: C{FULL} (the
            default) makes every commit durable across power loss; C{NORMAL}
            only across process crashes (C{kill -9}).
        @param switchInterval: while the queue is open, keep the
            interpreter's switch interval (L{sys.setswitchinterval}) at most
            this many seconds, L{None} to leave it alone.  The database
            thread needs the GIL back after every SQLite call; with the
            default 5 ms it waits that long behind the reactor's Python code
            each time, and commits (so JOB_CREATED replies) take several
            times longer than their work.
        """
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        if not table.replace("_", "").isalnum() or table == GEARMAND_TABLE:
            raise QueueError("bad table name %r" % (table,))
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise QueueError("synchronous must be FULL, NORMAL or EXTRA")
        self.path = path
        self.reactor = reactor
        self.table = table
        self.synchronous = synchronous.upper()
        self.commits = 0
        self._pool = threadPool
        self._ownPool = threadPool is None
        self._connection: Optional[sqlite3.Connection] = None
        self._pending: List[Tuple[int, List[Any], Deferred[None]]] = []
        self._statements: Dict[Tuple[int, int], str] = {}
        self._inFlight = False
        self._flushed: List[Deferred[None]] = []
        self.switchInterval = switchInterval
        self._savedSwitchInterval: Optional[float] = None

    def _run(self, f: Any, *args: Any) -> Deferred[Any]:
        assert self._pool is not None
        return deferToThreadPool(self.reactor, self._pool, f, *args)

    def open(self) -> Deferred[None]:
        """
        Start the database thread and create the table if needed.
        """
        if self.switchInterval is not None and self._savedSwitchInterval is None:
            self._savedSwitchInterval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._savedSwitchInterval, self.switchInterval))
        if self._pool is None:
            self._pool = ThreadPool(1, 1, name="gearman-sqlite")
            self._pool.start()
        d = self._run(self._openInThread)
        d.addErrback(self._queueError, "cannot open %s" % (self.path,))
        return d

    def _openInThread(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise QueueError("no such directory: %s" % (directory,))
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=%s" % (self.synchronous,))
            connection.execute(
                "CREATE TABLE IF NOT EXISTS %s (id INTEGER PRIMARY KEY, function_name BLOB, "
                "unique_key BLOB, priority INTEGER, when_to_run INTEGER, data BLOB)" % (self.table,)
            )
            self._takeOverGearmand(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def _takeOverGearmand(self, connection: sqlite3.Connection) -> None:
        """
        Move the rows of gearmand's table, if the file has one, into ours.
        """
        found = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (GEARMAND_TABLE,)
        ).fetchone()
        if found is None:
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            (last,) = connection.execute("SELECT coalesce(max(id), 0) FROM %s" % (self.table,)).fetchone()
            rows = connection.execute(
                "SELECT function_name, unique_key, priority, when_to_run, data FROM %s ORDER BY rowid"
                % (GEARMAND_TABLE,)
            ).fetchall()
            moved = []
            for number, (function, key, priority, when, data) in enumerate(rows, last + 1):
                unique = _bytes(key)
                if unique.startswith(b"\0"):
                    # A key gearman_tw 0.1 generated for a job without one.
                    unique = b""
                moved.append((number, _bytes(function), unique, int(priority or 0), int(when or 0), _bytes(data)))
            connection.executemany("INSERT INTO %s (%s) VALUES (?,?,?,?,?,?)" % (self.table, _COLUMNS), moved)
            connection.execute("DROP TABLE %s" % (GEARMAND_TABLE,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        if moved:
            self.log.info(
                "Took over {count} jobs from gearmand's {table} table in {path}",
                count=len(moved),
                table=GEARMAND_TABLE,
                path=self.path,
            )

    @staticmethod
    def _queueError(failure: Failure, what: str) -> Failure:
        if failure.check(QueueError):
            return failure
        return Failure(QueueError("%s: %s" % (what, failure.getErrorMessage())))

    def add(self, job: QueuedJob) -> Deferred[None]:
        """
        Store C{job}; fires after the transaction holding it commits.
        """
        return self.addMany([job])

    def addMany(self, jobs: List[QueuedJob]) -> Deferred[None]:
        """
        Store C{jobs}; fires after the transaction holding them commits.
        """
        d: Deferred[None] = Deferred()
        self._pending.append((_ADD, jobs, d))
        self._kick()
        return d

    def done(self, key: int) -> Deferred[None]:
        """
        Delete the job stored under C{key}.
        """
        return self.doneMany([key])

    def doneMany(self, keys: List[int]) -> Deferred[None]:
        """
        Delete the jobs stored under C{keys}.
        """
        d: Deferred[None] = Deferred()
        self._pending.append((_DONE, keys, d))
        self._kick()
        return d

    def _kick(self) -> None:
        if self._inFlight or not self._pending:
            if not self._inFlight and not self._pending:
                waiters, self._flushed = self._flushed, []
                for waiter in waiters:
                    waiter.callback(None)
            return
        batch, self._pending = self._pending, []
        self._inFlight = True
        d = self._run(self._commit, [(kind, rows) for kind, rows, _ in batch])
        d.addCallbacks(self._committed, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))

    def _commit(self, operations: List[Tuple[int, List[Any]]]) -> None:
        connection = self._connection
        if connection is None:
            raise QueueError("the queue is not open")
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Consecutive operations of one kind are merged, and rows go
            # many to a statement: _sqlite releases the GIL around each
            # step, so one step per row would make this thread and the
            # reactor's hand the GIL back and forth for every job.
            start = 0
            while start < len(operations):
                kind = operations[start][0]
                end = start
                while end < len(operations) and operations[end][0] == kind:
                    end += 1
                items = [item for _, batch in operations[start:end] for item in batch]
                for offset in range(0, len(items), ROWS_PER_STATEMENT):
                    chunk = items[offset : offset + ROWS_PER_STATEMENT]
                    if kind == _ADD:
                        connection.execute(self._statement(_ADD, len(chunk)), _addParameters(chunk))
                    else:
                        connection.execute(self._statement(_DONE, len(chunk)), chunk)
                start = end
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _statement(self, kind: int, rows: int) -> str:
        """
        The INSERT or DELETE statement for C{rows} rows.
        """
        statement = self._statements.get((kind, rows))
        if statement is None:
            if kind == _ADD:
                statement = "INSERT INTO %s (%s) VALUES %s" % (
                    self.table,
                    _COLUMNS,
                    ",".join(["(?,?,?,?,?,?)"] * rows),
                )
            else:
                statement = "DELETE FROM %s WHERE id IN (%s)" % (self.table, ",".join("?" * rows))
            if len(self._statements) < 256:
                self._statements[kind, rows] = statement
        return statement

    def _committed(self, _: None, batch: List[Tuple[int, List[Any], Deferred[None]]]) -> None:
        self.commits += 1
        self._inFlight = False
        for _, _, d in batch:
            d.callback(None)
        self._kick()

    def _failed(self, failure: Failure, batch: List[Tuple[int, List[Any], Deferred[None]]]) -> None:
        self._inFlight = False
        self.log.failure("SQLite queue commit failed", failure)
        error = QueueError("sqlite: %s" % (failure.getErrorMessage(),))
        for _, _, d in batch:
            d.errback(error)
        self._kick()

    def replay(self) -> Deferred[List[QueuedJob]]:
        """
        Fire with every stored job, in the order they were stored.
        """
        d = self._run(self._replayInThread)
        d.addErrback(self._queueError, "cannot read %s" % (self.path,))
        return d

    def _replayInThread(self) -> List[QueuedJob]:
        connection = self._connection
        if connection is None:
            raise QueueError("the queue is not open")
        rows = connection.execute("SELECT %s FROM %s ORDER BY id" % (_COLUMNS, self.table)).fetchall()
        return [
            QueuedJob(_bytes(function), key, _bytes(unique), _bytes(data), int(priority or 0), int(when or 0))
            for key, function, unique, priority, when, data in rows
        ]

    def flush(self) -> Deferred[None]:
        """
        Fire once everything added or done so far is committed.
        """
        if not self._inFlight and not self._pending:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._flushed.append(d)
        return d

    def close(self) -> Deferred[None]:
        """
        Commit what is pending, close the database and stop the thread.
        """
        d = self.flush()

        def closeInThread() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        def stopPool(result: object) -> object:
            if self._ownPool and self._pool is not None:
                self._pool.stop()
                self._pool = None
            if self._savedSwitchInterval is not None:
                sys.setswitchinterval(self._savedSwitchInterval)
                self._savedSwitchInterval = None
            return result

        if self._pool is None:
            return d
        d.addCallback(lambda _: self._run(closeInThread))
        d.addBoth(stopPool)
        return d


def _addParameters(jobs: List[QueuedJob]) -> List[Any]:
    """
    The parameters of an INSERT of C{jobs}, column by column into one list
    (no tuple per row).
    """
    parameters: List[Any] = [None] * (6 * len(jobs))
    parameters[0::6] = [job.key for job in jobs]
    parameters[1::6] = [job.function for job in jobs]
    parameters[2::6] = [job.unique for job in jobs]
    parameters[3::6] = [job.priority for job in jobs]
    parameters[4::6] = [job.when for job in jobs]
    parameters[5::6] = [job.data for job in jobs]
    return parameters


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None:
        return b""
    return bytes(value)

