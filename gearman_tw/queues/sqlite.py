# -*- test-case-name: tests.test_queues -*-
"""
The embedded persistent queue: SQLite in WAL mode, with group commit.

All database work happens on one dedicated thread.  Adds and dones that
arrive while a transaction is being committed wait and go together into
the next one, so one fsync covers many jobs.

The table is gearmand's own (C{gearman_queue(unique_key, function_name,
priority, data, when_to_run)}), so a gearmand libsqlite3 queue file can be
replayed by gearman_tw.  Jobs without a unique key get a generated key
starting with a NUL byte, so they no longer overwrite each other as they do
in gearmand.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any, List, Optional, Tuple

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

#: Rows per INSERT or DELETE statement (5 parameters a row, well under
#: SQLite's limit of 32766).
ROWS_PER_STATEMENT = 1000


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
        table: str = "gearman_queue",
        synchronous: str = "FULL",
        threadPool: Optional[ThreadPool] = None,
    ) -> None:
        """
        @param synchronous: SQLite's C{synchronous} setting: C{FULL} (the
            default) makes every commit durable across power loss; C{NORMAL}
            only across process crashes (C{kill -9}).
        """
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        if not table.replace("_", "").isalnum():
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
        self._pending: List[Tuple[int, List[tuple], Deferred[None]]] = []
        self._inFlight = False
        self._flushed: List[Deferred[None]] = []

    def _run(self, f: Any, *args: Any) -> Deferred[Any]:
        assert self._pool is not None
        return deferToThreadPool(self.reactor, self._pool, f, *args)

    def open(self) -> Deferred[None]:
        """
        Start the database thread and create the table if needed.
        """
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
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=%s" % (self.synchronous,))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS %s (unique_key TEXT, function_name TEXT, "
            "priority INTEGER, data BLOB, when_to_run INTEGER, "
            "PRIMARY KEY(unique_key, function_name))" % (self.table,)
        )
        self._connection = connection

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
        rows = [(job.key, job.function, job.priority, job.data, job.when) for job in jobs]
        self._pending.append((_ADD, rows, d))
        self._kick()
        return d

    def done(self, function: bytes, key: bytes) -> Deferred[None]:
        """
        Delete the job stored under C{(function, key)}.
        """
        return self.doneMany([(function, key)])

    def doneMany(self, records: List[Tuple[bytes, bytes]]) -> Deferred[None]:
        """
        Delete the jobs stored under each C{(function, key)}.
        """
        d: Deferred[None] = Deferred()
        self._pending.append((_DONE, [(key, function) for function, key in records], d))
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

    def _commit(self, operations: List[Tuple[int, List[tuple]]]) -> None:
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
                rows = [row for _, batch in operations[start:end] for row in batch]
                for offset in range(0, len(rows), ROWS_PER_STATEMENT):
                    chunk = rows[offset : offset + ROWS_PER_STATEMENT]
                    self._execute(connection, kind, chunk)
                start = end
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _execute(self, connection: sqlite3.Connection, kind: int, rows: List[tuple]) -> None:
        if kind == _ADD:
            statement = "INSERT OR REPLACE INTO %s (unique_key, function_name, priority, data, when_to_run) VALUES %s" % (
                self.table,
                ",".join(["(?,?,?,?,?)"] * len(rows)),
            )
        else:
            statement = "DELETE FROM %s WHERE (unique_key, function_name) IN (VALUES %s)" % (
                self.table,
                ",".join(["(?,?)"] * len(rows)),
            )
        connection.execute(statement, [value for row in rows for value in row])

    def _committed(self, _: None, batch: List[Tuple[int, List[tuple], Deferred[None]]]) -> None:
        self.commits += 1
        self._inFlight = False
        for _, _, d in batch:
            d.callback(None)
        self._kick()

    def _failed(self, failure: Failure, batch: List[Tuple[int, List[tuple], Deferred[None]]]) -> None:
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
        rows = connection.execute(
            "SELECT unique_key, function_name, priority, data, when_to_run FROM %s ORDER BY rowid"
            % (self.table,)
        ).fetchall()
        jobs = []
        for key, function, priority, data, when in rows:
            key = _bytes(key)
            unique = b"" if key.startswith(b"\0") else key
            jobs.append(
                QueuedJob(_bytes(function), key, unique, _bytes(data or b""), int(priority or 0), int(when or 0))
            )
        return jobs

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
            return result

        if self._pool is None:
            return d
        d.addCallback(lambda _: self._run(closeInThread))
        d.addBoth(stopPool)
        return d


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None:
        return b""
    return bytes(value)

