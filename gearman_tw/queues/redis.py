# -*- test-case-name: tests.test_queues -*-
"""
The Redis persistent queue, through txredisapi (hidden in this module).

Jobs live in one hash per namespace, C{<namespace>:jobs}: the field is the
record's key (the job server's number for it, in decimal), the value the
job in the form of L{gearman_tw.queues.records}.  An add is one HSET and a done one
HDEL, pipelined over one connection, so several servers can share a Redis
with a namespace each, and a replacement server started with a dead one's
namespace takes over its unfinished jobs.

Durability is Redis's: run it with C{appendonly yes} and C{appendfsync
always} for no acknowledged job to be lost when Redis itself crashes
(C{everysec} can lose the last second).
"""

from __future__ import annotations

from typing import Any, List, Optional

from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gearman_tw.errors import QueueError, describeFailure
from gearman_tw.interfaces import IPersistentQueue
from gearman_tw.queues import QueuedJob
from gearman_tw.queues.records import decodeRecords, encodeRecords

#: Seconds a Redis command may take before the job server gives up on it.
DEFAULT_TIMEOUT = 10.0


@implementer(IPersistentQueue)
class RedisQueue:
    """
    Background jobs kept in Redis.
    """

    name = "redis"
    persistent = True
    log = Logger()

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        database: int = 0,
        password: Optional[str] = None,
        namespace: str = "gearman",
        reactor: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.host = host
        self.port = port
        self.database = database
        self.password = password
        self.namespace = namespace
        self.reactor = reactor
        self.timeout = timeout
        self.key = namespace.encode("utf-8") + b":jobs"
        self._redis: Any = None

    def _call(self, what: str, command: str, *args: Any) -> Deferred[Any]:
        if self._redis is None:
            return Deferred.fromCoroutine(self._notOpen())
        d = self._redis.execute_command(command, *args)
        d.addTimeout(self.timeout, self.reactor)
        d.addErrback(self._error, what)
        return d

    async def _notOpen(self) -> None:
        raise QueueError("the Redis queue is not open")

    def _error(self, failure: Failure, what: str) -> Failure:
        if failure.check(defer.TimeoutError):
            why = "no answer from Redis within %g s" % (self.timeout,)
        else:
            why = describeFailure(failure)
        self.log.error("Redis queue: {what} failed: {why}", what=what, why=why)
        return Failure(QueueError("redis %s: %s" % (what, why)))

    def open(self) -> Deferred[None]:
        """
        Connect (txredisapi reconnects by itself after) and check Redis
        answers.
        """
        import txredisapi

        self._redis = txredisapi.lazyConnection(
            self.host,
            self.port,
            dbid=self.database,
            reconnect=True,
            charset=None,
            password=self.password,
            convertNumbers=False,
        )
        return self._call("connect", "PING").addCallback(lambda _: None)

    def close(self) -> Deferred[None]:
        redis, self._redis = self._redis, None
        if redis is None:
            return succeed(None)
        return redis.disconnect().addBoth(lambda _: None)

    # IPersistentQueue types records as object (interfaces.py does not
    # import QueuedJob).
    def add(self, job: QueuedJob) -> Deferred[None]:
        return self.addMany([job])

    def addMany(self, jobs: List[QueuedJob]) -> Deferred[None]:
        """
        One HSET of every job: atomic, and one round trip.
        """
        arguments: List[bytes] = []
        for job in jobs:
            arguments.append(b"%d" % (job.key,))
            arguments.append(encodeRecords([job]))
        d = self._call("add", "HSET", self.key, *arguments)
        return d.addCallback(lambda _: None)

    def done(self, key: int) -> Deferred[None]:
        return self.doneMany([key])

    def doneMany(self, keys: List[int]) -> Deferred[None]:
        d = self._call("done", "HDEL", self.key, *[b"%d" % (key,) for key in keys])
        return d.addCallback(lambda _: None)

    def replay(self) -> Deferred[List[QueuedJob]]:
        d = self._call("replay", "HVALS", self.key)
        d.addCallback(self._replayed)
        return d

    def _replayed(self, values: List[bytes]) -> List[QueuedJob]:
        jobs = [job for value in values or [] for job in decodeRecords(bytes(value))]
        return sorted(jobs, key=lambda job: job.key)
