# -*- test-case-name: tests.test_client -*-
"""
A Deferred-based Gearman client.

L{GearmanClient} is a service that keeps connections to one or more job
servers and submits jobs to them; each submission is a L{Task} whose
C{result} Deferred fires with the job's WORK_COMPLETE data, or fails with
L{JobFailed}, L{JobException}, L{ServerError} or L{ServerUnavailable}.

    client = GearmanClient(["127.0.0.1:4730"])
    client.startService()
    task = client.submit("reverse", b"hello")
    task.result.addCallback(print)        # b"olleh"
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import (
    Callable,
    Deque,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService
from twisted.internet.defer import CancelledError, Deferred, DeferredList, fail, succeed
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gearman_tw.connection import JobServerConnection
from gearman_tw.endpoints import clientEndpoint
from gearman_tw.errors import (
    ConnectionLost,
    JobException,
    JobFailed,
    JobTimeout,
    ServerError,
    ServerUnavailable,
)
from gearman_tw.interfaces import IGearmanClient
from gearman_tw.protocol import REQ, HEADER, PacketType, encode

HIGH, NORMAL, LOW = "high", "normal", "low"

# Submit packet type by (priority, background).
_SUBMIT_TYPES = {
    (HIGH, False): PacketType.SUBMIT_JOB_HIGH,
    (NORMAL, False): PacketType.SUBMIT_JOB,
    (LOW, False): PacketType.SUBMIT_JOB_LOW,
    (HIGH, True): PacketType.SUBMIT_JOB_HIGH_BG,
    (NORMAL, True): PacketType.SUBMIT_JOB_BG,
    (LOW, True): PacketType.SUBMIT_JOB_LOW_BG,
}

#: gearmand refuses longer unique keys.
MAX_UNIQUE = 64

_pack = HEADER.pack


def _bytes(value: Union[bytes, str]) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def deriveUnique(function: Union[bytes, str], data: bytes) -> bytes:
    """
    A unique key derived from a job's function and data, so that equal jobs
    coalesce on the server (and land on the same server of a pool).
    """
    digest = hashlib.sha256(_bytes(function) + b"\0" + data).hexdigest()
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
    @ivar server: the server (host:port or endpoint description) that took it.
    @ivar numerator: the last WORK_STATUS numerator (and C{denominator}).
    @ivar result: fires with the WORK_COMPLETE data (for a background job:
        with the handle) or fails with L{JobFailed}, L{JobException},
        L{ServerError}, L{ServerUnavailable} or L{JobTimeout}.  Cancelling
        it stops waiting: see L{GearmanClient.submit}.
    @ivar onData: called with each WORK_DATA payload, in order.
    @ivar onWarning: called with each WORK_WARNING payload.
    @ivar onStatus: called with C{(numerator, denominator)} for each
        WORK_STATUS.
    """

    def __init__(
        self,
        function: bytes,
        data: bytes,
        unique: bytes = b"",
        priority: str = NORMAL,
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
        self.background = background
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
        self._followers: List[Task] = []

    def __repr__(self) -> str:
        return "<Task %r handle=%r>" % (self.function, self.handle)

    @property
    def done(self) -> bool:
        """
        Whether the result is known.
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
            return (self.function, b"-", self.data) if self.data else None
        return (self.function, self.unique)

    def whenCreated(self) -> Deferred[bytes]:
        """
        A new Deferred that fires with the job handle once the server has
        created the job.
        """
        if self.handle is not None:
            return succeed(self.handle)
        if self.result.called:
            return fail(ServerUnavailable("the job was never created"))
        d: Deferred[bytes] = Deferred()
        self._createdWaiters.append(d)
        return d

    # Called by the connection.

    def _created(self, handle: bytes) -> None:
        self.handle = handle
        waiters, self._createdWaiters = self._createdWaiters, []
        for d in waiters:
            d.callback(handle)
        for follower in self._followers:
            follower._created(handle)

    def _event(self, ptype: int, payload: bytes) -> None:
        if ptype == PacketType.WORK_DATA:
            if self.onData is not None:
                self.onData(payload)
        elif ptype == PacketType.WORK_WARNING:
            if self.onWarning is not None:
                self.onWarning(payload)
        else:
            numerator, denominator = payload
            self.numerator, self.denominator = numerator, denominator
            if self.onStatus is not None:
                self.onStatus(numerator, denominator)
        for follower in self._followers:
            follower._event(ptype, payload)

    def _succeed(self, value: bytes) -> None:
        self._connection = None
        if not self.result.called:
            self.result.callback(value)
        for follower in self._followers:
            follower._succeed(value)

    def _fail(self, failure: Union[Failure, Exception]) -> None:
        self._connection = None
        waiters, self._createdWaiters = self._createdWaiters, []
        for d in waiters:
            d.errback(failure)
        if not self.result.called:
            self.result.errback(failure)
        for follower in self._followers:
            follower._fail(failure)

    def _cancel(self, result: Deferred[bytes]) -> None:
        connection = self._connection
        if connection is not None:
            connection.forget(self)
        self._connection = None


class GearmanClientProtocol(JobServerConnection):
    """
    One client connection to a job server.

    Replies are matched to requests by kind: JOB_CREATED and submit errors
    in submission order, ECHO_RES and OPTION_RES in order, STATUS_RES by
    handle; work packets by handle.
    """

    def __init__(self, exceptions: bool = True) -> None:
        self._exceptions = exceptions
        super().__init__()
        self._awaitingCreated: Deque[Task] = deque()
        self._tasks: Dict[bytes, Task] = {}
        self._local: Dict[Tuple[bytes, ...], Task] = {}
        self._echoes: Deque[Deferred[bytes]] = deque()
        self._options: Deque[Deferred[bytes]] = deque()
        self._status: Dict[bytes, Deque[Deferred[Tuple[bool, bool, int, int]]]] = {}
        self._statusUnique: Dict[bytes, Deque[Deferred[Tuple[bool, bool, int, int, int]]]] = {}
        self._lostHandlers: List[Callable[[GearmanClientProtocol, List[Task]], object]] = []
        self.connected = False

    def connectionMade(self) -> None:
        super().connectionMade()
        self.connected = True
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
                return
            self._local[key] = task
        task._connection = self
        self._awaitingCreated.append(task)
        self.transport.write(task.packet())  # type: ignore[union-attr]

    def forget(self, task: Task) -> None:
        """
        Stop delivering anything to C{task} (its result was cancelled).
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
        else:
            index = self._awaitingCreated.index(task)
            self._awaitingCreated[index] = heir

    def _dropLocal(self, task: Task) -> None:
        key = task.coalescingKey()
        if key is not None and self._local.get(key) is task:
            del self._local[key]

    def echo(self, data: bytes) -> Deferred[bytes]:
        """
        ECHO_REQ: fires with the data the server echoes.
        """
        d: Deferred[bytes] = Deferred()
        self._echoes.append(d)
        self.transport.write(encode(PacketType.ECHO_REQ, data, magic=REQ))  # type: ignore[union-attr]
        return d

    def setOption(self, name: bytes) -> Deferred[bytes]:
        """
        OPTION_REQ: fires with the option name, or fails with L{ServerError}.
        """
        d: Deferred[bytes] = Deferred()
        self._options.append(d)
        self.transport.write(encode(PacketType.OPTION_REQ, name, magic=REQ))  # type: ignore[union-attr]
        return d

    def getStatus(self, handle: bytes) -> Deferred[Tuple[bool, bool, int, int]]:
        """
        GET_STATUS: fires with C{(known, running, numerator, denominator)}.
        """
        d: Deferred[Tuple[bool, bool, int, int]] = Deferred()
        self._status.setdefault(handle, deque()).append(d)
        self.transport.write(encode(PacketType.GET_STATUS, handle, magic=REQ))  # type: ignore[union-attr]
        return d

    def getStatusUnique(self, unique: bytes) -> Deferred[Tuple[bool, bool, int, int, int]]:
        """
        GET_STATUS_UNIQUE: fires with C{(known, running, numerator,
        denominator, waiting clients)}.
        """
        d: Deferred[Tuple[bool, bool, int, int, int]] = Deferred()
        self._statusUnique.setdefault(unique, deque()).append(d)
        self.transport.write(encode(PacketType.GET_STATUS_UNIQUE, unique, magic=REQ))  # type: ignore[union-attr]
        return d

    # Replies

    def packetReceived(self, ptype: int, args: List[bytes], payload: bytes) -> None:
        handler = _CLIENT_HANDLERS.get(ptype)
        if handler is None:
            super().packetReceived(ptype, args, payload)
        else:
            handler(self, args, payload)

    def _jobCreated(self, args: List[bytes], payload: bytes) -> None:
        if not self._awaitingCreated:
            self.log.warn("JOB_CREATED for no submission")
            return
        task = self._awaitingCreated.popleft()
        handle = args[0]
        if task.result.called and not task._followers:
            # Cancelled while waiting: nothing more to deliver.
            task.handle = handle
            self._dropLocal(task)
            return
        task._created(handle)
        if task.background:
            self._dropLocal(task)
            task._succeed(handle)
        else:
            self._tasks[handle] = task

    def _error(self, args: List[bytes], payload: bytes) -> None:
        code, text = args
        if code == b"UNKNOWN_OPTION" and self._options:
            self._options.popleft().errback(ServerError(code, text))
        elif self._awaitingCreated and code not in (b"JOB_NOT_FOUND",):
            task = self._awaitingCreated.popleft()
            self._dropLocal(task)
            task._fail(ServerError(code, text))
        else:
            self.log.warn(
                "Server error {code}: {text}",
                code=code.decode("ascii", "replace"),
                text=text.decode("utf-8", "replace"),
            )

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
            task._event(PacketType.WORK_STATUS, (_atoi(args[1]), _atoi(args[2])))  # type: ignore[arg-type]

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
            task._fail(JobFailed(handle))

    def _workException(self, args: List[bytes], payload: bytes) -> None:
        handle, data = args
        task = self._finished(handle)
        if task is not None:
            task._fail(JobException(handle, data))

    def _statusRes(self, args: List[bytes], payload: bytes) -> None:
        handle, known, running, numerator, denominator = args
        waiters = self._status.get(handle)
        if not waiters:
            return
        d = waiters.popleft()
        if not waiters:
            del self._status[handle]
        d.callback((known == b"1", running == b"1", _atoi(numerator), _atoi(denominator)))

    def _statusResUnique(self, args: List[bytes], payload: bytes) -> None:
        unique, known, running, numerator, denominator, clients = args
        waiters = self._statusUnique.get(unique)
        if not waiters:
            return
        d = waiters.popleft()
        if not waiters:
            del self._statusUnique[unique]
        d.callback(
            (
                known == b"1",
                running == b"1",
                _atoi(numerator),
                _atoi(denominator),
                _atoi(clients),
            )
        )

    def _echoRes(self, args: List[bytes], payload: bytes) -> None:
        if self._echoes:
            self._echoes.popleft().callback(payload)

    def _optionRes(self, args: List[bytes], payload: bytes) -> None:
        if self._options:
            self._options.popleft().callback(args[0])

    def _noop(self, args: List[bytes], payload: bytes) -> None:
        pass

    def whenLost(self, handler: Callable[[GearmanClientProtocol, List[Task]], object]) -> None:
        """
        Call C{handler(connection, unfinishedTasks)} when the connection is
        lost; the tasks are not failed then, so the handler may resubmit.
        Without a handler they fail with L{ConnectionLost}.
        """
        self._lostHandlers.append(handler)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.connected = False
        unfinished = [t for t in self._awaitingCreated if not t.result.called]
        unfinished.extend(t for t in self._tasks.values() if not t.result.called)
        self._awaitingCreated.clear()
        self._tasks.clear()
        self._local.clear()
        lost = ConnectionLost("connection to the job server lost")
        for queue in (self._echoes, self._options):
            while queue:
                queue.popleft().errback(lost)
        for waiters in list(self._status.values()) + list(self._statusUnique.values()):
            while waiters:
                waiters.popleft().errback(lost)  # type: ignore[attr-defined]
        self._status.clear()
        self._statusUnique.clear()
        if self._lostHandlers:
            for handler in self._lostHandlers:
                handler(self, unfinished)
        else:
            for task in unfinished:
                task._fail(ConnectionLost("connection to the job server lost"))


def _atoi(value: bytes) -> int:
    digits = value.strip()
    try:
        return int(digits)
    except ValueError:
        return 0


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

    def __init__(self, exceptions: bool = True) -> None:
        self.exceptions = exceptions

    def buildProtocol(self, addr: object) -> GearmanClientProtocol:
        p = GearmanClientProtocol(self.exceptions)
        p.factory = self
        return p


class _Server:
    """
    One job server of a client's pool and its current connection.
    """

    def __init__(self, name: str, service: ClientService) -> None:
        self.name = name
        self.service = service
        self.connection: Optional[GearmanClientProtocol] = None
        self.hashKey = name.encode("utf-8")


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
    ) -> None:
        """
        @param servers: C{"host:port"} strings (port 4730 if left out),
            Twisted client endpoint descriptions (C{tcp:...}, C{tls:...},
            C{unix:...}), or endpoint objects.
        @param exceptions: ask each server to forward WORK_EXCEPTION
            (otherwise exceptions arrive as plain failures).
        @param timeout: default seconds a task may take before its result
            fails with L{JobTimeout}; L{None} for no limit.
        @param connectTimeout: seconds a submission waits for any server to
            be connected before it fails with L{ServerUnavailable}.
        @param maxAttempts: how many servers one task may be submitted to;
            by default one more than the number of servers.
        @param retryPolicy: reconnection delays, as for L{ClientService}.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor  # type: ignore[assignment]
        self.reactor = reactor
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self._factory = GearmanClientFactory(exceptions)
        self._servers: List[_Server] = []
        self._waiting: List[Tuple[Task, Deferred[None]]] = []
        self._next = 0
        for spec in servers:
            endpoint, name = clientEndpoint(reactor, spec)
            service = ClientService(
                endpoint,
                self._factory,
                retryPolicy=retryPolicy or backoffPolicy(maxDelay=30.0),
                clock=reactor,
                prepareConnection=self._prepare(len(self._servers)),
            )
            service.setServiceParent(self)
            self._servers.append(_Server(name, service))
        if not self._servers:
            raise ValueError("a GearmanClient needs at least one server")
        self.maxAttempts = maxAttempts if maxAttempts is not None else len(self._servers) + 1

    def _prepare(self, index: int) -> Callable[[GearmanClientProtocol], None]:
        def prepare(connection: GearmanClientProtocol) -> None:
            server = self._servers[index]
            server.connection = connection
            connection.whenLost(lambda c, tasks: self._lost(server, c, tasks))
            waiting, self._waiting = self._waiting, []
            for task, timer in waiting:
                if timer.active():  # type: ignore[attr-defined]
                    timer.cancel()  # type: ignore[attr-defined]
                self._send(task)

        return prepare

    def _lost(
        self, server: _Server, connection: GearmanClientProtocol, tasks: List[Task]
    ) -> None:
        if server.connection is connection:
            server.connection = None
        for task in tasks:
            if task.background and task.handle is not None:
                continue
            self._send(task, exclude=server)

    @property
    def servers(self) -> List[str]:
        """
        The names of the servers in the pool.
        """
        return [server.name for server in self._servers]

    def connectedServers(self) -> List[str]:
        """
        The names of the servers connected now.
        """
        return [s.name for s in self._servers if s.connection is not None and s.connection.connected]

    def whenConnected(self) -> Deferred[None]:
        """
        Fire once at least one server is connected.
        """
        if self.connectedServers():
            return succeed(None)
        return DeferredList(
            [server.service.whenConnected() for server in self._servers],
            fireOnOneCallback=True,
            consumeErrors=True,
        ).addCallback(lambda _: None)

    # Choosing a server

    def _candidates(self, task: Task, exclude: Optional[_Server] = None) -> List[_Server]:
        live = [
            s
            for s in self._servers
            if s is not exclude and s.connection is not None and s.connection.connected
        ]
        if not live:
            return live
        if task.unique and task.unique != b"-":
            key = task.function + b"\0" + task.unique
            live.sort(key=lambda s: hashlib.md5(s.hashKey + b"\0" + key).digest(), reverse=True)
            return live
        self._next = (self._next + 1) % len(live)
        return live[self._next :] + live[: self._next]

    def _send(self, task: Task, exclude: Optional[_Server] = None) -> None:
        if task.result.called:
            return
        if task.attempts >= self.maxAttempts:
            task._fail(ServerUnavailable("no job server could finish the job"))
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
            self._waiting = [(t, d) for t, d in self._waiting if t is not task]
            task._fail(ServerUnavailable("no job server is connected"))

        timer = self.reactor.callLater(self.connectTimeout, giveUp)
        self._waiting.append((task, timer))  # type: ignore[arg-type]

    # Public API

    def submit(
        self,
        function: Union[bytes, str],
        data: Union[bytes, str] = b"",
        unique: Union[bytes, str, None] = None,
        priority: str = NORMAL,
        background: bool = False,
        when: Optional[int] = None,
        timeout: Optional[float] = None,
        onData: Optional[Callable[[bytes], object]] = None,
        onWarning: Optional[Callable[[bytes], object]] = None,
        onStatus: Optional[Callable[[int, int], object]] = None,
    ) -> Task:
        """
        Submit a job and return its L{Task}.

        @param unique: the unique key: jobs with equal keys run once and
            every foreground submitter gets the result.  C{b"-"} asks the
            server to coalesce on the data.  Empty or L{None}: no coalescing.
        @param priority: L{HIGH}, L{NORMAL} or L{LOW}.
        @param background: run detached: C{result} fires with the handle
            once the server has queued the job.
        @param when: epoch seconds before which the (background) job must
            not run (SUBMIT_JOB_EPOCH).
        @param timeout: seconds before C{result} fails with L{JobTimeout};
            the client's default if L{None}.

        Cancelling C{result} only stops this client waiting: the server knows
        no way to withdraw one submission, so the job still runs unless every
        client of it disconnects first (then gearmand drops a queued one).
        """
        functionBytes = _bytes(function)
        task = Task(
            functionBytes,
            _bytes(data),
            _bytes(unique) if unique else b"",
            priority,
            background or when is not None,
            when,
            onData,
            onWarning,
            onStatus,
        )
        if priority not in (HIGH, NORMAL, LOW):
            task._fail(ValueError("priority must be high, normal or low"))
            return task
        if len(task.unique) > MAX_UNIQUE:
            task._fail(ValueError("unique keys are at most %d bytes" % (MAX_UNIQUE,)))
            return task
        if when is not None and priority != NORMAL:
            task._fail(ValueError("epoch jobs always run at normal priority"))
            return task
        limit = self.timeout if timeout is None else timeout
        if limit is not None:
            task.result.addTimeout(limit, self.reactor, self._timedOut(task))  # type: ignore[arg-type]
        self._send(task)
        return task

    @staticmethod
    def _timedOut(task: Task) -> Callable[[object, float], object]:
        def onTimeout(result: object, seconds: float) -> object:
            if isinstance(result, Failure) and result.check(CancelledError):
                return Failure(JobTimeout(task.handle, seconds))
            return result

        return onTimeout

    def submitJob(self, function: Union[bytes, str], data: Union[bytes, str] = b"", **kwargs: object) -> Deferred[bytes]:
        """
        Submit a job; return its C{result} Deferred.
        """
        return self.submit(function, data, **kwargs).result  # type: ignore[arg-type]

    def submitBatch(
        self, jobs: Sequence[Tuple[Union[bytes, str], Union[bytes, str]]], **kwargs: object
    ) -> Deferred[List[Union[bytes, Failure]]]:
        """
        Submit many C{(function, data)} jobs at once, pipelined, and fire with
        their results in order: each the WORK_COMPLETE data, or a L{Failure}.
        """
        tasks = [self.submit(function, data, **kwargs) for function, data in jobs]  # type: ignore[arg-type]
        results: List[Union[bytes, Failure, None]] = [None] * len(tasks)
        done: Deferred[List[Union[bytes, Failure]]] = Deferred()
        remaining = [len(tasks)]
        if not tasks:
            done.callback([])
            return done

        def collect(result: Union[bytes, Failure], index: int) -> None:
            results[index] = result
            remaining[0] -= 1
            if not remaining[0]:
                done.callback(results)  # type: ignore[arg-type]

        for index, task in enumerate(tasks):
            task.result.addBoth(collect, index)
        return done

    def _connection(self, server: Optional[str] = None) -> Optional[GearmanClientProtocol]:
        for s in self._servers:
            if (server is None or s.name == server) and s.connection is not None and s.connection.connected:
                return s.connection
        return None

    def getStatus(self, handle: Union[bytes, str], server: Optional[str] = None) -> Deferred[Tuple[bool, bool, int, int]]:
        """
        Ask a server (the first connected one by default; handles are only
        known to the server that made them) about a job.

        @return: fires with C{(known, running, numerator, denominator)}.
        """
        connection = self._connection(server)
        if connection is None:
            return fail(ServerUnavailable("no job server is connected"))
        return connection.getStatus(_bytes(handle))

    def getStatusUnique(self, function: Union[bytes, str], unique: Union[bytes, str]) -> Deferred[Tuple[bool, bool, int, int, int]]:
        """
        Ask the server that jobs with C{unique} go to about such a job.

        @return: fires with C{(known, running, numerator, denominator,
            waiting clients)}.
        """
        probe = Task(_bytes(function), b"", _bytes(unique))
        candidates = self._candidates(probe)
        if not candidates:
            return fail(ServerUnavailable("no job server is connected"))
        return candidates[0].connection.getStatusUnique(_bytes(unique))  # type: ignore[union-attr]

    def echo(self, data: Union[bytes, str] = b"ping", server: Optional[str] = None) -> Deferred[bytes]:
        """
        ECHO_REQ to a server; fires with the echoed data.
        """
        connection = self._connection(server)
        if connection is None:
            return fail(ServerUnavailable("no job server is connected"))
        return connection.echo(_bytes(data))

    def stopService(self) -> Deferred[None]:
        """
        Disconnect from every server; tasks still waiting fail with
        L{ConnectionLost}.
        """
        waiting, self._waiting = self._waiting, []
        for task, timer in waiting:
            if timer.active():  # type: ignore[attr-defined]
                timer.cancel()  # type: ignore[attr-defined]
            task._fail(ServerUnavailable("the client was stopped"))
        for server in self._servers:
            connection = server.connection
            if connection is not None:
                connection._lostHandlers = []
        return super().stopService()  # type: ignore[return-value]
