# -*- test-case-name: tests.test_client -*-
"""
A Deferred-based Gearman client.

L{GearmanClient} is a service that keeps connections to one or more job
servers and submits jobs to them; each submission is a L{Task} whose
C{result} Deferred fires with the job's WORK_COMPLETE data, or fails with
L{JobFailed}, L{JobException}, L{ServerError}, L{ServerUnavailable} or
L{JobTimeout}.

    client = GearmanClient(["127.0.0.1:4730"])
    client.startService()
    task = client.submit("reverse", b"hello")
    task.result.addCallback(print)        # b"olleh"

Arguments are checked before anything is queued or sent: a wrong type
raises C{TypeError} and a wrong value C{ValueError}, at once.  What the job
servers and workers do is reported through the Deferreds.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

from twisted.application.internet import backoffPolicy
from twisted.application.service import MultiService
from twisted.internet.defer import CancelledError, Deferred, DeferredList, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gearman_tw.admin import JobResult, connectAdmin
from gearman_tw.connection import DEFAULT_HEARTBEAT, DEFAULT_HEARTBEAT_TIMEOUT, JobServerConnection
from gearman_tw.endpoints import clientEndpoint
from gearman_tw.errors import (
    ConnectionLost,
    JobException,
    JobFailed,
    JobTimeout,
    ServerError,
    ServerUnavailable,
    describeJob,
)
from gearman_tw.interfaces import IGearmanClient
from gearman_tw.numbers import atoi
from gearman_tw.protocol import DEFAULT_MAX_PACKET_SIZE, MAX_ARGUMENT_SIZE, REQ, PacketType, Priority, encode
from gearman_tw.reconnect import Reconnector

HIGH, NORMAL, LOW = Priority.HIGH, Priority.NORMAL, Priority.LOW

# Submit packet type by (priority, background).
_SUBMIT_TYPES = {
    (HIGH, False): PacketType.SUBMIT_JOB_HIGH,
    (NORMAL, False): PacketType.SUBMIT_JOB,
    (LOW, False): PacketType.SUBMIT_JOB_LOW,
    (HIGH, True): PacketType.SUBMIT_JOB_HIGH_BG,
    (NORMAL, True): PacketType.SUBMIT_JOB_BG,
    (LOW, True): PacketType.SUBMIT_JOB_LOW_BG,
}

#: The longest unique key: gearmand refuses longer ones, and stores a
#: 64-byte key in 63 bytes (its job's data then arrives corrupted).
MAX_UNIQUE = 63

#: The longest unique key L{GearmanClient.getResult} asks about: what
#: gearman_tw's server keeps whole (its C{gearman_tw.server.model.MAX_UNIQUE}),
#: a byte more than a submission may have.
MAX_RESULT_UNIQUE = 64

#: The longest job handle a job server makes or is asked about: gearmand
#: drops a connection that asks about a longer one.
MAX_HANDLE = 63

#: The longest function name: gearmand drops a connection whose NUL-ended
#: argument does not fit in its 8 KiB buffer.
MAX_FUNCTION = MAX_ARGUMENT_SIZE - 1

#: The largest packet a submission may make by default: what gearman_tw's
#: server accepts (it drops a connection that sends a larger one, and with
#: it every job in flight there).
MAX_PACKET = DEFAULT_MAX_PACKET_SIZE

# Time limits are finite; epochs end with year 9999.
_FOREVER = 10.0**9
_LAST_EPOCH = 253402300799


class JobStatus(NamedTuple):
    """
    A job's status, as GET_STATUS reports it.
    """

    known: bool
    running: bool
    numerator: int
    denominator: int


class UniqueJobStatus(NamedTuple):
    """
    A job's status, as GET_STATUS_UNIQUE reports it: C{waiting} is the
    number of clients waiting for its result.
    """

    known: bool
    running: bool
    numerator: int
    denominator: int
    waiting: int


def _bytes(value: object, what: str, allowEmpty: bool = True) -> bytes:
    """
    C{value} as bytes (str is encoded as UTF-8).

    @raise TypeError: it is neither bytes nor str.
    @raise ValueError: it is empty and must not be.
    """
    if isinstance(value, str):
        try:
            result = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError("%s is not valid UTF-8 text: %s" % (what, e)) from None
    elif isinstance(value, (bytes, bytearray, memoryview)):
        result = bytes(value)
    else:
        raise TypeError("%s must be bytes or str, not %s" % (what, type(value).__name__))
    if not allowEmpty and not result:
        raise ValueError("%s must not be empty" % (what,))
    return result


def _argument(value: object, what: str, limit: int, allowEmpty: bool) -> bytes:
    """
    C{value} as a NUL-free packet argument of at most C{limit} bytes.
    """
    result = _bytes(value, what, allowEmpty)
    if b"\0" in result:
        raise ValueError("%s must not contain NUL bytes" % (what,))
    if len(result) > limit:
        raise ValueError("%s is %d bytes; at most %d are allowed" % (what, len(result), limit))
    return result


def _priority(value: object) -> Priority:
    if not isinstance(value, str):
        raise TypeError("priority must be HIGH, NORMAL or LOW, not %s" % (type(value).__name__,))
    try:
        return Priority(value)
    except ValueError:
        raise ValueError("priority must be high, normal or low, not %r" % (value,)) from None


def _seconds(value: object, what: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number of seconds or None, not %s" % (what, type(value).__name__))
    if not 0 < value < _FOREVER:
        raise ValueError("%s must be more than 0 seconds and finite, not %r" % (what, value))
    return float(value)


def _epoch(value: object) -> Optional[int]:
    if value is None:
        return None
    timestamp = getattr(value, "timestamp", None)
    if timestamp is not None and callable(timestamp):
        value = timestamp()  # a datetime
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("when must be epoch seconds or a datetime, not %s" % (type(value).__name__,))
    if not 0 <= value <= _LAST_EPOCH:
        raise ValueError("when must be epoch seconds from 1970 to 9999, not %r" % (value,))
    return int(value)


def _callback(value: object, what: str) -> Optional[Callable[..., object]]:
    if value is not None and not callable(value):
        raise TypeError("%s must be callable or None, not %s" % (what, type(value).__name__))
    return value  # type: ignore[return-value]


def deriveUnique(function: Union[bytes, str], data: Union[bytes, str]) -> bytes:
    """
    A unique key derived from a job's function and data, so that equal jobs
    coalesce on the server (and land on the same server of a pool).
    """
    digest = hashlib.sha256(_bytes(function, "function") + b"\0" + _bytes(data, "data")).hexdigest()
    return digest.encode("ascii")


class Task:
    """
    One job submitted by a L{GearmanClient}.

    @ivar function: the function name.
    @ivar data: the workload.
    @ivar unique: the unique key (empty for none).
    @ivar priority: L{HIGH}, L{NORMAL} or L{LOW}.
    @ivar background: whether the job runs detached from this client.
    @ivar when: for a background job, the epoch second before which it must
        not run, or L{None}.
    @ivar handle: the job handle, once the server has created the job.
    @ivar server: the server (host:port or endpoint description) it was last
        submitted to.
    @ivar attempts: how many times it was submitted (to a server each).
    @ivar numerator: the last WORK_STATUS numerator (and C{denominator}).
    @ivar result: fires with the WORK_COMPLETE data (for a background job:
        with the handle) or fails with L{JobFailed}, L{JobException},
        L{ServerError}, L{ServerUnavailable}, L{ConnectionLost} or
        L{JobTimeout}.  Cancelling it stops waiting: see
        L{GearmanClient.submit}.
    @ivar onData: called with each WORK_DATA payload, in order.
    @ivar onWarning: called with each WORK_WARNING payload.
    @ivar onStatus: called with C{(numerator, denominator)} for each
        WORK_STATUS.
    """

    log = Logger()

    def __init__(
        self,
        function: bytes,
        data: bytes,
        unique: bytes = b"",
        priority: Priority = NORMAL,
        background: bool = False,
        when: Optional[int] = None,
        onData: Optional[Callable[[bytes], object]] = None,
        onWarning: Optional[Callable[[bytes], object]] = None,
        onStatus: Optional[Callable[[int, int], object]] = None,
    ) -> None:
        self.function = function
        self.data = data
        self.unique = unique
        self.priority = priority
        self.background = background or when is not None
        self.when = when
        self.onData = onData
        self.onWarning = onWarning
        self.onStatus = onStatus
        self.handle: Optional[bytes] = None
        self.server: Optional[str] = None
        self.numerator = 0
        self.denominator = 0
        self.attempts = 0
        self.result: Deferred[bytes] = Deferred(self._cancel)
        self._createdWaiters: List[Deferred[bytes]] = []
        self._connection: Optional[GearmanClientProtocol] = None
        self._awaiting = False
        self._followers: List[Task] = []

    def __repr__(self) -> str:
        return "<Task %r handle=%r>" % (self.function, self.handle)

    @property
    def done(self) -> bool:
        """
        Whether the result is known (or no longer waited for).
        """
        return self.result.called

    def packet(self) -> bytes:
        """
        The submit packet for this task.
        """
        if self.when is not None:
            return encode(
                PacketType.SUBMIT_JOB_EPOCH,
                self.function,
                self.unique,
                b"%d" % (self.when,),
                self.data,
                magic=REQ,
            )
        ptype = _SUBMIT_TYPES[self.priority, self.background]
        return encode(ptype, self.function, self.unique, self.data, magic=REQ)

    def coalescingKey(self) -> Optional[Tuple[bytes, ...]]:
        """
        The key under which the server coalesces this task, or L{None}.
        """
        if not self.unique or self.background:
            return None
        if self.unique == b"-":
            # Coalesced on the data, apart from explicit keys (a server
            # that joins the two anyway is followed: see _jobCreated).
            return (self.function, b"-", self.data) if self.data else None
        return (self.function, self.unique)

    def whenCreated(self) -> Deferred[bytes]:
        """
        A new Deferred that fires with the job handle once the server has
        created the job (also after C{result} was cancelled, if the server's
        answer still comes), or fails as C{result} did if it never will be.
        """
        if self.handle is not None:
            return succeed(self.handle)
        if self.result.called and not self._awaiting:
            return fail(ServerUnavailable("%s was never created" % (describeJob(None, self.function),)))
        d: Deferred[bytes] = Deferred()
        self._createdWaiters.append(d)
        return d

    def _name(self) -> str:
        return self.function.decode("utf-8", "replace")

    def _describe(self) -> str:
        """
        "job H:x:1 (reverse)", or "job (reverse)" before it has a handle.
        """
        return describeJob(self.handle, self.function)

    def _call(self, callback: Callable[..., object], what: str, *args: object) -> None:
        """
        Call a user's callback; its failure is logged, never propagated.
        """
        try:
            callback(*args)
        except Exception:
            self.log.failure(
                "{what} callback of job {handle} ({function}) raised",
                what=what,
                handle=(self.handle or b"").decode("ascii", "replace"),
                function=self._name(),
            )

    # Called by the connection.

    def _created(self, handle: bytes) -> None:
        self.handle = handle
        self._awaiting = False
        followers = list(self._followers)
        waiters, self._createdWaiters = self._createdWaiters, []
        for d in waiters:
            d.callback(handle)
        for follower in followers:
            if follower.handle is None:
                follower._created(handle)

    def _event(self, ptype: int, payload: Any) -> None:
        if ptype == PacketType.WORK_DATA:
            if self.onData is not None:
                self._call(self.onData, "onData", payload)
        elif ptype == PacketType.WORK_WARNING:
            if self.onWarning is not None:
                self._call(self.onWarning, "onWarning", payload)
        else:
            numerator, denominator = payload
            self.numerator, self.denominator = numerator, denominator
            if self.onStatus is not None:
                self._call(self.onStatus, "onStatus", numerator, denominator)
        for follower in list(self._followers):
            follower._event(ptype, payload)

    def _succeed(self, value: bytes) -> None:
        self._connection = None
        self._awaiting = False
        if not self.result.called:
            self.result.callback(value)
        for follower in list(self._followers):
            follower._succeed(value)

    def _abandon(self, failure: Union[Failure, Exception]) -> None:
        """
        The job will not be created (for this submission): fail whoever
        waits for its handle.
        """
        self._awaiting = False
        waiters, self._createdWaiters = self._createdWaiters, []
        for d in waiters:
            d.errback(failure)

    def _fail(self, failure: Union[Failure, Exception]) -> None:
        self._connection = None
        if self.handle is None:
            self._abandon(failure)
        if not self.result.called:
            self.result.errback(failure)
        for follower in list(self._followers):
            follower._fail(failure)

    def _cancel(self, result: Deferred[bytes]) -> None:
        connection = self._connection
        if connection is not None:
            connection.forget(self)
        self._connection = None


# Kinds of requests that the server answers in turn.
_SUBMIT, _ECHO, _OPTION, _STATUS, _STATUS_UNIQUE = range(5)


class GearmanClientProtocol(JobServerConnection):
    """
    One client connection to a job server.

    Replies are matched to requests by kind: JOB_CREATED and submit errors
    in submission order, ECHO_RES and OPTION_RES in order, STATUS_RES by
    handle; work packets by handle.

    @ivar orphans: once the connection is lost, the tasks it had not
        finished (for the owner to submit elsewhere); without an C{onLost}
        hook they fail with L{ConnectionLost} instead.
    """

    def __init__(
        self,
        exceptions: bool = True,
        clock: Optional[IReactorTime] = None,
        heartbeat: Optional[float] = DEFAULT_HEARTBEAT,
        heartbeatTimeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    ) -> None:
        super().__init__(clock, heartbeat, heartbeatTimeout)
        self._exceptions = exceptions
        self._awaitingCreated: Deque[Task] = deque()
        self._tasks: Dict[bytes, Task] = {}
        self._local: Dict[Tuple[bytes, ...], Task] = {}
        self._options: Deque[Deferred[bytes]] = deque()
        self._status: Dict[bytes, Deque[Deferred[JobStatus]]] = {}
        self._statusUnique: Dict[bytes, Deque[Deferred[UniqueJobStatus]]] = {}
        # The kind of every request not answered yet, oldest first, and the
        # handles and keys of status requests in the order they were sent:
        # an ERROR answers the oldest.
        self._order: Deque[int] = deque()
        self._statusOrder: Deque[bytes] = deque()
        self._statusUniqueOrder: Deque[bytes] = deque()
        self.orphans: List[Task] = []

    def greet(self) -> None:
        if self._exceptions:
            self.setOption(b"exceptions").addErrback(self._optionRefused)

    def _optionRefused(self, failure: Failure) -> None:
        if not failure.check(ConnectionLost):
            self.log.failure("Server refused the exceptions option", failure)

    def pendingCount(self) -> int:
        """
        How many tasks this connection waits on.
        """
        return len(self._awaitingCreated) + len(self._tasks)

    # Requests

    def submit(self, task: Task) -> None:
        """
        Send C{task} to the server, or follow a task with the same key that
        this connection already waits on (the server would otherwise send
        every packet of the shared job once per submission).
        """
        key = task.coalescingKey()
        if key is not None:
            leader = self._local.get(key)
            if leader is not None and not leader.done:
                leader._followers.append(task)
                task._connection = self
                if leader.handle is not None:
                    task._created(leader.handle)
                else:
                    task._awaiting = True
                return
        packet = task.packet()
        if key is not None:
            self._local[key] = task
        task._connection = self
        task._awaiting = True
        self._awaitingCreated.append(task)
        self._order.append(_SUBMIT)
        self.transport.write(packet)  # type: ignore[union-attr]

    def forget(self, task: Task) -> None:
        """
        Stop delivering results to C{task} (its result was cancelled); its
        C{whenCreated} waiters still get the handle if it comes.
        """
        if task.handle is not None and self._tasks.get(task.handle) is task:
            if task._followers:
                self._promote(task)
            else:
                del self._tasks[task.handle]
                self._dropLocal(task)
        else:
            for leader in self._local.values():
                if task in leader._followers:
                    leader._followers.remove(task)
                    # Its handle waiters are told when the leader's comes.
                    leader._createdWaiters.extend(task._createdWaiters)
                    task._createdWaiters = []
                    task._awaiting = False
                    return
            # Awaiting JOB_CREATED: keep its place in the queue, drop it then.
            if task._followers:
                self._promote(task)

    def _promote(self, task: Task) -> None:
        heir = task._followers.pop(0)
        heir._followers = task._followers
        task._followers = []
        key = task.coalescingKey()
        if key is not None and self._local.get(key) is task:
            self._local[key] = heir
        if task.handle is not None:
            self._tasks[task.handle] = heir
            if heir.handle is None:
                heir._created(task.handle)
        elif task in self._awaitingCreated:
            index = self._awaitingCreated.index(task)
            self._awaitingCreated[index] = heir
            # The cancelled leader's handle waiters are told when it comes.
            heir._createdWaiters.extend(task._createdWaiters)
            task._createdWaiters = []
            task._awaiting = False

    def _dropLocal(self, task: Task) -> None:
        key = task.coalescingKey()
        if key is not None and self._local.get(key) is task:
            del self._local[key]

    def echo(self, data: bytes = b"") -> Deferred[bytes]:
        if self.connected:
            self._order.append(_ECHO)
        return super().echo(data)

    def setOption(self, name: bytes) -> Deferred[bytes]:
        """
        OPTION_REQ: fires with the option name, or fails with L{ServerError}.
        """
        if not self.connected:
            return fail(ConnectionLost("not connected to the job server"))
        d: Deferred[bytes] = Deferred()
        self._options.append(d)
        self._order.append(_OPTION)
        self.transport.write(encode(PacketType.OPTION_REQ, name, magic=REQ))  # type: ignore[union-attr]
        return d

    def getStatus(self, handle: bytes) -> Deferred[JobStatus]:
        """
        GET_STATUS: fires with a L{JobStatus}.
        """
        if not self.connected:
            return fail(ConnectionLost("not connected to the job server"))
        d: Deferred[JobStatus] = Deferred()
        self._status.setdefault(handle, deque()).append(d)
        self._statusOrder.append(handle)
        self._order.append(_STATUS)
        self.transport.write(encode(PacketType.GET_STATUS, handle, magic=REQ))  # type: ignore[union-attr]
        return d

    def getStatusUnique(self, unique: bytes) -> Deferred[UniqueJobStatus]:
        """
        GET_STATUS_UNIQUE: fires with a L{UniqueJobStatus}.
        """
        if not self.connected:
            return fail(ConnectionLost("not connected to the job server"))
        d: Deferred[UniqueJobStatus] = Deferred()
        self._statusUnique.setdefault(unique, deque()).append(d)
        self._statusUniqueOrder.append(unique)
        self._order.append(_STATUS_UNIQUE)
        self.transport.write(encode(PacketType.GET_STATUS_UNIQUE, unique, magic=REQ))  # type: ignore[union-attr]
        return d

    # Replies

    def packetReceived(self, ptype: int, args: List[bytes], payload: bytes) -> None:
        handler = _CLIENT_HANDLERS.get(ptype)
        if handler is None:
            super().packetReceived(ptype, args, payload)
        else:
            handler(self, args, payload)

    def _answered(self, kind: int) -> None:
        """
        The server answered the oldest request of C{kind}.
        """
        order = self._order
        if order and order[0] == kind:
            order.popleft()
        elif kind in order:
            order.remove(kind)

    def _jobCreated(self, args: List[bytes], payload: bytes) -> None:
        if not self._awaitingCreated:
            self.log.warn("JOB_CREATED for no submission")
            return
        self._answered(_SUBMIT)
        task = self._awaitingCreated.popleft()
        handle = args[0]
        task._created(handle)
        if task.result.called and not task._followers:
            # Cancelled while waiting: nothing more to deliver.
            self._dropLocal(task)
        elif task.background:
            self._dropLocal(task)
            task._succeed(handle)
        else:
            existing = self._tasks.get(handle)
            if existing is not None and existing is not task:
                # The server coalesced it with a job this connection already
                # follows (under a key this client did not know to match).
                self._dropLocal(task)
                existing._followers.append(task)
            else:
                self._tasks[handle] = task

    def _error(self, args: List[bytes], payload: bytes) -> None:
        """
        ERROR answers the oldest request still unanswered: the server
        answers each in turn.
        """
        code, text = args
        error = ServerError(code, text)
        kind = self._order.popleft() if self._order else None
        if kind == _SUBMIT and self._awaitingCreated:
            task = self._awaitingCreated.popleft()
            self._dropLocal(task)
            task._fail(error)
        elif kind == _OPTION and self._options:
            self._options.popleft().errback(error)
        elif kind == _ECHO:
            self.echoFailed(error)
        elif kind == _STATUS and self._statusOrder:
            self._popWaiter(self._status, self._statusOrder.popleft()).errback(error)
        elif kind == _STATUS_UNIQUE and self._statusUniqueOrder:
            self._popWaiter(self._statusUnique, self._statusUniqueOrder.popleft()).errback(error)
        else:
            self.log.warn(
                "Server error {code}: {text}",
                code=code.decode("ascii", "replace"),
                text=text.decode("utf-8", "replace"),
            )

    @staticmethod
    def _popWaiter(table: Dict[bytes, Deque[Deferred[Any]]], key: bytes) -> Deferred[Any]:
        waiters = table[key]
        d = waiters.popleft()
        if not waiters:
            del table[key]
        return d

    def _workEvent(self, args: List[bytes], payload: bytes, ptype: int) -> None:
        task = self._tasks.get(args[0])
        if task is not None:
            task._event(ptype, args[1])

    def _workData(self, args: List[bytes], payload: bytes) -> None:
        self._workEvent(args, payload, PacketType.WORK_DATA)

    def _workWarning(self, args: List[bytes], payload: bytes) -> None:
        self._workEvent(args, payload, PacketType.WORK_WARNING)

    def _workStatus(self, args: List[bytes], payload: bytes) -> None:
        task = self._tasks.get(args[0])
        if task is not None:
            task._event(PacketType.WORK_STATUS, (atoi(args[1]), atoi(args[2])))

    def _finished(self, handle: bytes) -> Optional[Task]:
        task = self._tasks.pop(handle, None)
        if task is not None:
            self._dropLocal(task)
        return task

    def _workComplete(self, args: List[bytes], payload: bytes) -> None:
        task = self._finished(args[0])
        if task is not None:
            task._succeed(args[1])

    def _workFail(self, args: List[bytes], payload: bytes) -> None:
        # gearmand 1.1.20 may send the handle with a stray NUL after it.
        handle = args[0].rstrip(b"\0")
        task = self._finished(handle)
        if task is not None:
            task._fail(JobFailed(handle, task.function))

    def _workException(self, args: List[bytes], payload: bytes) -> None:
        handle, data = args
        task = self._finished(handle)
        if task is not None:
            task._fail(JobException(handle, data, task.function))

    def _statusRes(self, args: List[bytes], payload: bytes) -> None:
        handle, known, running, numerator, denominator = args
        if not self._status.get(handle):
            return
        self._answered(_STATUS)
        self._statusOrder.remove(handle)
        d = self._popWaiter(self._status, handle)
        d.callback(JobStatus(known == b"1", running == b"1", atoi(numerator), atoi(denominator)))

    def _statusResUnique(self, args: List[bytes], payload: bytes) -> None:
        unique, known, running, numerator, denominator, clients = args
        if not self._statusUnique.get(unique):
            return
        self._answered(_STATUS_UNIQUE)
        self._statusUniqueOrder.remove(unique)
        d = self._popWaiter(self._statusUnique, unique)
        d.callback(
            UniqueJobStatus(
                known == b"1",
                running == b"1",
                atoi(numerator),
                atoi(denominator),
                atoi(clients),
            )
        )

    def _echoRes(self, args: List[bytes], payload: bytes) -> None:
        self._answered(_ECHO)
        self.echoReceived(payload)

    def _optionRes(self, args: List[bytes], payload: bytes) -> None:
        if self._options:
            self._answered(_OPTION)
            self._options.popleft().callback(args[0])

    def _noop(self, args: List[bytes], payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        lost = ConnectionLost("connection to the job server lost")
        unfinished: List[Task] = []
        for task in self._awaitingCreated:
            if task.result.called:
                task._abandon(lost)
            else:
                unfinished.append(task)
        unfinished.extend(t for t in self._tasks.values() if not t.result.called)
        self._awaitingCreated.clear()
        self._tasks.clear()
        self._local.clear()
        self._order.clear()
        self._statusOrder.clear()
        self._statusUniqueOrder.clear()
        while self._options:
            self._options.popleft().errback(lost)
        for waiters in list(self._status.values()) + list(self._statusUnique.values()):
            while waiters:
                waiters.popleft().errback(lost)  # type: ignore[attr-defined]
        self._status.clear()
        self._statusUnique.clear()
        # Followers go their own way now: each is submitted again by itself
        # (and coalesces again wherever it lands).
        orphans: List[Task] = []
        for task in unfinished:
            followers, task._followers = task._followers, []
            for orphan in [task] + followers:
                if not orphan.result.called:
                    orphan._connection = None
                    orphan._awaiting = False
                    orphans.append(orphan)
        self.orphans = orphans
        super().connectionLost(reason)
        if self.onLost is None:
            orphans, self.orphans = self.orphans, []
            for task in orphans:
                task._fail(lost)


_CLIENT_HANDLERS: Dict[int, Callable[[GearmanClientProtocol, List[bytes], bytes], None]] = {
    PacketType.JOB_CREATED: GearmanClientProtocol._jobCreated,
    PacketType.ERROR: GearmanClientProtocol._error,
    PacketType.WORK_DATA: GearmanClientProtocol._workData,
    PacketType.WORK_WARNING: GearmanClientProtocol._workWarning,
    PacketType.WORK_STATUS: GearmanClientProtocol._workStatus,
    PacketType.WORK_COMPLETE: GearmanClientProtocol._workComplete,
    PacketType.WORK_FAIL: GearmanClientProtocol._workFail,
    PacketType.WORK_EXCEPTION: GearmanClientProtocol._workException,
    PacketType.STATUS_RES: GearmanClientProtocol._statusRes,
    PacketType.STATUS_RES_UNIQUE: GearmanClientProtocol._statusResUnique,
    PacketType.ECHO_RES: GearmanClientProtocol._echoRes,
    PacketType.OPTION_RES: GearmanClientProtocol._optionRes,
    PacketType.NOOP: GearmanClientProtocol._noop,
}


class GearmanClientFactory(Factory):
    """
    Builds L{GearmanClientProtocol}s.
    """

    protocol = GearmanClientProtocol

    def __init__(
        self,
        exceptions: bool = True,
        clock: Optional[IReactorTime] = None,
        heartbeat: Optional[float] = DEFAULT_HEARTBEAT,
        heartbeatTimeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    ) -> None:
        self.exceptions = exceptions
        self.clock = clock
        self.heartbeat = heartbeat
        self.heartbeatTimeout = heartbeatTimeout

    def buildProtocol(self, addr: object) -> GearmanClientProtocol:
        p = GearmanClientProtocol(self.exceptions, self.clock, self.heartbeat, self.heartbeatTimeout)
        p.factory = self
        return p


class _Server:
    """
    One job server of a client's pool and its ready connection.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.reconnector: Reconnector
        self.connection: Optional[GearmanClientProtocol] = None
        self.hashKey = name.encode("utf-8")

    @property
    def ready(self) -> bool:
        """
        Whether its connection is up and has answered.
        """
        return self.connection is not None and self.connection.ready

    def reason(self) -> str:
        """
        Why this server takes no work now.
        """
        reconnector = self.reconnector
        if reconnector.lastError is not None:
            return reconnector.lastError
        if reconnector.connection is not None:
            return "connected, waiting for its answer"
        return "not connected yet"


#: The keys a job of L{GearmanClient.submitBatch} may have.
_JOB_KEYS = frozenset(
    ("function", "data", "unique", "priority", "background", "when", "timeout", "onData", "onWarning", "onStatus")
)


@implementer(IGearmanClient)
class GearmanClient(MultiService):
    """
    A Gearman client over a pool of job servers: a service that keeps one
    connection to each (reconnecting with backoff) and submits jobs to them.

    Jobs with a unique key always go to the same live server (rendezvous
    hashing on the key), so coalescing works across the pool; jobs without
    one are spread round-robin over the connected servers.  When a server is
    down, or its connection drops before a job ends, the job is submitted to
    the next server, up to C{maxAttempts} times in all.

    @ivar timeout: the default time limit of a task, or L{None}.
    @ivar connectTimeout: how long a submission waits for a server.
    @ivar maxAttempts: how many servers one task may be submitted to.
    @ivar maxPacketSize: the largest submission, in bytes.
    """

    log = Logger()

    def __init__(
        self,
        servers: Iterable[Union[str, IStreamClientEndpoint]],
        reactor: Optional[IReactorTime] = None,
        exceptions: bool = True,
        timeout: Optional[float] = None,
        connectTimeout: float = 10.0,
        maxAttempts: Optional[int] = None,
        retryPolicy: Optional[Callable[[int], float]] = None,
        heartbeat: Optional[float] = DEFAULT_HEARTBEAT,
        heartbeatTimeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        maxPacketSize: int = MAX_PACKET,
    ) -> None:
        """
        @param servers: C{"host:port"} strings (port 4730 if left out),
            Twisted client endpoint descriptions (C{tcp:...}, C{unix:...},
            C{tls:...}, which verifies the server's certificate and host
            name: see L{gearman_tw.endpoints.tlsEndpoint}), or endpoint
            objects.
        @param reactor: the reactor (the global one if L{None}).
        @param exceptions: ask each server to forward WORK_EXCEPTION
            (otherwise exceptions arrive as plain failures).
        @param timeout: default seconds a task may take before its result
            fails with L{JobTimeout}; L{None} for no limit.
        @param connectTimeout: seconds a submission waits for any server to
            be connected before it fails with L{ServerUnavailable}.  While
            submissions wait, servers are retried at least once a second.
        @param maxAttempts: how many servers one task may be submitted to;
            by default one more than the number of servers.
        @param retryPolicy: reconnection delays, as for Twisted's
            C{backoffPolicy} (at most 30 s apart by default).
        @param heartbeat: seconds of silence after which a connection is
            asked for an ECHO; L{None} never to ask.
        @param heartbeatTimeout: seconds a server has to answer the ECHO of
            a heartbeat or of a new connection before the connection is
            dropped as hung (its jobs then go to the other servers).
        @param maxPacketSize: the largest submission, in bytes (what
            gearman_tw's server accepts by default): a larger one raises
            C{ValueError} instead of making the server drop the connection.
        @raise TypeError: an argument has the wrong type.
        @raise ValueError: an argument has a wrong value, or no server is
            given.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor  # type: ignore[assignment]
        if isinstance(servers, (str, bytes)):
            raise TypeError("servers must be a list of servers, not one %s" % (type(servers).__name__,))
        self.timeout = _seconds(timeout, "timeout")
        connectLimit = _seconds(connectTimeout, "connectTimeout")
        assert connectLimit is not None
        if heartbeat is not None:
            _seconds(heartbeat, "heartbeat")
        heartbeatLimit = _seconds(heartbeatTimeout, "heartbeatTimeout")
        assert heartbeatLimit is not None
        if maxAttempts is not None and (isinstance(maxAttempts, bool) or not isinstance(maxAttempts, int)):
            raise TypeError("maxAttempts must be an int or None, not %s" % (type(maxAttempts).__name__,))
        if maxAttempts is not None and maxAttempts < 1:
            raise ValueError("maxAttempts must be at least 1, not %d" % (maxAttempts,))
        _callback(retryPolicy, "retryPolicy")
        if isinstance(maxPacketSize, bool) or not isinstance(maxPacketSize, int):
            raise TypeError("maxPacketSize must be an int, not %s" % (type(maxPacketSize).__name__,))
        if maxPacketSize < 1024:
            raise ValueError("maxPacketSize must be at least 1024, not %d" % (maxPacketSize,))
        self.maxPacketSize = maxPacketSize
        self.reactor = reactor
        self.connectTimeout = connectLimit
        self._factory = GearmanClientFactory(exceptions, reactor, heartbeat, heartbeatLimit)
        self._policy = retryPolicy or backoffPolicy(maxDelay=30.0)
        self._servers: List[_Server] = []
        self._waiting: Dict[Task, IDelayedCall] = {}
        self._next = 0
        self._stopped = False
        self._readyWaiters: List[Deferred[None]] = []
        # whenConnected(failFast=True) callers: these also fail once every
        # server has failed an attempt.
        self._failFastWaiters: List[Deferred[None]] = []
        for spec in servers:
            endpoint, name = clientEndpoint(reactor, spec)
            server = _Server(name)
            server.reconnector = Reconnector(
                name,
                endpoint,
                self._factory,
                reactor,
                self._retryDelay,
                onReady=lambda connection, server=server: self._ready(server, connection),  # type: ignore[misc]
                onLost=lambda connection, reason, server=server: self._lost(server, connection),  # type: ignore[misc]
                onFailed=lambda reconnector: self._attemptFailed(),
            )
            server.reconnector.setServiceParent(self)
            self._servers.append(server)
        if not self._servers:
            raise ValueError("a GearmanClient needs at least one server")
        self.maxAttempts = maxAttempts if maxAttempts is not None else len(self._servers) + 1

    # Connections

    @property
    def _nudge(self) -> float:
        """
        The longest a server waits before its next attempt while
        submissions wait for one.
        """
        return min(1.0, self.connectTimeout / 4)

    def _retryDelay(self, failures: int) -> float:
        delay = self._policy(failures)
        if self._waiting:
            delay = min(delay, self._nudge)
        return delay

    def _ready(self, server: _Server, connection: JobServerConnection) -> None:
        server.connection = connection  # type: ignore[assignment]
        waiting, self._waiting = self._waiting, {}
        for task, timer in waiting.items():
            if timer.active():
                timer.cancel()
            self._send(task)
        readyWaiters, self._readyWaiters = self._readyWaiters, []
        for d in readyWaiters:
            d.callback(None)
        failFast, self._failFastWaiters = self._failFastWaiters, []
        for d in failFast:
            if not d.called:
                d.callback(None)

    def _allFailing(self) -> bool:
        """
        Whether every server's last attempts failed and none is connected.
        """
        return all(s.reconnector.failures > 0 and not s.ready for s in self._servers)

    def _attemptFailed(self) -> None:
        if not self._failFastWaiters or not self._allFailing():
            return
        failFast, self._failFastWaiters = self._failFastWaiters, []
        error = self._unavailable("no job server could be reached")
        for d in failFast:
            if not d.called:
                d.errback(error)

    def _lost(self, server: _Server, connection: JobServerConnection) -> None:
        if server.connection is connection:
            server.connection = None
        # A connection that never answered counts as a failed attempt.
        self._attemptFailed()
        orphans: List[Task] = connection.orphans  # type: ignore[attr-defined]
        connection.orphans = []  # type: ignore[attr-defined]
        for task in orphans:
            if self._stopped:
                task._fail(ConnectionLost("%s lost: the client was stopped" % (task._describe(),)))
            elif task.background and task.handle is not None:
                continue
            else:
                self._send(task, exclude=server)

    @property
    def servers(self) -> List[str]:
        """
        The names of the servers in the pool.
        """
        return [server.name for server in self._servers]

    def connectedServers(self) -> List[str]:
        """
        The names of the servers whose connection is ready now.
        """
        return [s.name for s in self._servers if s.ready]

    def whenConnected(self, failFast: bool = False) -> Deferred[None]:
        """
        A new Deferred that fires once at least one server is connected and
        has answered, or fails with L{ServerUnavailable} if the client is
        (or gets) stopped first.

        @param failFast: also fail, with a L{ServerUnavailable} naming each
            server and why it could not be used, as soon as every server
            has failed a connection attempt and none is connected (a
            refused connection fails at once).
        """
        if self.connectedServers():
            return succeed(None)
        if self._stopped:
            return fail(ServerUnavailable("the client is stopped"))
        if failFast and self._allFailing():
            return fail(self._unavailable("no job server could be reached"))
        d: Deferred[None] = Deferred()
        (self._failFastWaiters if failFast else self._readyWaiters).append(d)
        return d

    def _unavailable(self, message: str) -> ServerUnavailable:
        return ServerUnavailable(message, [(s.name, s.reason()) for s in self._servers])

    # Choosing a server

    def _candidates(self, task: Task, exclude: Optional[_Server] = None) -> List[_Server]:
        live = [s for s in self._servers if s is not exclude and s.ready]
        if not live:
            return live
        unique = task.data if task.unique == b"-" else task.unique
        if unique:
            key = task.function + b"\0" + unique
            live.sort(key=lambda s: hashlib.md5(s.hashKey + b"\0" + key).digest(), reverse=True)
            return live
        self._next = (self._next + 1) % len(live)
        return live[self._next :] + live[: self._next]

    def _send(self, task: Task, exclude: Optional[_Server] = None) -> None:
        if task.result.called:
            return
        if task.attempts >= self.maxAttempts:
            task._fail(
                self._unavailable(
                    "%s not finished: no job server could finish it (submitted %d time%s)"
                    % (task._describe(), task.attempts, "" if task.attempts == 1 else "s")
                )
            )
            return
        candidates = self._candidates(task, exclude)
        if not candidates and exclude is not None:
            candidates = self._candidates(task)
        if not candidates:
            self._wait(task)
            return
        server = candidates[0]
        task.attempts += 1
        task.server = server.name
        task.handle = None
        server.connection.submit(task)  # type: ignore[union-attr]

    def _wait(self, task: Task) -> None:
        def giveUp() -> None:
            self._waiting.pop(task, None)
            task._fail(self._unavailable("%s not submitted: no job server is connected" % (task._describe(),)))

        self._waiting[task] = self.reactor.callLater(self.connectTimeout, giveUp)  # type: ignore[attr-defined]
        for server in self._servers:
            server.reconnector.retrySoon(self._nudge)

    def _unwait(self, task: Task) -> None:
        timer = self._waiting.pop(task, None)
        if timer is not None and timer.active():
            timer.cancel()

    # Public API

    def submit(
        self,
        function: Union[bytes, str],
        data: Union[bytes, str] = b"",
        unique: Union[bytes, str, None] = None,
        priority: Union[Priority, str] = NORMAL,
        background: bool = False,
        when: Optional[object] = None,
        timeout: Optional[float] = None,
        onData: Optional[Callable[[bytes], object]] = None,
        onWarning: Optional[Callable[[bytes], object]] = None,
        onStatus: Optional[Callable[[int, int], object]] = None,
    ) -> Task:
        """
        Submit a job and return its L{Task}.

        @param function: the function name (bytes, or str sent as UTF-8).
        @param data: the workload (bytes, or str sent as UTF-8).
        @param unique: the unique key: jobs with equal keys run once and
            every foreground submitter gets the result.  C{b"-"} asks the
            server to coalesce on the data.  Empty or L{None}: no coalescing.
        @param priority: L{HIGH}, L{NORMAL} or L{LOW} (a L{Priority}, or
            its string).
        @param background: run detached: C{result} fires with the handle
            once the server has queued the job.
        @param when: epoch seconds (or an aware C{datetime}) before which
            the (background) job must not run (SUBMIT_JOB_EPOCH).
        @param timeout: seconds before C{result} fails with L{JobTimeout};
            the client's default if L{None}.
        @param onData: called with each WORK_DATA payload.
        @param onWarning: called with each WORK_WARNING payload.
        @param onStatus: called with C{(numerator, denominator)} of each
            WORK_STATUS.  An exception in any of the three is logged and
            changes nothing else.
        @raise TypeError: an argument has the wrong type; nothing was sent.
        @raise ValueError: an argument has a wrong value; nothing was sent.

        Cancelling C{result} only stops this client waiting: the server knows
        no way to withdraw one submission, so the job still runs unless every
        client of it disconnects first (then gearmand drops a queued one).
        """
        task, limit = self._task(
            function, data, unique, priority, background, when, timeout, onData, onWarning, onStatus
        )
        self._start(task, limit)
        return task

    def _task(
        self,
        function: object,
        data: object,
        unique: object,
        priority: object,
        background: object,
        when: object,
        timeout: object,
        onData: object,
        onWarning: object,
        onStatus: object,
    ) -> Tuple[Task, Optional[float]]:
        """
        A task from C{submit}'s arguments, and its time limit.

        @raise TypeError: an argument has the wrong type.
        @raise ValueError: an argument has a wrong value.
        """
        functionBytes = _argument(function, "function", MAX_FUNCTION, allowEmpty=False)
        dataBytes = _bytes(data, "data")
        uniqueBytes = b"" if unique is None else _argument(unique, "unique", MAX_UNIQUE, allowEmpty=True)
        level = _priority(priority)
        if not isinstance(background, bool):
            raise TypeError("background must be True or False, not %s" % (type(background).__name__,))
        epoch = _epoch(when)
        if epoch is not None and level != NORMAL:
            raise ValueError("epoch jobs always run at normal priority")
        limit = _seconds(timeout, "timeout")
        # The submission's payload: function, unique, [epoch,] data.
        size = len(functionBytes) + len(uniqueBytes) + len(dataBytes) + 2
        if epoch is not None:
            size += len(b"%d" % (epoch,)) + 1
        if size > self.maxPacketSize:
            raise ValueError(
                "job (%s) is %d bytes; a packet may be at most %d (maxPacketSize)"
                % (functionBytes.decode("utf-8", "replace"), size, self.maxPacketSize)
            )
        task = Task(
            functionBytes,
            dataBytes,
            uniqueBytes,
            level,
            background,
            epoch,
            _callback(onData, "onData"),
            _callback(onWarning, "onWarning"),
            _callback(onStatus, "onStatus"),
        )
        return task, (self.timeout if limit is None else limit)

    def _start(self, task: Task, limit: Optional[float]) -> None:
        task.result.addBoth(self._settled, task)
        if self._stopped:
            task._fail(ServerUnavailable("%s not submitted: the client is stopped" % (task._describe(),)))
            return
        if limit is not None:
            task.result.addTimeout(limit, self.reactor, self._timedOut(task))  # type: ignore[arg-type]
        self._send(task)

    def _settled(self, result: object, task: Task) -> object:
        self._unwait(task)
        if task.handle is None and not task._awaiting:
            task._abandon(ServerUnavailable("%s was never created" % (describeJob(None, task.function),)))
        return result

    @staticmethod
    def _timedOut(task: Task) -> Callable[[object, float], object]:
        def onTimeout(result: object, seconds: float) -> object:
            if isinstance(result, Failure) and result.check(CancelledError):
                return Failure(JobTimeout(task.handle, seconds, task.function))
            return result

        return onTimeout

    def submitJob(self, function: Union[bytes, str], data: Union[bytes, str] = b"", **kwargs: Any) -> Deferred[bytes]:
        """
        Submit a job; return its C{result} Deferred.  Takes the arguments of
        L{submit}, and raises as it does.
        """
        return self.submit(function, data, **kwargs).result

    def submitBatch(
        self, jobs: Iterable[Union[Tuple[Union[bytes, str], Union[bytes, str]], Mapping[str, Any]]], **defaults: Any
    ) -> Deferred[List[Union[bytes, Failure]]]:
        """
        Submit many jobs at once, pipelined, and fire with their results in
        order: each the WORK_COMPLETE data (the handle for a background
        job), or a L{Failure}.

        @param jobs: C{(function, data)} pairs, or mappings with the
            arguments of L{submit} by name (C{"function"} required).
        @param defaults: arguments of L{submit} for every job that does not
            give its own.
        @raise TypeError: C{jobs} or a job is not something this can read,
            or an argument has the wrong type; no job was sent.
        @raise ValueError: an argument has a wrong value; no job was sent.
        """
        if isinstance(jobs, (str, bytes, bytearray, Mapping)) or not isinstance(jobs, Iterable):
            raise TypeError(
                "jobs must be a list of (function, data) pairs or of dicts, not %s" % (type(jobs).__name__,)
            )
        unknown = set(defaults) - _JOB_KEYS - {"function"}
        if unknown or "function" in defaults:
            raise TypeError(
                "submitBatch got unexpected keyword arguments: %s"
                % (", ".join(sorted(unknown | ({"function"} & set(defaults)))),)
            )
        prepared = []
        for index, job in enumerate(jobs):
            if isinstance(job, Mapping):
                extra = set(job) - _JOB_KEYS
                if extra:
                    raise TypeError("job %d has unknown keys: %s" % (index, ", ".join(sorted(map(str, extra)))))
                if "function" not in job:
                    raise TypeError("job %d has no function" % (index,))
                arguments = dict(defaults, **job)
            elif isinstance(job, (tuple, list)) and len(job) == 2:
                arguments = dict(defaults, function=job[0], data=job[1])
            else:
                raise TypeError("job %d must be a (function, data) pair or a dict, not %r" % (index, job))
            try:
                prepared.append(
                    self._task(
                        arguments["function"],
                        arguments.get("data", b""),
                        arguments.get("unique"),
                        arguments.get("priority", NORMAL),
                        arguments.get("background", False),
                        arguments.get("when"),
                        arguments.get("timeout"),
                        arguments.get("onData"),
                        arguments.get("onWarning"),
                        arguments.get("onStatus"),
                    )
                )
            except TypeError as e:
                raise TypeError("job %d: %s" % (index, e)) from None
            except ValueError as e:
                raise ValueError("job %d: %s" % (index, e)) from None
        for task, limit in prepared:
            self._start(task, limit)
        results = DeferredList([task.result for task, _ in prepared], consumeErrors=True)
        return results.addCallback(lambda pairs: [value for _, value in pairs])  # type: ignore[arg-type]

    def _connectionFor(self, server: Optional[str]) -> GearmanClientProtocol:
        """
        The ready connection to C{server} (the first ready one if L{None}).

        @raise ValueError: C{server} is not one of this client's.
        @raise ServerUnavailable: it has no ready connection.
        """
        if server is not None and server not in self.servers:
            raise ValueError("%r is not one of this client's servers %r" % (server, self.servers))
        for s in self._servers:
            if (server is None or s.name == server) and s.ready:
                return s.connection  # type: ignore[return-value]
        raise self._unavailable("no job server is connected")

    def getStatus(self, handle: Union[bytes, str], server: Optional[str] = None) -> Deferred[JobStatus]:
        """
        Ask a server (the first connected one by default; handles are only
        known to the server that made them, which is C{task.server}) about a
        job.

        @return: fires with a L{JobStatus}, or fails with
            L{ServerUnavailable} or L{ConnectionLost}.
        @raise TypeError: C{handle} is not bytes or str.
        @raise ValueError: C{handle} is empty, longer than 63 bytes or has a
            NUL, or C{server} is not one of this client's.
        """
        handleBytes = _argument(handle, "handle", MAX_HANDLE, allowEmpty=False)
        try:
            connection = self._connectionFor(server)
        except ServerUnavailable as e:
            return fail(e)
        return connection.getStatus(handleBytes)

    def getStatusUnique(self, function: Union[bytes, str], unique: Union[bytes, str]) -> Deferred[UniqueJobStatus]:
        """
        Ask the server that jobs with C{unique} go to about such a job.

        @return: fires with a L{UniqueJobStatus}, or fails with
            L{ServerUnavailable} or L{ConnectionLost}.
        @raise TypeError: an argument is not bytes or str.
        @raise ValueError: an argument is empty, too long or has a NUL.
        """
        probe = Task(
            _argument(function, "function", MAX_FUNCTION, allowEmpty=False),
            b"",
            _argument(unique, "unique", MAX_UNIQUE, allowEmpty=False),
        )
        candidates = self._candidates(probe)
        if not candidates:
            return fail(self._unavailable("no job server is connected"))
        return candidates[0].connection.getStatusUnique(probe.unique)  # type: ignore[union-attr]

    def getResult(
        self,
        handle: Union[bytes, str, None] = None,
        *,
        unique: Union[bytes, str, None] = None,
        function: Union[bytes, str, None] = None,
        server: Optional[str] = None,
    ) -> Deferred[Optional[JobResult]]:
        """
        Ask a gearman_tw server for the result of a job that ended (kept per
        its function's policy, C{keep-results} or C{unique-window}), or
        where a live one stands, through its admin protocol (C{result}).

        @param handle: the job's handle; handles are known to the server
            that made them (C{task.server}), the first of this client's by
            default.
        @param unique: instead of a handle, the job's unique key: the newest
            job with it.  With C{function}, asked of the server jobs with
            that function and unique go to.
        @param server: the server to ask (one of L{servers}).
        @return: fires with a L{JobResult <gearman_tw.admin.JobResult>}, or
            L{None} if the server neither runs the job nor keeps its result;
            fails with L{ServerUnavailable} or the admin command's error.
        @raise TypeError: an argument is of the wrong type.
        @raise ValueError: neither or both of C{handle} and C{unique}, an
            argument empty, too long (a handle over L{MAX_HANDLE} bytes, a
            unique over L{MAX_RESULT_UNIQUE}) or not one word, or C{server}
            not one of this client's.
        """
        if handle is not None and unique is not None:
            raise ValueError("getResult() takes a handle or a unique, not both")
        if handle is None and unique is None:
            raise ValueError("getResult() needs a handle or a unique; neither was given")
        if server is not None and server not in self.servers:
            raise ValueError("%r is not one of this client's servers %r" % (server, self.servers))
        if unique is None:
            what, word = "handle", _argument(handle, "getResult() handle", MAX_HANDLE, allowEmpty=False)
        else:
            what, word = "unique", _argument(unique, "getResult() unique", MAX_RESULT_UNIQUE, allowEmpty=False)
        if b" " in word:
            raise ValueError("getResult() %s must be one word" % (what,))
        target = self._servers[0]
        if server is not None:
            target = next(s for s in self._servers if s.name == server)
        elif unique is not None and function is not None:
            probe = Task(_argument(function, "function", MAX_FUNCTION, allowEmpty=False), b"", word)
            candidates = self._candidates(probe)
            if candidates:
                target = candidates[0]

        async def ask() -> Optional[JobResult]:
            admin = await connectAdmin(target.reconnector.endpoint, reactor=self.reactor, timeout=self.connectTimeout)
            try:
                if unique is None:
                    return await admin.result(word)
                return await admin.resultUnique(word)
            finally:
                admin.close()

        return Deferred.fromCoroutine(ask())

    def echo(self, data: Union[bytes, str] = b"ping", server: Optional[str] = None) -> Deferred[bytes]:
        """
        ECHO_REQ to a server; fires with the echoed data.

        @raise TypeError: C{data} is not bytes or str.
        @raise ValueError: C{data} is larger than C{maxPacketSize}, or
            C{server} is not one of this client's.
        """
        dataBytes = _bytes(data, "data")
        if len(dataBytes) > self.maxPacketSize:
            raise ValueError("echo data is %d bytes; at most %d (maxPacketSize)" % (len(dataBytes), self.maxPacketSize))
        try:
            connection = self._connectionFor(server)
        except ServerUnavailable as e:
            return fail(e)
        return connection.echo(dataBytes)

    def startService(self) -> None:
        self._stopped = False
        super().startService()

    def stopService(self) -> Deferred[None]:
        """
        Disconnect from every server: tasks waiting for a server fail with
        L{ServerUnavailable}, tasks in flight with L{ConnectionLost}, and
        later submissions fail at once with L{ServerUnavailable}.
        """
        self._stopped = True
        readyWaiters, self._readyWaiters = self._readyWaiters, []
        for d in readyWaiters:
            d.errback(ServerUnavailable("the client was stopped before a server was connected"))
        failFast, self._failFastWaiters = self._failFastWaiters, []
        for d in failFast:
            if not d.called:
                d.errback(ServerUnavailable("the client was stopped before a server was connected"))
        waiting, self._waiting = self._waiting, {}
        for task, timer in waiting.items():
            if timer.active():
                timer.cancel()
            task._fail(ServerUnavailable("%s not submitted: the client was stopped" % (task._describe(),)))
        return super().stopService()  # type: ignore[return-value]
