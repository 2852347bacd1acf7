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

Redis Sentinel (L{RedisQueue.fromSentinelURL}, C{redis+sentinel://}): the
queue asks the sentinels for the master of a service, connects to it (a
server that is not a master, by C{ROLE}, is dropped), and after a failover
reconnects to the master they name then, through txredisapi's
C{Sentinel.master_for}.  Replication is asynchronous, so a failover loses
the writes the promoted replica had not received yet.  So with C{replicas}
set (1 by default with Sentinel) every add, keep, withdrawal and lease
write is followed by C{WAIT replicas timeout}, sent in the same reactor
turn (so on the same, single, connection, where Redis runs it after the
write), and counts only if that many replicas have it: an add they did
not acknowledge in time fails with L{QueueError}, withdrawn first as
above.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, cast
from urllib.parse import parse_qs, unquote

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gearman_tw.errors import QueueError, describeFailure
from gearman_tw.interfaces import ILease, IPersistentQueue
from gearman_tw.queues import DeleteRetries, QueuedJob
from gearman_tw.queues.records import HEADER, decodeRecords, encodeRecord

#: Seconds a Redis command may take before the job server gives up on it.
DEFAULT_TIMEOUT = 10.0

#: Attempts at most to withdraw an add whose connection was lost (each
#: waits for the next connection, within the timeout).
WITHDRAW_ATTEMPTS = 20

#: Seconds between two attempts to withdraw an add.
WITHDRAW_PAUSE = 0.1

#: The port of a Redis Sentinel named without one.
SENTINEL_PORT = 26379

#: Replicas that must have a write before it counts, by default with
#: Sentinel (without, 0).
DEFAULT_REPLICAS = 1

#: Seconds Redis waits for the replicas to acknowledge a write (C{WAIT}),
#: by default.
DEFAULT_REPLICA_TIMEOUT = 1.0

#: With Sentinel, the longest pause (seconds) between two attempts to reach
#: the master after a connection to it was lost, the time the sentinels
#: have to answer on each attempt, and the connect timeout.
SENTINEL_RETRY = 0.5

#: The parameters a C{redis+sentinel://} URL may have.
_SENTINEL_PARAMETERS = ("namespace", "replicas", "replica_timeout", "timeout", "sentinel_password")

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


class Encoded:
    """
    A Redis command encoded beforehand, for the connections of this module
    (L{_buildCommand}): txredisapi encodes a command argument by argument,
    which made encoding most of the cost of storing a batch of jobs.

    @ivar command: the command as Redis reads it (RESP).
    """

    __slots__ = ("command",)

    def __init__(self, head: Sequence[bytes], body: bytes = b"", count: int = 0) -> None:
        """
        @param head: the command's first arguments.
        @param body: its further arguments, encoded (see L{_encodeFields}).
        @param count: how many arguments C{body} holds.
        """
        self.command = b"".join(
            [b"*%d\r\n" % (len(head) + count,)] + [b"$%d\r\n%s\r\n" % (len(value), value) for value in head] + [body]
        )


#: How an argument of each small length starts.
_STARTS = [b"$%d\r\n" % (n,) for n in range(32)]

#: How an argument of each length up to 8 KiB starts after the one before.
_NEXT_STARTS = [b"\r\n$%d\r\n" % (n,) for n in range(8192)]


def _encodeFields(jobs: Sequence[QueuedJob]) -> bytes:
    """
    The field (key) and record of each job, as the arguments of a Redis
    command.  (The hottest code of a Redis queue: the record of a job never
    attempted, which is most, is its L{HEADER} and its fields, written here
    as parts of one join; L{encodeRecord} writes the others.)
    """
    parts: List[bytes] = []
    extend = parts.extend
    pack = HEADER.pack
    starts, nextStarts = _STARTS, _NEXT_STARTS
    for job in jobs:
        function, key, unique, data, priority, when, attempts, due = job
        field = b"%d" % (key,)
        if attempts or due:
            record = encodeRecord(job)
            extend((starts[len(field)], field, b"\r\n$%d\r\n" % (len(record),), record, b"\r\n"))
            continue
        size = HEADER.size + len(function) + len(unique) + len(data)
        extend(
            (
                starts[len(field)],
                field,
                nextStarts[size] if size < 8192 else b"\r\n$%d\r\n" % (size,),
                pack(key, priority, when, len(function), len(unique), len(data)),
                function,
                unique,
                data,
                b"\r\n",
            )
        )
    return b"".join(parts)


def _buildCommand(protocol: Any, build: Callable[..., bytes], *args: Any, **kwargs: Any) -> bytes:
    """
    What a connection of this module sends for C{args}: an L{Encoded}
    command as it is, others as txredisapi encodes them (C{build}).
    """
    if len(args) == 1 and args[0].__class__ is Encoded:
        command: bytes = args[0].command
        return command
    return build(protocol, *args, **kwargs)


@implementer(IPersistentQueue)
class RedisQueue:
    """
    Background jobs kept in Redis.

    @ivar retries: the deletes (and withdrawals) that failed, retried until
        they succeed.
    @ivar sentinels: the (host, port) of the Redis Sentinels to ask for the
        master, or None to connect to C{host} and C{port}.
    @ivar service: the name the sentinels know the master by.
    @ivar replicas: how many replicas must acknowledge a write (C{WAIT})
        before it counts; 0 for none.
    @ivar replicaTimeout: seconds Redis waits for them.
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
        sentinels: Optional[Sequence[Tuple[str, int]]] = None,
        service: str = "",
        replicas: Optional[int] = None,
        replicaTimeout: float = DEFAULT_REPLICA_TIMEOUT,
        sentinelPassword: Optional[str] = None,
    ) -> None:
        """
        @param sentinels: ask these Redis Sentinels for the master of
            C{service} (and again after each lost connection) instead of
            connecting to C{host} and C{port}.
        @param replicas: how many replicas must acknowledge each add, keep,
            withdrawal and lease write; L{DEFAULT_REPLICAS} with
            C{sentinels}, else 0.
        @param replicaTimeout: seconds Redis waits for them (C{WAIT});
            less than C{timeout}.
        @param sentinelPassword: the sentinels' own password, if they have
            one (C{password} is the master's).
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
        self.sentinels = None if sentinels is None else list(sentinels)
        self.service = service
        self.replicas = (DEFAULT_REPLICAS if sentinels else 0) if replicas is None else replicas
        self.replicaTimeout = replicaTimeout
        self.sentinelPassword = sentinelPassword
        self._sentinel: Any = None
        # The questions to the sentinels whose answers have not come yet.
        self._asking: Dict[Any, Deferred[Any]] = {}
        # The last reason a connection to the master named by the
        # sentinels was dropped before it could be used.
        self._problem: Optional[str] = None
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

    @classmethod
    def fromSentinelURL(cls, url: str, reactor: Any = None) -> "RedisQueue":
        """
        The queue a URL names:
        C{redis+sentinel://[:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB]},
        the sentinels (port 26379 by default; IPv6 addresses in brackets),
        the name they monitor the master by, and its database (0), with
        optional C{?namespace=NAME} (C{gearman}), C{replicas=N} (1; 0 waits
        for none), C{replica_timeout=SECONDS} (1, less than the timeout),
        C{timeout=SECONDS} (10) and C{sentinel_password=PASSWORD}.  The
        password (the master's and its replicas') and the service are
        percent-decoded.

        @raise QueueError: the URL is not one, with a one-line reason.
        """
        prefix = "redis+sentinel://"
        if not url.startswith(prefix):
            raise QueueError("redis+sentinel: the URL must start with %s" % (prefix,))
        rest, hash, _ = url[len(prefix) :].partition("#")
        if hash:
            raise QueueError("redis+sentinel: the URL must not have a #fragment")
        rest, _, queryText = rest.partition("?")
        netloc, _, path = rest.partition("/")
        userinfo, at, hosts = netloc.rpartition("@")
        password = None
        if at:
            user, colon, secret = userinfo.partition(":")
            if user or not colon:
                raise QueueError("redis+sentinel: give the password as :PASSWORD@ (user names are not supported)")
            password = unquote(secret)
        sentinels = [_sentinelAddress(address) for address in hosts.split(",")]
        parts = [unquote(part) for part in path.split("/")] if path else []
        if not parts or not parts[0]:
            raise QueueError(
                "redis+sentinel: the URL must name the master's service after the sentinels, e.g."
                " redis+sentinel://sentinel1:26379,sentinel2:26379/mymaster/0"
            )
        if len(parts) > 2 or (len(parts) == 2 and parts[1] and not parts[1].isdigit()):
            raise QueueError("redis+sentinel: the path must be /SERVICE or /SERVICE/DB, the database a number")
        database = int(parts[1]) if len(parts) == 2 and parts[1] else 0
        try:
            query = parse_qs(queryText, keep_blank_values=True, strict_parsing=bool(queryText))
        except ValueError as e:
            raise QueueError("redis+sentinel: bad query in the URL: %s" % (e,)) from None
        for name, values in query.items():
            if name not in _SENTINEL_PARAMETERS:
                raise QueueError(
                    "redis+sentinel: unknown URL parameter %r (known: %s)" % (name, ", ".join(_SENTINEL_PARAMETERS))
                )
            if len(values) != 1:
                raise QueueError("redis+sentinel: URL parameter %r given %d times" % (name, len(values)))
        options = {name: values[0] for name, values in query.items()}
        replicas = options.get("replicas", str(DEFAULT_REPLICAS))
        if not replicas.isdigit():
            raise QueueError("redis+sentinel: replicas must be a whole number, not %r" % (replicas,))
        timeout = _seconds(options, "timeout", DEFAULT_TIMEOUT)
        replicaTimeout = _seconds(options, "replica_timeout", DEFAULT_REPLICA_TIMEOUT)
        if replicaTimeout >= timeout:
            raise QueueError(
                "redis+sentinel: replica_timeout (%g s) must be less than timeout (%g s)" % (replicaTimeout, timeout)
            )
        namespace = options.get("namespace", "gearman")
        if not namespace:
            raise QueueError("redis+sentinel: the namespace must not be empty")
        return cls(
            database=database,
            password=password,
            namespace=namespace,
            reactor=reactor,
            timeout=timeout,
            sentinels=sentinels,
            service=parts[0],
            replicas=int(replicas),
            replicaTimeout=replicaTimeout,
            sentinelPassword=options.get("sentinel_password") or None,
        )

    def _command(self, command: "str | Encoded", *args: Any, timeout: Optional[float] = None) -> Deferred[Any]:
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

    def _replicated(self, write: Deferred[Any], timeout: Optional[float] = None) -> Deferred[Any]:
        """
        Confirm a write with C{WAIT}, if this queue waits for replicas.

        Call it in the reactor turn that sent C{write}: the C{WAIT} then
        goes out on the same connection (the only one), right after it, and
        Redis runs it after the write.  (Sent later, after a lost
        connection, it would go to another connection, maybe another
        master, and count the replicas of nothing.)

        @return: fires with C{write}'s result once L{replicas} replicas
            have acknowledged it; fails as C{write} did, or, if C{write}
            succeeded, with L{_NotReplicated} when fewer replicas
            acknowledged it within L{replicaTimeout} or the C{WAIT} failed.
        """
        if not self.replicas:
            return write
        milliseconds = max(1, int(self.replicaTimeout * 1000))
        waited = self._command("WAIT", b"%d" % (self.replicas,), b"%d" % (milliseconds,), timeout=timeout)
        return Deferred.fromCoroutine(self._confirm(write, waited))

    async def _confirm(self, write: Deferred[Any], waited: Deferred[Any]) -> Any:
        try:
            result = await write
        except Exception:
            waited.addErrback(lambda _: None)
            raise
        try:
            count = int(await waited)
        except Exception:
            raise _NotReplicated("could not wait for %d replicas: %s" % (self.replicas, self._why(Failure()))) from None
        if count < self.replicas:
            raise _NotReplicated(
                "only %d of %d replicas acknowledged it within %g s" % (count, self.replicas, self.replicaTimeout)
            )
        return result

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
            retry until the timeout), C{"cannot reach any Redis Sentinel at
            ..."} as soon as every sentinel refuses, C{"no Redis Sentinel at
            ... named a master ..."} once they all answered (or after the
            timeout), or with what went wrong.
        """
        if self._redis is not None:
            # Opened already (to take a standby's lease).
            return defer.succeed(None)
        return Deferred.fromCoroutine(self._open())

    async def _open(self) -> None:
        if self.sentinels is None:
            await self._openDirect()
        else:
            try:
                await self._openSentinel(self.sentinels)
            except BaseException:
                await self._disconnect()
                raise
        if self.replicas:
            await self._checkReplicas()

    async def _probe(self, host: str, port: int) -> None:
        """
        Connect to C{host} and C{port} and hang up; fail with why not.
        """
        from twisted.internet.endpoints import HostnameEndpoint
        from twisted.internet.protocol import Factory, Protocol

        endpoint = HostnameEndpoint(self.reactor, host, port, timeout=self.timeout)
        factory = Factory.forProtocol(Protocol)
        factory.noisy = False
        connecting = endpoint.connect(factory)
        connecting.addTimeout(self.timeout, self.reactor)
        # Made by the factory above.
        probe = cast(Protocol, await connecting)
        if probe.transport is not None:
            probe.transport.loseConnection()

    async def _openDirect(self) -> None:
        import txredisapi
        from twisted.internet.endpoints import HostnameEndpoint

        where = _hostPort(self.host, self.port)
        # One connection of our own first: txredisapi retries a refused one
        # quietly, so the PING below would only time out.
        try:
            await self._probe(self.host, self.port)
        except Exception:
            raise QueueError("cannot reach Redis at %s: %s" % (where, self._why(Failure()))) from None
        # As txredisapi.lazyConnection makes it, with this module's
        # connections (L{Encoded}).
        factory = _queueFactory(txredisapi)(
            where,
            self.database,
            1,
            isLazy=True,
            handler=txredisapi.ConnectionHandler,
            charset=None,
            password=self.password,
            convertNumbers=False,
        )
        factory.reconnect = True
        factory.startConnecting(HostnameEndpoint(self.reactor, self.host, self.port))
        self._redis = factory.handler
        try:
            await self._command("PING")
        except Exception:
            raise QueueError("cannot use Redis at %s: %s" % (where, self._why(Failure()))) from None

    async def _openSentinel(self, addresses: List[Tuple[str, int]]) -> None:
        """
        Ask the sentinels for the master, connect to it through
        C{Sentinel.master_for} and check it answers.
        """
        import txredisapi

        sentinels = ", ".join(_hostPort(host, port) for host, port in addresses)
        # One connection of our own to each first, as for a single Redis.
        probes = [Deferred.fromCoroutine(self._probe(host, port)) for host, port in addresses]
        reached = await defer.DeferredList(probes, fireOnOneCallback=True, consumeErrors=True)
        for probe in probes:
            # One is enough.
            probe.cancel()
        if isinstance(reached, list):
            reasons = sorted({self._why(failure) for _, failure in reached})
            raise QueueError("cannot reach any Redis Sentinel at %s: %s" % (sentinels, ", ".join(reasons)))
        options = {} if self.sentinelPassword is None else {"password": self.sentinelPassword}
        sentinel = _sentinelsClass(txredisapi, self._asking, self.reactor)(addresses, **options)
        self._sentinel = sentinel
        sentinel.discovery_timeout = self.timeout
        try:
            host, port = await sentinel.discover_master(self.service)
        except txredisapi.MasterNotFoundError:
            raise QueueError(
                "no Redis Sentinel at %s named a master %r that is up (asked for up to %g s)"
                % (sentinels, self.service, self.timeout)
            ) from None
        finally:
            # From now on, for each attempt to reconnect.
            sentinel.discovery_timeout = SENTINEL_RETRY
        self._redis = sentinel.master_for(
            self.service,
            factory_class=_masterFactory(txredisapi, self._dropped),
            dbid=self.database,
            password=self.password,
            charset=None,
            convertNumbers=False,
            isLazy=True,
        )
        try:
            await self._command("PING")
        except Exception:
            why = self._why(Failure())
            if self._problem is not None:
                why += " (%s)" % (self._problem,)
            raise QueueError(
                "cannot use Redis at %s, the master of %r: %s" % (_hostPort(host, port), self.service, why)
            ) from None

    def _dropped(self, why: str) -> None:
        """
        A connection to the master the sentinels named was dropped before
        it could be used (not a master, refused password, ...).
        """
        if why != self._problem:
            self.log.warn("Redis queue: {why}; trying again", why=why)
        self._problem = why

    async def _checkReplicas(self) -> None:
        """
        Warn if the master has fewer replicas than every write waits for.
        """
        try:
            role = await self._command("ROLE")
            connected = len(role[2]) if bytes(role[0]) == b"master" else 0
        except Exception:
            return
        if connected < self.replicas:
            self.log.warn(
                "Redis queue: the master has {connected} replicas connected, and every add waits for"
                " {replicas} of them: adds fail until enough are connected",
                connected=connected,
                replicas=self.replicas,
            )

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
        await self._disconnect()

    async def _disconnect(self) -> None:
        """
        Close the connection to Redis and those to the sentinels.
        """
        redis, self._redis = self._redis, None
        sentinel, self._sentinel = self._sentinel, None
        # txredisapi reads a reply over several reactor turns, and goes on
        # after its connection is closed: let the sentinels' answers under
        # way arrive first (those of a sentinel that is down never do).
        for _ in range(int(SENTINEL_RETRY / WITHDRAW_PAUSE)):
            if not self._asking:
                break
            await deferLater(self.reactor, WITHDRAW_PAUSE, lambda: None)
        for connection in (redis, sentinel):
            if connection is not None:
                try:
                    await connection.disconnect()
                except Exception:
                    pass

    # IPersistentQueue types records as object (interfaces.py does not
    # import QueuedJob).
    def add(self, job: QueuedJob) -> Deferred[None]:
        return self.addMany([job])

    def addMany(self, jobs: Sequence[QueuedJob]) -> Deferred[None]:
        """
        One HSET of every job (through a script behind the fence, if the
        queue is fenced): atomic, and one round trip.  Encoded here, not
        by txredisapi (L{Encoded}), at a third of the cost.
        """
        body = _encodeFields(jobs)
        self._adding += 1
        if self._fence:
            head = [b"EVAL", _ADD, b"2", self.leaseKey, self.key, self._fence]
        else:
            head = [b"HSET", self.key]
        d = self._command(Encoded(head, body, 2 * len(jobs)))
        d = self._replicated(d)
        d.addCallbacks(lambda _: None, self._addFailed, errbackArgs=(jobs,))
        d.addBoth(self._added)
        return d

    def _added(self, result: object) -> object:
        self._adding -= 1
        if not self._adding:
            waiters, self._whenAdded = self._whenAdded, []
            for waiter in waiters:
                waiter.callback(None)
        return result

    def _addFailed(self, failure: Failure, jobs: Sequence[QueuedJob]) -> Any:
        """
        Fail an add, withdrawing it first unless Redis refused it.
        """
        import txredisapi

        if failure.check(txredisapi.ResponseError, QueueError):
            # Redis refused it (HSET is atomic), or it was never sent.
            return self._error(failure, "add")
        fields = [b"%d" % (job.key,) for job in jobs]
        return Deferred.fromCoroutine(self._withdraw(fields, self._why(failure)))

    async def _withdraw(self, fields: List[bytes], why: str) -> None:
        """
        Delete the fields of an add that may have been stored, then raise
        L{QueueError} with C{why}.  Waits up to the timeout for Redis to
        answer the HDEL, sent again on the next connection if the
        connection is lost; if it does not answer, the delete is kept for
        retrying.  If the queue waits for replicas, so does the HDEL, and
        one they did not acknowledge is kept for retrying too (a failover
        could bring the add back).
        """
        import txredisapi

        deadline = self.reactor.seconds() + self.timeout
        withdrawn = False
        unreplicated: Optional[str] = None
        for _ in range(WITHDRAW_ATTEMPTS):
            remaining = deadline - self.reactor.seconds()
            if remaining <= 0:
                break
            try:
                await self._replicated(self._delete(self.key, fields, timeout=remaining), timeout=remaining)
            except txredisapi.ConnectionError:
                # Lost with its connection (before or after the HSET ran):
                # again on the next one.
                await deferLater(self.reactor, WITHDRAW_PAUSE, lambda: None)
                continue
            except _NotReplicated as e:
                unreplicated = str(e)
                break
            except Exception:
                break
            withdrawn = True
            break
        if withdrawn:
            self.log.error("Redis queue: add failed: {why}; withdrawn, not stored", why=why)
        elif unreplicated is not None:
            self.retries.keep(list(fields), len(fields))
            self.log.error(
                "Redis queue: add failed: {why}; withdrawn from the master, but the replicas did not confirm"
                " it ({unreplicated}): retried until they do, and until then a failover may bring back these"
                " {count} jobs",
                why=why,
                unreplicated=unreplicated,
                count=len(fields),
            )
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
        Delete kept fields again, with one HDEL (for L{DeleteRetries}),
        acknowledged by the replicas if the queue waits for them.
        """
        d = self._replicated(self._delete(self.key, fields))
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
            arguments.append(encodeRecord(job))
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
        d = self._replicated(self._script(_KEEP, [self.key, self._kept(kind)], arguments))
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


class _NotReplicated(Exception):
    """
    A write Redis made that fewer replicas than the queue waits for
    acknowledged (or whose C{WAIT} failed).
    """


def _hostPort(host: str, port: int) -> str:
    """
    C{host:port}, with an IPv6 address in brackets.
    """
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def _sentinelAddress(text: str) -> Tuple[str, int]:
    """
    The (host, port) of C{HOST[:PORT]} or C{[IPV6][:PORT]} in a
    C{redis+sentinel://} URL.

    @raise QueueError: it is not one.
    """
    if text.startswith("["):
        host, bracket, after = text[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise QueueError("redis+sentinel: bad sentinel address %r" % (text,))
        portText = after[1:]
    else:
        host, _, portText = text.partition(":")
    if not host:
        raise QueueError("redis+sentinel: the URL must name the sentinels, HOST:PORT separated by commas")
    if not portText:
        return host, SENTINEL_PORT
    if not portText.isdigit() or not 0 < int(portText) < 65536:
        raise QueueError("redis+sentinel: bad port in the sentinel address %r" % (text,))
    return host, int(portText)


def _seconds(options: Any, name: str, default: float) -> float:
    """
    The positive number of seconds of URL parameter C{name}, or C{default}.

    @raise QueueError: it is not one.
    """
    if name not in options:
        return default
    try:
        value = float(options[name])
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise QueueError("redis+sentinel: %s must be a positive number of seconds, not %r" % (name, options[name]))
    return value


def _sentinelsClass(txredisapi: Any, asking: Dict[Any, Deferred[Any]], clock: Any) -> Any:
    """
    txredisapi's C{Sentinel}, but finding the master fails as soon as every
    sentinel asked has answered without naming one that is up (not only
    after C{discovery_timeout}), so that reconnecting during a failover
    asks again soon; a sentinel that has not answered the last question
    (C{SENTINEL MASTERS}) is not asked another, so that questions do not
    pile up while one is down; and the questions are kept in C{asking}, by
    sentinel, until answered.

    @param clock: the reactor, for C{discovery_timeout}.
    """

    class Sentinels(txredisapi.Sentinel):
        def discover_master(self, service_name: str) -> Deferred[Tuple[str, int]]:
            result: Deferred[Tuple[str, int]] = Deferred()
            asked = [sentinel for sentinel in self.sentinels if sentinel not in asking]
            answers = []

            def answered(response: Any) -> None:
                state = response.get(service_name)
                if not result.called and state and self.check_master_state(state):
                    result.callback((state["ip"], int(state["port"])))

            def counted(_: object, sentinel: Any) -> None:
                del asking[sentinel]
                answers.append(sentinel)
                if len(answers) == len(asked) and not result.called:
                    result.errback(txredisapi.MasterNotFoundError("No master found for %s" % (service_name,)))

            for sentinel in asked:
                question = sentinel.sentinel_masters()
                asking[sentinel] = question
                question.addCallbacks(answered, lambda _: None)
                question.addBoth(counted, sentinel)
            if not asked:
                result.errback(txredisapi.MasterNotFoundError("No sentinel answers"))
            if not result.called:
                timeout = clock.callLater(self.discovery_timeout, self._noAnswer, result, service_name)
                result.addBoth(_cancelling, timeout)
            return result

        def _noAnswer(self, result: Deferred[Tuple[str, int]], service_name: str) -> None:
            if not result.called:
                result.errback(txredisapi.MasterNotFoundError("No master found for %s" % (service_name,)))

    return Sentinels


def _cancelling(result: object, call: Any) -> object:
    """
    Cancel the delayed C{call} if it is still to come; pass C{result} on.
    """
    if call.active():
        call.cancel()
    return result


def _queueFactory(txredisapi: Any) -> Any:
    """
    The txredisapi connection factory of a queue on one Redis: its
    connections send L{Encoded} commands as they are.
    """

    class QueueProtocol(txredisapi.RedisProtocol):
        def _build_command(self, *args: Any, **kwargs: Any) -> bytes:
            return _buildCommand(self, txredisapi.RedisProtocol._build_command, *args, **kwargs)

    class QueueFactory(txredisapi.RedisFactory):
        protocol = QueueProtocol

    return QueueFactory


def _masterFactory(txredisapi: Any, dropped: Callable[[str], None]) -> Any:
    """
    The txredisapi connection factory for C{Sentinel.master_for}: its
    connections send L{Encoded} commands as they are, and check with
    C{ROLE} that they reached a master before they
    are used (txredisapi's own check compares the reply with a str, so
    with the bytes replies this queue asks for it drops every master, and
    it sends C{ROLE} without waiting for C{AUTH}), and it tries again at
    most L{SENTINEL_RETRY} seconds apart.

    @param dropped: called with why when a connection is dropped before
        use.
    """

    class MasterProtocol(txredisapi.SentinelRedisProtocol):
        def _build_command(self, *args: Any, **kwargs: Any) -> bytes:
            return _buildCommand(self, txredisapi.SentinelRedisProtocol._build_command, *args, **kwargs)

        def connectionMade(self) -> Deferred[None]:
            return Deferred.fromCoroutine(self._checkRole())

        async def _checkRole(self) -> None:
            peer = self.transport.getPeer()
            where = _hostPort(getattr(peer, "host", "?"), getattr(peer, "port", 0))
            try:
                if self.password is not None:
                    await self.auth(self.password, self.username)
                role = await self.role()
            except Exception as e:
                dropped("%s: %s" % (where, e))
                self.transport.loseConnection()
                return
            name = role[0] if isinstance(role[0], bytes) else str(role[0]).encode("utf-8")
            if name != b"master":
                dropped("%s is a %s, not a master" % (where, name.decode("utf-8", "replace")))
                self.transport.loseConnection()
                return
            await txredisapi.RedisProtocol.connectionMade(self)

    class MasterFactory(txredisapi.SentinelConnectionFactory):
        protocol = MasterProtocol
        maxDelay = SENTINEL_RETRY

        def connectionError(self, why: str) -> None:
            # txredisapi fails the Deferred of a lazy connection that nobody
            # waits for.
            dropped(why)
            if self.deferred:
                self.deferred.addErrback(lambda _: None)
            txredisapi.SentinelConnectionFactory.connectionError(self, why)

    return MasterFactory


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
        """
        Take or renew: it counts once the replicas the queue waits for
        have it, so that it survives a failover (else it fails).
        """
        d = self.queue._replicated(
            self.queue._command(
                "EVAL", script, 1, self.queue.leaseKey, self.holder, b"%d" % (max(1, int(self.ttl * 1000)),)
            )
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
