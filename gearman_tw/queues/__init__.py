# -*- test-case-name: tests.test_queues -*-
"""
Persistent queues for background jobs, chosen by URL:

  - C{memory} (the default): nothing persisted, as gearmand's builtin queue;
  - C{sqlite:PATH}: an embedded SQLite database (WAL, group commit);
  - C{redis://HOST:PORT/DB?namespace=NAME}: Redis, via txredisapi;
  - C{redis+sentinel://HOST:PORT,HOST:PORT/SERVICE/DB?namespace=NAME}:
    Redis behind Redis Sentinel;
  - C{postgresql://USER:PASSWORD@HOST:PORT/DB?table=NAME}: PostgreSQL, via
    psycopg;
  - C{mysql://USER:PASSWORD@HOST:PORT/DB?table=NAME}: MySQL or MariaDB, via
    PyMySQL.
"""

from __future__ import annotations

from typing import Any, Callable, List, NamedTuple, Optional
from urllib.parse import parse_qs, urlparse

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from gearman_tw.errors import QueueError

#: Failed deletes (records) a queue keeps for retrying at most; past this
#: many, more are dropped with a critical log line (their jobs run again
#: after a restart).
MAX_RETRIED_DELETES = 100000

#: Seconds before the first retry of failed deletes; doubled after each
#: failed retry, up to L{MAX_RETRY_DELAY}.
FIRST_RETRY_DELAY = 0.5

#: The longest wait (seconds) between two retries of failed deletes.
MAX_RETRY_DELAY = 30.0


class QueuedJob(NamedTuple):
    """
    What a persistent queue stores of a background job.

    @ivar key: the record's number, given by the job server: unique within
        the queue and increasing in submission order (replay follows it).
    @ivar unique: the job's unique key, empty for none.
    @ivar priority: 0 HIGH, 1 NORMAL, 2 LOW (gearmand's numbers).
    @ivar when: the epoch second the job may run from, 0 for at once.
    @ivar attempts: the attempts made at it that did not end it (a worker
        lost, a time limit, a failure its policy retries).
    @ivar due: after such an attempt, the time (epoch seconds) its
        backoff ends, 0 for at once.
    """

    function: bytes
    key: int
    unique: bytes
    data: bytes
    priority: int
    when: int = 0
    attempts: int = 0
    due: float = 0.0


def queueFromURL(url: Optional[str], reactor: Any = None) -> Any:
    """
    The persistent queue a C{--queue} URL names.

    @raise QueueError: the URL names no backend, or a backend that cannot be
        loaded.
    """
    if not url or url == "memory":
        from gearman_tw.queues.memory import MemoryQueue

        return MemoryQueue()
    if url.startswith("sqlite:"):
        from gearman_tw.queues.sqlite import SQLiteQueue

        path = url[len("sqlite:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise QueueError("sqlite: needs a path, e.g. sqlite:gearman.db")
        return SQLiteQueue(path, reactor=reactor)
    if url.startswith("redis://"):
        from gearman_tw.queues.redis import RedisQueue

        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        database = parsed.path.strip("/") or "0"
        if not database.isdigit():
            raise QueueError("redis: the database must be a number")
        return RedisQueue(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 6379,
            database=int(database),
            password=parsed.password,
            namespace=query.get("namespace", ["gearman"])[0],
            reactor=reactor,
        )
    if url.startswith("redis+sentinel://"):
        # redis+sentinel://[:PASSWORD@]HOST:PORT,HOST:PORT/SERVICE/DB?namespace=NAME&replicas=N
        from gearman_tw.queues.redis import RedisQueue

        return RedisQueue.fromSentinelURL(url, reactor=reactor)
    if url.startswith(("postgresql://", "postgres://")):
        from gearman_tw.queues.postgresql import PostgreSQLQueue

        return PostgreSQLQueue.fromURL(url, reactor=reactor)
    if url.startswith(("mysql://", "mariadb://")):
        from gearman_tw.queues.mysql import MySQLQueue

        return MySQLQueue.fromURL(url, reactor=reactor)
    raise QueueError(
        "unknown queue %r: use memory, sqlite:PATH, redis://HOST:PORT/DB, redis+sentinel://..., postgresql://... "
        "or mysql://..." % (url,)
    )


class DeleteRetries:
    """
    The deletes a persistent queue could not make, kept (up to
    L{MAX_RETRIED_DELETES} records) and retried with backoff on the
    reactor's clock until they succeed, and once more at L{close}.

    What is kept is the backend's: C{attempt} gets the list of everything
    kept, and fires when all of it is deleted, or fails (then all of it is
    kept again).

    @ivar count: how many records are kept now.
    @ivar dropped: how many records were not kept (past the limit).
    """

    log = Logger()

    def __init__(
        self,
        clock: Any,
        attempt: Callable[[List[Any]], "Deferred[None]"],
        name: str,
        limit: Optional[int] = None,
    ) -> None:
        """
        @param clock: the reactor (an C{IReactorTime}).
        @param attempt: deletes what is kept, given as one list.
        @param name: the backend's name, for log lines.
        @param limit: records kept at most; L{MAX_RETRIED_DELETES} by
            default.
        """
        self.clock = clock
        self.attempt = attempt
        self.name = name
        self.limit = MAX_RETRIED_DELETES if limit is None else limit
        self.count = 0
        self.dropped = 0
        self._kept: List[Any] = []
        self._delay = FIRST_RETRY_DELAY
        self._call: Any = None
        self._running: Optional["Deferred[None]"] = None
        self._closed = False

    def keep(self, items: List[Any], count: int) -> None:
        """
        Keep C{items} (C{count} records) to retry them.
        """
        if self._closed or self.count + count > self.limit:
            self.dropped += count
            self.log.critical(
                "{name} queue: {count} records that should be gone could not be deleted and will be"
                " replayed after a restart ({why})",
                name=self.name,
                count=count,
                why="the queue is closed" if self._closed else "%d deletes wait for a retry already" % (self.count,),
            )
            return
        self._kept.extend(items)
        self.count += count
        self._schedule()

    def _schedule(self) -> None:
        if self._call is None and self._running is None and self._kept and not self._closed:
            self._call = self.clock.callLater(self._delay, self._retry)

    def _retry(self) -> "Deferred[None]":
        self._call = None
        items, count = self._kept, self.count
        self._kept, self.count = [], 0

        def succeeded(_: object) -> None:
            self._delay = FIRST_RETRY_DELAY
            self.log.info("{name} queue: {count} failed deletes made on a retry", name=self.name, count=count)

        def failed(failure: Failure) -> None:
            self._kept[:0] = items
            self.count += count
            self._delay = min(self._delay * 2, MAX_RETRY_DELAY)
            self.log.warn(
                "{name} queue: retrying {count} failed deletes failed again ({why}); next try in {delay} s",
                name=self.name,
                count=count,
                why=failure.getErrorMessage(),
                delay=self._delay,
            )

        def finished(_: object) -> None:
            self._running = None
            self._schedule()

        d = maybeDeferred(self.attempt, items)
        d.addCallbacks(succeeded, failed)
        d.addCallback(finished)
        self._running = d
        return d

    def close(self) -> "Deferred[None]":
        """
        Wait for a retry under way, retry once more what is still kept, and
        stop; log (critical) how many records could not be deleted.  Never
        fails.
        """
        return Deferred.fromCoroutine(self._close())

    async def _close(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None
        # Bounded: each retry is one attempt, and _schedule() sets no timer
        # once _closed is set.
        self._closed = True
        if self._running is not None:
            await _quietly(self._running)
        if self._kept:
            await self._retry()
        if self._kept:
            self.log.critical(
                "{name} queue: {count} records that should be gone could not be deleted and will be replayed"
                " after a restart",
                name=self.name,
                count=self.count,
            )
            self.dropped += self.count
            self._kept, self.count = [], 0


def _quietly(d: "Deferred[None]") -> "Deferred[None]":
    """
    A Deferred that fires (with None) when C{d} has.
    """
    waiter: Deferred[None] = Deferred()

    def fire(result: object) -> object:
        waiter.callback(None)
        return result

    d.addBoth(fire)
    return waiter


#: The kind of the records a persistent queue keeps for dead letters
#: (L{IPersistentQueue.keep <gearman_tw.interfaces.IPersistentQueue.keep>}).
DEAD_LETTERS = b"deadletter"

#: The kind of the records of stored results, by job handle.
RESULTS = b"result"

#: The kind of the records of policies changed at run time: by function
#: name, the changed keys as JSON.
POLICY_CHANGES = b"policy"

#: The kind of the record of job handle numbers given out: C{next}, the
#: number up to which a server may have given handles (decimal), so that
#: one restarted above it never gives a handle twice.
HANDLES = b"handles"


__all__ = ["DEAD_LETTERS", "HANDLES", "POLICY_CHANGES", "RESULTS", "DeleteRetries", "QueuedJob", "queueFromURL"]
