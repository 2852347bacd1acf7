# -*- test-case-name: tests.test_queues -*-
"""
The Redis persistent queue, through txredisapi (hidden in this module).

Jobs live in one hash per namespace, C{<namespace>:jobs}: the field is the
record's key (the job server's number for it, in decimal), the value the
job in the form of L{gearman_tw.queues.records}.  An add is one HSET and a done one
HDEL, pipelined over one connection, so several servers can share a Redis
with a namespace each, and a replacement server started with a dead one's
namespace takes over its unfinished jobs.

A job attempted again is rewritten in place (L{RedisQueue.update}: an HSET
of the fields that still exist, in one script).  Records of a kind (dead
letters) live in C{<namespace>:kept:<kind>}, a hash by ident; L{RedisQueue.keep}
changes them and forgets jobs in one script, so atomically.

Durability is Redis's: run it with C{appendonly yes} and C{appendfsync
always} for no acknowledged job to be lost when Redis itself crashes
(C{everysec} can lose the last second).

An add that Redis did not answer (no answer within the timeout, or the
connection lost) may have been stored all the same.  Before it fails, it is
withdrawn: an HDEL of the same fields, on the same connection (Redis runs
one connection's commands in order, so it comes after the HSET if that ever
runs), waited for up to the timeout again.  An add Redis refused (an error
reply) stored nothing and fails at once.  Deletes that fail, and withdrawals
not answered in time, are kept and retried with backoff until they succeed
(L{DeleteRetries}).
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple, cast

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gearman_tw.errors import QueueError, describeFailure
from gearman_tw.interfaces import ILease, IPersistentQueue
from gearman_tw.queues import DeleteRetries, QueuedJob
from gearman_tw.queues.records import decodeRecords, encodeRecords

#: Seconds a Redis command may take before the job server gives up on it.
DEFAULT_TIMEOUT = 10.0

#: Attempts at most to withdraw an add whose connection was lost (each
#: waits for the next connection, within the timeout).
WITHDRAW_ATTEMPTS = 20

#: Seconds between two attempts to withdraw an add.
WITHDRAW_PAUSE = 0.1

# Every script writing to a namespace starts with its fence: KEYS[1] is the
# namespace's lease and ARGV[1] this server's name as its holder, or empty
# when the queue is not fenced (no standby); a server that does not hold
# the lease writes nothing.  The script's own keys and arguments follow.
_FENCE = b"""
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED this server does not hold the lease of the namespace')
end
"""

# KEYS[2] the jobs; field, record, field, record...: store them.
_ADD = (
    _FENCE
    + b"""
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 0
"""
)

# KEYS[2] a hash; fields: delete them.
_DELETE = (
    _FENCE
    + b"""
for i = 2, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
return 0
"""
)

# KEYS[2] the jobs; field, record, field, record...: rewrite the fields that
# exist.
_UPDATE = (
    _FENCE
    + b"""
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
return 0
"""
)

# KEYS[2] the jobs, KEYS[3] the kept records of one kind; how many job
# fields to delete (n), how many records to store (m), the n fields, m
# ident/value pairs, then the idents to delete.
_KEEP = (
    _FENCE
    + b"""
local n, m = tonumber(ARGV[2]), tonumber(ARGV[3])
local i = 4
for j = i, i + n - 1 do redis.call('HDEL', KEYS[2], ARGV[j]) end
i = i + n
for j = i, i + 2 * m - 1, 2 do redis.call('HSET', KEYS[3], ARGV[j], ARGV[j + 1]) end
i = i + 2 * m
for j = i, #ARGV do redis.call('HDEL', KEYS[3], ARGV[j]) end
return 0
"""
)

# KEYS[1] the lease, ARGV[1] the holder, ARGV[2] milliseconds: take it if
# nobody holds it, or extend it if ARGV[1] does; 1 if held after.
_TAKE_LEASE = b"""
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# The same, only if ARGV[1] holds it already.
_RENEW_LEASE = b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# Give it up, if ARGV[1] holds it.
_RELEASE_LEASE = b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


@implementer(IPersistentQueue)
class RedisQueue:
    """
    Background jobs kept in Redis.

    @ivar retries: the deletes (and withdrawals) that failed, retried until
        they succeed.
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
        """
        @raise QueueError: txredisapi is not installed.
        """
        try:
            import txredisapi  # noqa: F401 (only whether it is installed)
        except ImportError as e:
            raise QueueError("the Redis queue needs txredisapi: pip install txredisapi (%s)" % (e,)) from None
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
        self.leaseKey = namespace.encode("utf-8") + b":lease"
        # The holder name every write must hold the lease under, once a
        # lease was made (L{lease}); empty: writes are not fenced.
        self._fence = b""
        self._redis: Any = None
        # Adds under way (withdrawals included), and close() waiting for
        # them to end.
        self._adding = 0
        self._whenAdded: List[Deferred[None]] = []
        self.retries = DeleteRetries(reactor, self._retryDeletes, self.name)

    def _command(self, command: str, *args: Any, timeout: Optional[float] = None) -> Deferred[Any]:
        """
        Run one command; fails with Redis's or txredisapi's error, with
        C{defer.TimeoutError} past C{timeout} (the queue's by default), or
        with L{QueueError} if the queue is not open.
        """
        if self._redis is None:
            return Deferred.fromCoroutine(self._notOpen())
        d = self._redis.execute_command(command, *args)
        d.addTimeout(self.timeout if timeout is None else timeout, self.reactor)
        return d

    def _script(
        self, script: bytes, keys: List[bytes], arguments: List[bytes], timeout: Optional[float] = None
    ) -> Deferred[Any]:
        """
        Run a writing script behind this queue's fence (see L{lease}).
        """
        return self._command(
            "EVAL", script, len(keys) + 1, self.leaseKey, *keys, self._fence, *arguments, timeout=timeout
        )

    def _delete(self, key: bytes, fields: List[bytes], timeout: Optional[float] = None) -> Deferred[Any]:
        """
        Delete fields of a hash: one HDEL, or behind the fence.
        """
        if self._fence:
            return self._script(_DELETE, [key], fields, timeout)
        return self._command("HDEL", key, *fields, timeout=timeout)

    def lease(self, holder: bytes, ttl: float) -> "RedisLease":
        """
        The lease of this queue's namespace, for a server named C{holder}:
        from now on this queue writes only while C{holder} holds it (a
        script checks it with every write), so a server that lost it
        writes nothing (the fence of a standby; see
        L{gearman_tw.server.standby}).
        """
        self._fence = holder
        return RedisLease(self, holder, ttl)

    def _call(self, what: str, command: str, *args: Any) -> Deferred[Any]:
        d = self._command(command, *args)
        d.addErrback(self._error, what)
        return d

    async def _notOpen(self) -> None:
        raise QueueError("the Redis queue is not open")

    def _why(self, failure: Failure) -> str:
        if failure.check(QueueError):
            return failure.getErrorMessage()
        if failure.check(defer.TimeoutError):
            return "no answer from Redis within %g s" % (self.timeout,)
        return describeFailure(failure)

    def _error(self, failure: Failure, what: str) -> Failure:
        why = self._why(failure)
        self.log.error("Redis queue: {what} failed: {why}", what=what, why=why)
        return Failure(QueueError("redis %s: %s" % (what, why)))

    def open(self) -> Deferred[None]:
        """
        Connect (txredisapi reconnects by itself after) and check Redis
        answers.

        @return: fires when Redis has answered a PING, or fails with
            L{QueueError}: C{"cannot reach Redis at HOST:PORT: connection
            refused"} as soon as the connection is refused (txredisapi would
            retry until the timeout), or with what went wrong.
        """
        if self._redis is not None:
            # Opened already (to take a standby's lease).
            return defer.succeed(None)
        return Deferred.fromCoroutine(self._open())

    async def _open(self) -> None:
        import txredisapi
        from twisted.internet.endpoints import HostnameEndpoint
        from twisted.internet.protocol import Factory, Protocol

        where = "%s:%d" % (self.host, self.port)
        # One connection of our own first: txredisapi retries a refused one
        # quietly, so the PING below would only time out.
        endpoint = HostnameEndpoint(self.reactor, self.host, self.port, timeout=self.timeout)
        factory = Factory.forProtocol(Protocol)
        factory.noisy = False
        connecting = endpoint.connect(factory)
        connecting.addTimeout(self.timeout, self.reactor)
        try:
            # Made by the factory above.
            probe = cast(Protocol, await connecting)
        except Exception:
            raise QueueError("cannot reach Redis at %s: %s" % (where, self._why(Failure()))) from None
        if probe.transport is not None:
            probe.transport.loseConnection()
        self._redis = txredisapi.lazyConnection(
            self.host,
            self.port,
            dbid=self.database,
            reconnect=True,
            charset=None,
            password=self.password,
            convertNumbers=False,
        )
        try:
            await self._command("PING")
        except Exception:
            raise QueueError("cannot use Redis at %s: %s" % (where, self._why(Failure()))) from None

    def close(self) -> Deferred[None]:
        """
        Wait for the adds under way (and their withdrawals), retry the
        deletes that failed once more, and disconnect.
        """
        return Deferred.fromCoroutine(self._close())

    async def _close(self) -> None:
        if self._adding:
            # Each add ends within twice the timeout.
            waiter: Deferred[None] = Deferred()
            self._whenAdded.append(waiter)
            await waiter
        await self.retries.close()
        redis, self._redis = self._redis, None
        if redis is not None:
            try:
                await redis.disconnect()
            except Exception:
                pass

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
        self._adding += 1
        if self._fence:
            d = self._script(_ADD, [self.key], arguments)
        else:
            d = self._command("HSET", self.key, *arguments)
        d.addCallbacks(lambda _: None, self._addFailed, errbackArgs=(arguments[0::2],))
        d.addBoth(self._added)
        return d

    def _added(self, result: object) -> object:
        self._adding -= 1
        if not self._adding:
            waiters, self._whenAdded = self._whenAdded, []
            for waiter in waiters:
                waiter.callback(None)
        return result

    def _addFailed(self, failure: Failure, fields: List[bytes]) -> Any:
        """
        Fail an add, withdrawing it first unless Redis refused it.
        """
        import txredisapi

        if failure.check(txredisapi.ResponseError, QueueError):
            # Redis refused it (HSET is atomic), or it was never sent.
            return self._error(failure, "add")
        return Deferred.fromCoroutine(self._withdraw(fields, self._why(failure)))

    async def _withdraw(self, fields: List[bytes], why: str) -> None:
        """
        Delete the fields of an add that may have been stored, then raise
        L{QueueError} with C{why}.  Waits up to the timeout for Redis to
        answer the HDEL, sent again on the next connection if the
        connection is lost; if it does not answer, the delete is kept for
        retrying.
        """
        import txredisapi

        deadline = self.reactor.seconds() + self.timeout
        withdrawn = False
        for _ in range(WITHDRAW_ATTEMPTS):
            remaining = deadline - self.reactor.seconds()
            if remaining <= 0:
                break
            try:
                await self._delete(self.key, fields, timeout=remaining)
            except txredisapi.ConnectionError:
                # Lost with its connection (before or after the HSET ran):
                # again on the next one.
                await deferLater(self.reactor, WITHDRAW_PAUSE, lambda: None)
                continue
            except Exception:
                break
            withdrawn = True
            break
        if withdrawn:
            self.log.error("Redis queue: add failed: {why}; withdrawn, not stored", why=why)
        else:
            self.retries.keep(list(fields), len(fields))
            self.log.error(
                "Redis queue: add failed: {why}; its withdrawal did not succeed within {timeout} s either, and"
                " is retried: until it succeeds, these {count} jobs may be stored (and run after a restart)",
                why=why,
                timeout=self.timeout,
                count=len(fields),
            )
        raise QueueError("redis add: %s" % (why,))

    def done(self, key: int) -> Deferred[None]:
        return self.doneMany([key])

    def doneMany(self, keys: List[int]) -> Deferred[None]:
        """
        One HDEL of every key; a delete that fails is kept and retried
        until it succeeds.
        """
        fields = [b"%d" % (key,) for key in keys]
        d = self._delete(self.key, fields)
        d.addErrback(self._error, "done")
        d.addCallbacks(lambda _: None, self._keepDeletes, errbackArgs=(fields,))
        return d

    def _keepDeletes(self, failure: Failure, fields: List[bytes]) -> Failure:
        self.retries.keep(fields, len(fields))
        return failure

    def _retryDeletes(self, fields: List[bytes]) -> Deferred[None]:
        """
        Delete kept fields again, with one HDEL (for L{DeleteRetries}).
        """
        d = self._delete(self.key, fields)
        d.addCallbacks(lambda _: None, lambda f: Failure(QueueError(self._why(f))))
        return d

    def update(self, jobs: List[QueuedJob]) -> Deferred[None]:
        """
        Rewrite the jobs' records that are still stored, in one script.
        """
        if not jobs:
            return defer.succeed(None)
        arguments: List[bytes] = []
        for job in jobs:
            arguments.append(b"%d" % (job.key,))
            arguments.append(encodeRecords([job]))
        d = self._script(_UPDATE, [self.key], arguments)
        d.addErrback(self._error, "update")
        d.addCallback(lambda _: None)
        return d

    def keep(
        self, kind: bytes, records: List[Tuple[bytes, bytes]], done: List[int], dropped: List[bytes]
    ) -> Deferred[None]:
        """
        Change the records of C{kind} and forget the jobs under C{done}, in
        one script.  If it fails (even without an answer) the change was
        made whole or not at all; either way it is not retried.
        """
        arguments: List[bytes] = [b"%d" % (len(done),), b"%d" % (len(records),)]
        arguments.extend(b"%d" % (key,) for key in done)
        for ident, value in records:
            arguments.append(ident)
            arguments.append(value)
        arguments.extend(dropped)
        d = self._script(_KEEP, [self.key, self._kept(kind)], arguments)
        d.addErrback(self._error, "keep")
        d.addCallback(lambda _: None)
        return d

    def kept(self, kind: bytes) -> Deferred[List[Tuple[bytes, bytes]]]:
        """
        Fire with the records of C{kind}.
        """
        d = self._call("kept", "HGETALL", self._kept(kind))
        d.addCallback(_pairs)
        return d

    def _kept(self, kind: bytes) -> bytes:
        return self.key[: -len(b"jobs")] + b"kept:" + bytes(kind)

    def replay(self) -> Deferred[List[QueuedJob]]:
        d = self._call("replay", "HVALS", self.key)
        d.addCallback(self._replayed)
        return d

    def _replayed(self, values: List[bytes]) -> List[QueuedJob]:
        jobs = [job for value in values or [] for job in decodeRecords(bytes(value))]
        return sorted(jobs, key=lambda job: job.key)


def _pairs(reply: Any) -> List[Tuple[bytes, bytes]]:
    """
    The (field, value) pairs of an HGETALL reply (a flat list, or a dict).
    """
    if isinstance(reply, dict):
        return [(bytes(field), bytes(value)) for field, value in reply.items()]
    items = list(reply or [])
    return [(bytes(items[i]), bytes(items[i + 1])) for i in range(0, len(items) - 1, 2)]


@implementer(ILease)
class RedisLease:
    """
    The right to serve a namespace, for one server: a key
    (C{<namespace>:lease}) holding the server's name, which expires
    C{ttl} seconds after it was last taken or renewed, by Redis's clock.

    @ivar ttl: seconds the lease lasts without a renewal.
    """

    def __init__(self, queue: RedisQueue, holder: bytes, ttl: float) -> None:
        self.queue = queue
        self.holder = holder
        self.ttl = ttl

    def _run(self, script: bytes) -> Deferred[bool]:
        d = self.queue._command(
            "EVAL", script, 1, self.queue.leaseKey, self.holder, b"%d" % (max(1, int(self.ttl * 1000)),)
        )
        d.addCallbacks(lambda held: bool(int(held)), self.queue._error, errbackArgs=("lease",))
        return d

    def acquire(self) -> Deferred[bool]:
        """
        Take the lease if nobody holds it (or extend it if this server
        does); fires with whether this server holds it now.  Opens the
        queue first if needed.
        """
        d: Deferred[Any] = self.queue.open()
        d.addCallback(lambda _: self._run(_TAKE_LEASE))
        return d

    def renew(self) -> Deferred[bool]:
        """
        Extend the lease if this server holds it; fires with whether it
        does.
        """
        return self._run(_RENEW_LEASE)

    def release(self) -> Deferred[None]:
        """
        Give the lease up, if this server holds it, so that a standby takes
        over at once.
        """
        d = self.queue._command("EVAL", _RELEASE_LEASE, 1, self.queue.leaseKey, self.holder)
        d.addCallbacks(lambda _: None, self.queue._error, errbackArgs=("lease",))
        return d
