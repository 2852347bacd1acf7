# -*- test-case-name: tests.test_queues -*-
"""
The embedded persistent queue: SQLite in WAL mode, with group commit.

All database work happens on one dedicated thread.  Stores and deletes that
arrive while a transaction commits wait and go together into the next one,
so one fsync covers many jobs.

The file is a log of batches.  Each L{SQLiteQueue.addMany} call (the job
server makes one per read, or per reactor turn) is one row of
C{gearman_tw_batches(first, last, count, records)}: the record keys it
spans, how many jobs it holds, and the jobs back to back in one blob.  A
finished job is a row of C{gearman_tw_done(key)} until every job of its
batch has finished; then the batch and those rows are deleted together.
Storing a thousand jobs is one row insert and deleting them a few more, so
the queue keeps up with the server.

A job attempted again (L{SQLiteQueue.update}) gets a row of
C{gearman_tw_updates(key, record)} that stands for its record in the batch.
What outlives a job (dead letters) is C{gearman_tw_kept(kind, ident,
value)}.

Opening the file compacts it: batches are rewritten without their finished
jobs and with their updated records, so after C{open} the done and updates
tables are empty and no batch spans a key above its last live job.  A file holding gearmand's own C{libsqlite3} table
(C{gearman_queue}) is taken over at the same time: its jobs become a batch,
in their order, and the old table is dropped.

After each commit the database thread checks that the path still names the
files it opened (the database and its C{-wal} file, by device and inode): if
they were deleted or replaced, the commit's adds fail with L{QueueError}
naming the cause, as gearmand's libsqlite3 answers QUEUE_ERROR, instead of
acknowledging jobs no restart would find.  Deletes that fail (a full disk)
are kept and retried with backoff until they succeed (L{DeleteRetries}).
"""

from __future__ import annotations

import os
import sqlite3
from bisect import bisect_right
from operator import attrgetter
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from gearman_tw.errors import QueueError
from gearman_tw.interfaces import IPersistentQueue
from gearman_tw.queues import DeleteRetries, QueuedJob
from gearman_tw.queues.records import decodeRecords, encodeRecord, encodeRecords

# What the database thread is asked to do, in order (see _commit).
_ADD = 0
_DONE = 1
_UPDATE = 2
_UNUPDATE = 3
_KEEP = 4

#: The table gearmand's libsqlite3 queue writes.
GEARMAND_TABLE = "gearman_queue"

#: The switch interval (seconds) the queue's thread works best with; see
#: L{SQLiteQueue}'s C{switchInterval}.
SWITCH_INTERVAL = 0.0002

#: A batch's records are cut into several rows past this many bytes of data.
MAX_BATCH_BYTES = 8 << 20

#: Rows (or key ranges) per statement at most.
ROWS_PER_STATEMENT = 500

# One batch on the reactor thread: [last key, job count, finished keys].
_Batch = List[Any]
# One batch row: first key, last key, job count, records.
_Row = Tuple[int, int, int, bytes]
# What a delete writes: finished keys, and (first, last, the key that
# finished it) of emptied batches.
_Deletes = Tuple[List[int], List[Tuple[int, int, int]]]


def _row(first: int, last: int, jobs: List[QueuedJob]) -> _Row:
    return (first, last, len(jobs), encodeRecords(jobs))


@implementer(IPersistentQueue)
class SQLiteQueue:
    """
    Background jobs kept in an SQLite database file.

    @ivar commits: transactions committed so far (for tests and metrics).
    @ivar retries: the deletes that failed, retried until they succeed.
    """

    name = "sqlite"
    persistent = True
    log = Logger()

    def __init__(
        self,
        path: str,
        reactor: Any = None,
        table: str = "gearman_tw",
        synchronous: str = "FULL",
        threadPool: Optional[ThreadPool] = None,
        switchInterval: Optional[float] = SWITCH_INTERVAL,
    ) -> None:
        """
        @param table: the prefix of the tables (C{_batches}, C{_done},
            C{_updates}, C{_kept}).
        @param synchronous: SQLite's C{synchronous} setting: C{FULL} (the
            default) makes every commit durable across power loss; C{NORMAL}
            only across process crashes (C{kill -9}).
        @param switchInterval: the interpreter switch interval
            (C{sys.setswitchinterval}), in seconds, this queue works best
            with, C{None} for no preference.  The database thread needs the
            GIL back after every SQLite call; with the default 5 ms it waits
            that long behind the reactor's Python code each time, and commits
            (so JOB_CREATED replies) take several times longer than their
            work.  The queue only says so: the switch interval is
            process-wide, so it is the application's to set (C{twistd
            gearman} does, see L{gearman_tw.server.tuning}).
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
        self.batchesTable = table + "_batches"
        self.doneTable = table + "_done"
        self.updatesTable = table + "_updates"
        self.keptTable = table + "_kept"
        self.synchronous = synchronous.upper()
        self.switchInterval = switchInterval
        self.commits = 0
        self._pool = threadPool
        self._ownPool = threadPool is None
        self._shutdownTrigger: Any = None
        self._connection: Optional[sqlite3.Connection] = None
        self._pending: List[Tuple[int, Any, Deferred[None]]] = []
        self._inFlight = False
        self._flushed: List[Deferred[None]] = []
        # Live batches by first key, and their first keys in order.
        self._batches: Dict[int, _Batch] = {}
        self._firsts: List[int] = []
        # Keys with a row in the updates table (that rows's job may be live).
        self._updated: Set[int] = set()
        # Keys the index took as finished by a keep whose commit failed: in
        # the file they are not, and their batches must stay there.
        self._unconfirmed: Set[int] = set()
        # The files opened, as (path, (device, inode)), checked after each
        # commit.
        self._files: List[Tuple[str, Tuple[int, int]]] = []
        self.retries = DeleteRetries(reactor, self._retryDeletes, self.name)

    def _run(self, f: Any, *args: Any) -> Deferred[Any]:
        assert self._pool is not None
        return deferToThreadPool(self.reactor, self._pool, f, *args)

    # Opening and closing

    def open(self) -> Deferred[None]:
        """
        Start the database thread, create the tables if needed, take over a
        gearmand table and compact the log.
        """
        if self._pool is None:
            self._pool = ThreadPool(1, 1, name="gearman-sqlite")
            self._pool.start()
            # Like the reactor's own pool: never keep the process alive.
            self._shutdownTrigger = self.reactor.addSystemEventTrigger(
                "during", "shutdown", self._pool.stop
            )
        d = self._run(self._openInThread)
        d.addCallback(self._index)
        d.addErrback(self._queueError, "cannot open %s" % (self.path,))
        return d

    def _openInThread(self) -> List[Tuple[int, int, int]]:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise QueueError("cannot open %s: no such directory %s" % (self.path, directory))
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=%s" % (self.synchronous,))
            connection.execute(
                "CREATE TABLE IF NOT EXISTS %s (first INTEGER PRIMARY KEY, last INTEGER, "
                "count INTEGER, records BLOB)" % (self.batchesTable,)
            )
            connection.execute("CREATE TABLE IF NOT EXISTS %s (key INTEGER PRIMARY KEY)" % (self.doneTable,))
            connection.execute(
                "CREATE TABLE IF NOT EXISTS %s (key INTEGER PRIMARY KEY, record BLOB)" % (self.updatesTable,)
            )
            connection.execute(
                "CREATE TABLE IF NOT EXISTS %s (kind BLOB, ident BLOB, value BLOB, PRIMARY KEY (kind, ident))"
                % (self.keptTable,)
            )
            connection.execute("BEGIN IMMEDIATE")
            try:
                self._compact(connection)
                self._takeOverGearmand(connection)
                connection.execute("COMMIT")
            except BaseException:
                _rollback(connection)
                raise
            batches = connection.execute(
                "SELECT first, last, count FROM %s ORDER BY first" % (self.batchesTable,)
            ).fetchall()
            self._files = _identities(os.path.abspath(self.path))
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return batches

    def _compact(self, connection: sqlite3.Connection) -> None:
        """
        Rewrite every batch with finished or updated jobs, without the
        finished ones and with the updated records, and empty the done and
        updates tables.
        """
        done = {key for (key,) in connection.execute("SELECT key FROM %s" % (self.doneTable,))}
        updates = self._updates(connection)
        if not done and not updates:
            return
        finished = sorted(done)
        updated = sorted(updates)
        rows = connection.execute(
            "SELECT first, last, records FROM %s ORDER BY first" % (self.batchesTable,)
        ).fetchall()
        for first, last, records in rows:
            if not _within(finished, first, last) and not _within(updated, first, last):
                continue
            live = [updates.get(job.key, job) for job in decodeRecords(bytes(records)) if job.key not in done]
            live.sort(key=attrgetter("key"))
            connection.execute("DELETE FROM %s WHERE first = ?" % (self.batchesTable,), (first,))
            if live:
                self._insertBatches(connection, [_row(live[0].key, live[-1].key, live)])
        connection.execute("DELETE FROM %s" % (self.doneTable,))
        connection.execute("DELETE FROM %s" % (self.updatesTable,))

    def _updates(self, connection: sqlite3.Connection) -> Dict[int, QueuedJob]:
        """
        The updated records, by key.

        @raise QueueError: one is corrupt.
        """
        updates = {}
        for key, record in connection.execute("SELECT key, record FROM %s" % (self.updatesTable,)):
            jobs = list(decodeRecords(bytes(record)))
            if len(jobs) != 1 or jobs[0].key != key:
                raise QueueError("corrupt queue record (update of %d)" % (key,))
            updates[key] = jobs[0]
        return updates

    def _takeOverGearmand(self, connection: sqlite3.Connection) -> None:
        """
        Move the jobs of gearmand's table, if the file has one, into a batch
        after ours, and drop that table.
        """
        found = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (GEARMAND_TABLE,)
        ).fetchone()
        if found is None:
            return
        (last,) = connection.execute("SELECT coalesce(max(last), 0) FROM %s" % (self.batchesTable,)).fetchone()
        rows = connection.execute(
            "SELECT function_name, unique_key, priority, when_to_run, data FROM %s ORDER BY rowid"
            % (GEARMAND_TABLE,)
        ).fetchall()
        jobs = []
        for number, (function, key, priority, when, data) in enumerate(rows, last + 1):
            unique = _bytes(key)
            if unique.startswith(b"\0"):
                # A key gearman_tw 0.1 generated for a job without one.
                unique = b""
            jobs.append(QueuedJob(_bytes(function), number, unique, _bytes(data), int(priority or 0), int(when or 0)))
        if jobs:
            self._insertBatches(connection, [_row(jobs[0].key, jobs[-1].key, jobs)])
            self.log.info(
                "Took over {count} jobs from gearmand's {table} table in {path}",
                count=len(jobs),
                table=GEARMAND_TABLE,
                path=self.path,
            )
        connection.execute("DROP TABLE %s" % (GEARMAND_TABLE,))

    def _index(self, batches: List[Tuple[int, int, int]]) -> None:
        """
        Know the stored batches (on the reactor thread), to find a finished
        job's batch.
        """
        self._batches = {first: [last, count, set()] for first, last, count in batches}
        self._firsts = [first for first, _, _ in batches]

    @staticmethod
    def _queueError(failure: Failure, what: str) -> Failure:
        if failure.check(QueueError):
            return failure
        return Failure(QueueError("%s: %s" % (what, failure.getErrorMessage())))

    def close(self) -> Deferred[None]:
        """
        Commit what is pending, retry the deletes that failed once more,
        close the database and stop the thread.
        """
        d = self.flush()
        d.addCallback(lambda _: self.retries.close())
        d.addCallback(lambda _: self.flush())

        def closeInThread() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        def stopPool(result: object) -> object:
            if self._ownPool and self._pool is not None:
                self._pool.stop()
                self._pool = None
                if self._shutdownTrigger is not None:
                    self.reactor.removeSystemEventTrigger(self._shutdownTrigger)
                    self._shutdownTrigger = None
            return result

        if self._pool is None:
            return d
        d.addCallback(lambda _: self._run(closeInThread))
        d.addBoth(stopPool)
        return d

    # Adding and finishing jobs (on the reactor thread)

    # IPersistentQueue types records as object (interfaces.py does not
    # import QueuedJob).
    def add(self, job: QueuedJob) -> Deferred[None]:
        """
        Store C{job}; fires after the transaction holding it commits.
        """
        return self.addMany([job])

    def addMany(self, jobs: Sequence[QueuedJob]) -> Deferred[None]:
        """
        Store C{jobs} as one batch (more past L{MAX_BATCH_BYTES}); fires
        after the transaction holding them commits.

        @raise QueueError: (in the Deferred) a key is not above every key
            stored before.
        """
        if not jobs:
            return succeed(None)
        # In key order: a batch spans its first to its last key.
        jobs = sorted(jobs, key=attrgetter("key"))
        firsts = self._firsts
        floor = self._batches[firsts[-1]][0] if firsts else -1
        keys = [job.key for job in jobs]
        first = keys[0]
        if first <= floor:
            return fail(QueueError("record keys must increase: %d after %d" % (first, floor)))
        batches = []
        if sum(len(job.data) for job in jobs) <= MAX_BATCH_BYTES:
            batches.append((first, keys[-1], jobs))
        else:
            start = size = 0
            for index, job in enumerate(jobs):
                if size and size + len(job.data) > MAX_BATCH_BYTES:
                    batches.append((jobs[start].key, jobs[index - 1].key, jobs[start:index]))
                    start, size = index, 0
                size += len(job.data)
            batches.append((jobs[start].key, keys[-1], jobs[start:]))
        # Encoded here rather than on the database thread: there it would
        # hold the GIL for as long, and fight the reactor for it.
        rows = [_row(first, last, batch) for first, last, batch in batches]
        for first, last, batch in batches:
            self._batches[first] = [last, len(batch), set()]
            firsts.append(first)
        d: Deferred[None] = Deferred()
        self._pending.append((_ADD, rows, d))
        self._kick()
        return d

    def done(self, key: int) -> Deferred[None]:
        """
        Forget the job stored under C{key}.
        """
        return self.doneMany([key])

    def doneMany(self, keys: List[int]) -> Deferred[None]:
        """
        Forget the jobs stored under C{keys}: each is marked finished, and
        a batch whose jobs have all finished is deleted.
        """
        deletes = self._markDone(keys)
        if self._updated:
            self._forgetUpdates(keys)
        if not deletes[0] and not deletes[1]:
            return succeed(None)
        d: Deferred[None] = Deferred()
        # Before the caller's errbacks: keep the deletes to retry them.
        d.addErrback(self._keepDeletes, deletes)
        self._pending.append((_DONE, deletes, d))
        self._kick()
        return d

    def _markDone(self, keys: List[int]) -> _Deletes:
        """
        Mark the jobs under C{keys} finished in the index of batches.

        @return: the keys to mark finished in the database, and the batches
            (first and last keys) to delete from it.
        """
        firsts = self._firsts
        batches = self._batches
        finished: List[int] = []
        emptied: List[Tuple[int, int, int]] = []
        for key in keys:
            at = bisect_right(firsts, key) - 1
            if at < 0:
                continue
            first = firsts[at]
            batch = batches[first]
            done: Set[int] = batch[2]
            if key > batch[0] or key in done:
                continue
            done.add(key)
            if len(done) < batch[1]:
                finished.append(key)
            else:
                del batches[first]
                del firsts[at]
                emptied.append((first, batch[0], key))
        return finished, emptied

    def _isLive(self, key: int) -> bool:
        """
        Whether a job is stored under C{key} and not finished.
        """
        at = bisect_right(self._firsts, key) - 1
        if at < 0:
            return False
        batch = self._batches[self._firsts[at]]
        return key <= batch[0] and key not in batch[2]

    def _forgetUpdates(self, keys: List[int]) -> None:
        """
        Delete the update rows of finished jobs (with the next commit; one
        that fails leaves rows the next L{open} drops).
        """
        updated = self._updated
        gone = [key for key in keys if key in updated]
        if gone:
            updated.difference_update(gone)
            d: Deferred[None] = Deferred()
            d.addErrback(lambda _: None)
            self._pending.append((_UNUPDATE, gone, d))
            self._kick()

    def update(self, jobs: List[QueuedJob]) -> Deferred[None]:
        """
        Rewrite the records of C{jobs} (same keys): each gets a row in the
        updates table; jobs not stored, or finished, are left alone.
        """
        rows = [(job.key, encodeRecord(job)) for job in jobs if self._isLive(job.key)]
        if not rows:
            return succeed(None)
        self._updated.update(key for key, _ in rows)
        d: Deferred[None] = Deferred()
        self._pending.append((_UPDATE, rows, d))
        self._kick()
        return d

    def keep(
        self, kind: bytes, records: List[Tuple[bytes, bytes]], done: List[int], dropped: List[bytes]
    ) -> Deferred[None]:
        """
        Store and drop records of C{kind} and forget the jobs under C{done},
        in one transaction.  If it fails, those jobs stay stored (and the
        next L{open} replays them).
        """
        deletes = self._markDone(done)
        if self._updated:
            self._forgetUpdates(done)
        d: Deferred[None] = Deferred()
        self._pending.append((_KEEP, (bytes(kind), records, dropped, deletes), d))
        self._kick()
        return d

    def kept(self, kind: bytes) -> Deferred[List[Tuple[bytes, bytes]]]:
        """
        Fire with the records of C{kind}, as C{(ident, value)}.
        """
        d = self._run(self._keptInThread, bytes(kind))
        d.addErrback(self._queueError, "cannot read %s" % (self.path,))
        return d

    def _keptInThread(self, kind: bytes) -> List[Tuple[bytes, bytes]]:
        connection = self._connection
        if connection is None:
            raise QueueError("the queue is not open")
        rows = connection.execute(
            "SELECT ident, value FROM %s WHERE kind = ? ORDER BY rowid" % (self.keptTable,), (kind,)
        )
        return [(bytes(ident), bytes(value)) for ident, value in rows]

    def _keepDeletes(self, failure: Failure, deletes: _Deletes) -> Failure:
        self.retries.keep([deletes], len(deletes[0]) + len(deletes[1]))
        return failure

    def _retryDeletes(self, kept: List[_Deletes]) -> Deferred[None]:
        """
        Commit kept deletes again, as one (for L{DeleteRetries}).
        """
        deletes = ([key for finished, _ in kept for key in finished], [span for _, emptied in kept for span in emptied])
        d: Deferred[None] = Deferred()
        self._pending.append((_DONE, deletes, d))
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
        unconfirmed = frozenset(self._unconfirmed) if self._unconfirmed else None
        d = self._run(self._commit, [(kind, payload) for kind, payload, _ in batch], unconfirmed)
        d.addCallbacks(self._committed, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))

    def _committed(self, _: object, batch: List[Tuple[int, Any, Deferred[None]]]) -> None:
        self.commits += 1
        self._inFlight = False
        for _, _, d in batch:
            d.callback(None)
        self._kick()

    def _failed(self, failure: Failure, batch: List[Tuple[int, Any, Deferred[None]]]) -> None:
        self._inFlight = False
        self.log.failure("SQLite queue commit failed", failure)
        error = QueueError("sqlite: %s" % (failure.getErrorMessage(),))
        for kind, payload, _ in batch:
            if kind == _ADD:
                # Nothing of these batches was stored.
                for first, _, _, _ in payload:
                    if self._batches.pop(first, None) is not None:
                        self._firsts.remove(first)
            elif kind == _KEEP:
                # Its jobs are still stored: their batches must not be
                # deleted (a delete already computed, kept for a retry, is
                # held back by _finish), and they replay after a restart.
                finished, emptied = payload[3]
                self._unconfirmed.update(finished)
                self._unconfirmed.update(key for _, _, key in emptied)
                for key in finished:
                    at = bisect_right(self._firsts, key) - 1
                    if at >= 0:
                        self._batches[self._firsts[at]][2].discard(key)
        for _, _, d in batch:
            d.errback(error)
        self._kick()

    # The database thread

    def _commit(self, operations: List[Tuple[int, Any]], unconfirmed: Optional[FrozenSet[int]] = None) -> None:
        connection = self._connection
        if connection is None:
            raise QueueError("the queue is not open")
        connection.execute("BEGIN IMMEDIATE")
        try:
            # In order; consecutive operations of one kind are merged, so
            # that each kind is a few statements (_sqlite releases the GIL
            # around each, and waits to get it back).
            start = 0
            while start < len(operations):
                kind = operations[start][0]
                end = start
                while end < len(operations) and operations[end][0] == kind:
                    end += 1
                merged = operations[start:end]
                if kind == _ADD:
                    self._insertBatches(connection, [batch for _, batches in merged for batch in batches])
                elif kind == _DONE:
                    self._finish(
                        connection,
                        [key for _, (finished, _) in merged for key in finished],
                        [span for _, (_, emptied) in merged for span in emptied],
                        unconfirmed,
                    )
                elif kind == _UPDATE:
                    self._replaceRows(
                        connection, self.updatesTable, "key, record", [r for _, rows in merged for r in rows]
                    )
                elif kind == _UNUPDATE:
                    self._deleteKeys(connection, self.updatesTable, [key for _, keys in merged for key in keys])
                else:
                    for _, (kept, records, dropped, (finished, emptied)) in merged:
                        self._finish(connection, finished, emptied, unconfirmed)
                        self._replaceRows(
                            connection, self.keptTable, "kind, ident, value", [(kept,) + r for r in records]
                        )
                        self._dropKept(connection, kept, dropped)
                start = end
            connection.execute("COMMIT")
        except BaseException:
            _rollback(connection)
            raise
        # After the commit: a file deleted or replaced before this point
        # holds what was committed only until the last descriptor closes.
        self._checkFiles()

    def _checkFiles(self) -> None:
        """
        Raise L{QueueError} if a file opened is no longer at its path: two
        C{stat} calls per commit.
        """
        for path, identity in self._files:
            try:
                status = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                raise QueueError("%s was deleted while open; nothing is stored until a restart" % (path,))
            except OSError as e:
                raise QueueError("%s cannot be checked: %s" % (path, e.strerror))
            if (status.st_dev, status.st_ino) != identity:
                raise QueueError(
                    "%s was replaced by another file while open; nothing is stored until a restart" % (path,)
                )

    def _insertBatches(self, connection: sqlite3.Connection, rows: List[_Row]) -> None:
        """
        Insert batch rows (first, last, count, records).
        """
        for offset in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[offset : offset + ROWS_PER_STATEMENT]
            parameters: List[Any] = [value for row in chunk for value in row]
            connection.execute(
                "INSERT INTO %s (first, last, count, records) VALUES %s"
                % (self.batchesTable, ",".join(["(?,?,?,?)"] * len(chunk))),
                parameters,
            )

    def _replaceRows(
        self, connection: sqlite3.Connection, table: str, columns: str, rows: List[Tuple[Any, ...]]
    ) -> None:
        """
        Insert C{rows} into C{table}, replacing those with the same primary
        key.
        """
        if not rows:
            return
        marks = "(%s)" % (",".join("?" * len(rows[0])),)
        for offset in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[offset : offset + ROWS_PER_STATEMENT]
            connection.execute(
                "INSERT OR REPLACE INTO %s (%s) VALUES %s" % (table, columns, ",".join([marks] * len(chunk))),
                [value for row in chunk for value in row],
            )

    def _deleteKeys(self, connection: sqlite3.Connection, table: str, keys: List[int]) -> None:
        for offset in range(0, len(keys), ROWS_PER_STATEMENT):
            chunk = keys[offset : offset + ROWS_PER_STATEMENT]
            connection.execute("DELETE FROM %s WHERE key IN (%s)" % (table, ",".join("?" * len(chunk))), chunk)

    def _dropKept(self, connection: sqlite3.Connection, kind: bytes, idents: List[bytes]) -> None:
        for offset in range(0, len(idents), ROWS_PER_STATEMENT):
            chunk = idents[offset : offset + ROWS_PER_STATEMENT]
            connection.execute(
                "DELETE FROM %s WHERE kind = ? AND ident IN (%s)" % (self.keptTable, ",".join("?" * len(chunk))),
                [kind] + list(chunk),
            )

    def _finish(
        self,
        connection: sqlite3.Connection,
        finished: List[int],
        emptied: List[Tuple[int, int, int]],
        unconfirmed: Optional[FrozenSet[int]] = None,
    ) -> None:
        """
        Mark keys finished and delete emptied batches, but a batch holding a
        key in C{unconfirmed} (a job whose keep failed, still stored): its
        last key is only marked finished, and the batch stays until the
        next L{open} compacts it.
        """
        if unconfirmed:
            held = [span for span in emptied if any(span[0] <= key <= span[1] for key in unconfirmed)]
            if held:
                finished = finished + [key for _, _, key in held]
                emptied = [span for span in emptied if span not in held]
        for offset in range(0, len(finished), ROWS_PER_STATEMENT):
            chunk = finished[offset : offset + ROWS_PER_STATEMENT]
            connection.execute(
                "INSERT OR IGNORE INTO %s (key) VALUES %s" % (self.doneTable, ",".join(["(?)"] * len(chunk))),
                chunk,
            )
        for offset in range(0, len(emptied), ROWS_PER_STATEMENT):
            spans = emptied[offset : offset + ROWS_PER_STATEMENT]
            connection.execute(
                "DELETE FROM %s WHERE first IN (%s)" % (self.batchesTable, ",".join("?" * len(spans))),
                [first for first, _, _ in spans],
            )
            connection.execute(
                "DELETE FROM %s WHERE %s" % (self.doneTable, " OR ".join(["key BETWEEN ? AND ?"] * len(spans))),
                [key for first, last, _ in spans for key in (first, last)],
            )

    # Replay

    def replay(self) -> Deferred[List[QueuedJob]]:
        """
        Fire with every stored, unfinished job, in key order.
        """
        d = self._run(self._replayInThread)
        d.addErrback(self._queueError, "cannot read %s" % (self.path,))
        return d

    def _replayInThread(self) -> List[QueuedJob]:
        connection = self._connection
        if connection is None:
            raise QueueError("the queue is not open")
        done = {key for (key,) in connection.execute("SELECT key FROM %s" % (self.doneTable,))}
        updates = self._updates(connection)
        jobs: List[QueuedJob] = []
        for (records,) in connection.execute("SELECT records FROM %s ORDER BY first" % (self.batchesTable,)):
            jobs.extend(updates.get(job.key, job) for job in decodeRecords(bytes(records)) if job.key not in done)
        jobs.sort(key=attrgetter("key"))
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


def _within(ordered: List[int], first: int, last: int) -> bool:
    """
    Whether a key of C{ordered} (sorted) lies within [C{first}, C{last}].
    """
    at = bisect_right(ordered, last) - 1
    return at >= 0 and ordered[at] >= first


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None:
        return b""
    return bytes(value)


def _identities(path: str) -> List[Tuple[str, Tuple[int, int]]]:
    """
    The device and inode of the database file at C{path} and of its
    C{-wal} file, if it has one.
    """
    found = []
    for name in (path, path + "-wal"):
        try:
            status = os.stat(name)
        except FileNotFoundError:
            continue
        found.append((name, (status.st_dev, status.st_ino)))
    return found


def _rollback(connection: sqlite3.Connection) -> None:
    """
    Roll back the transaction an error interrupted, keeping that error: after
    some (a full disk, say) SQLite has rolled back already, and a failing
    ROLLBACK ("no transaction is active") must not hide the cause.
    """
    if connection.in_transaction:
        try:
            connection.execute("ROLLBACK")
        except sqlite3.Error:
            pass
