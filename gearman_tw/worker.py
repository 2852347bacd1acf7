# -*- test-case-name: tests.test_worker -*-
"""
A Gearman worker hosted as a Twisted service.

    def reverse(job):
        return job.data[::-1]

    worker = GearmanWorker(["127.0.0.1:4730"])
    worker.register("reverse", reverse)
    worker.setServiceParent(application)

A function gets a L{Job} and returns bytes (or str, or a Deferred of
either): that becomes WORK_COMPLETE.  An exception (or failed Deferred)
becomes WORK_EXCEPTION with the exception's text, which ends the job;
C{job.fail()} or raising L{JobFailed} sends WORK_FAIL instead.

The protocol runs one job at a time per connection, so a worker that runs N
jobs at once keeps N connections to each server, and hands out N I{slots}
among them: a connection asks a server for a job only while it holds a
slot, so no more than N jobs run at once whichever servers they come from.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union

from twisted.application.internet import backoffPolicy
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from gearman_tw.connection import DEFAULT_HEARTBEAT, DEFAULT_HEARTBEAT_TIMEOUT, JobServerConnection
from gearman_tw.endpoints import clientEndpoint
from gearman_tw.errors import JobFailed, ServerUnavailable
from gearman_tw.interfaces import IGearmanWorker
from gearman_tw.protocol import MAX_ARGUMENT_SIZE, REQ, PacketType, encode
from gearman_tw.reconnect import Reconnector

#: Seconds a stopping worker waits for running jobs before disconnecting
#: (the server then gives the jobs to another worker).
DEFAULT_DRAIN_TIMEOUT = 30.0

FunctionResult = Union[bytes, str, None, "Deferred[Union[bytes, str, None]]"]
WorkFunction = Callable[["Job"], FunctionResult]


def _bytes(value: object, what: str = "a Gearman function's result") -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError("%s is not valid UTF-8 text: %s" % (what, e)) from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError("%s must be bytes or str, not %s" % (what, type(value).__name__))


def _name(value: object) -> bytes:
    if not isinstance(value, (bytes, str)):
        raise TypeError("a function name must be bytes or str, not %s" % (type(value).__name__,))
    name = _bytes(value, "a function name")
    if not name or b"\0" in name or len(name) >= MAX_ARGUMENT_SIZE:
        raise ValueError("a function name must be 1 to %d bytes without NUL: %r" % (MAX_ARGUMENT_SIZE - 1, value))
    return name


def _count(value: object, what: str, allowNone: bool = False) -> Optional[int]:
    if value is None and allowNone:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (what, type(value).__name__))
    if value < 1:
        raise ValueError("%s must be at least 1, not %d" % (what, value))
    return value


def _seconds(value: object, what: str, allowNone: bool = True, positive: bool = True) -> Optional[float]:
    """
    C{value} as seconds: finite, and more than 0 unless C{positive} is
    false (then at least 0).
    """
    if value is None and allowNone:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number of seconds, not %s" % (what, type(value).__name__))
    low = 0 < value if positive else 0 <= value
    if not (low and value < 10.0**9):
        raise ValueError(
            "%s must be %s 0 seconds and finite, not %r" % (what, "more than" if positive else "at least", value)
        )
    return float(value)


@dataclass
class Function:
    """
    A registered function.

    @ivar timeout: seconds the server lets one job run before giving it to
        another worker (CAN_DO_TIMEOUT), or L{None}.
    @ivar threaded: run in the worker's thread pool instead of the reactor.
    @ivar concurrency: jobs of this function run at once, on connections of
        its own; L{None} to share the worker's connections.
    """

    name: bytes
    callable: WorkFunction
    timeout: Optional[float] = None
    threaded: bool = False
    concurrency: Optional[int] = None

    def ability(self) -> bytes:
        """
        The CAN_DO or CAN_DO_TIMEOUT packet that registers it.
        """
        if self.timeout:
            milliseconds = b"%d" % (max(1, int(self.timeout * 1000)),)
            return encode(PacketType.CAN_DO_TIMEOUT, self.name, milliseconds, magic=REQ)
        return encode(PacketType.CAN_DO, self.name, magic=REQ)


class Job:
    """
    A job handed to a function.

    Its methods may be called from the reactor thread or, for threaded
    functions, from the thread running the job.  Once the job has ended
    (completed, failed, or its connection lost) they send nothing.

    @ivar handle: the job handle.
    @ivar function: the function name.
    @ivar unique: the unique key (empty if none).
    @ivar data: the workload.
    @ivar finished: whether the job has ended.
    """

    def __init__(
        self,
        connection: "GearmanWorkerProtocol",
        handle: bytes,
        function: bytes,
        unique: bytes,
        data: bytes,
        threaded: bool = False,
    ) -> None:
        self.handle = handle
        self.function = function
        self.unique = unique
        self.data = data
        self._connection = connection
        self._threaded = threaded
        self.finished = False

    def __repr__(self) -> str:
        return "<Job %r %r>" % (self.function, self.handle)

    def _send(self, ptype: int, *args: bytes) -> None:
        if self._threaded:
            self._connection.reactor.callFromThread(self._connection.sendFor, self, ptype, *args)
        else:
            self._connection.sendFor(self, ptype, *args)

    def sendData(self, data: Union[bytes, str]) -> None:
        """
        Send WORK_DATA (a chunk of the result) to the job's clients.

        @raise TypeError: C{data} is not bytes or str.
        """
        self._send(PacketType.WORK_DATA, self.handle, _bytes(data, "data"))

    def sendWarning(self, data: Union[bytes, str]) -> None:
        """
        Send WORK_WARNING to the job's clients.

        @raise TypeError: C{data} is not bytes or str.
        """
        self._send(PacketType.WORK_WARNING, self.handle, _bytes(data, "data"))

    def sendStatus(self, numerator: int, denominator: int) -> None:
        """
        Send WORK_STATUS: C{numerator} of C{denominator} done.

        @raise TypeError: either is not an int.
        """
        for value in (numerator, denominator):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("status must be given as ints, not %s" % (type(value).__name__,))
        self._send(PacketType.WORK_STATUS, self.handle, b"%d" % (numerator,), b"%d" % (denominator,))

    def fail(self) -> None:
        """
        End the job with WORK_FAIL; what the function returns is then
        ignored.
        """
        self._send(PacketType.WORK_FAIL, self.handle)

    def sendException(self, data: Union[bytes, str]) -> None:
        """
        End the job with WORK_EXCEPTION carrying C{data} as it is (binary
        data too); what the function returns is then ignored.

        @raise TypeError: C{data} is not bytes or str.
        """
        self._send(PacketType.WORK_EXCEPTION, self.handle, _bytes(data, "data"))


class Slots:
    """
    The right to have a job: at most C{size} connections sharing it grab
    or run a job at once.  Connections that want one wait in turn.

    @ivar size: how many slots there are.
    @ivar used: how many are held.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self.closed = False
        self._queue: Deque[Any] = deque()

    def request(self, connection: Union["GearmanWorkerProtocol", "_LateStart"]) -> bool:
        """
        Take a slot for C{connection} if one is free; otherwise queue it to
        be given one (L{GearmanWorkerProtocol.slotGranted}) when one is.
        """
        if self.closed:
            return False
        if self.used < self.size and not self._queue:
            self.used += 1
            return True
        if connection not in self._queue:
            self._queue.append(connection)
        return False

    def withdraw(self, connection: "GearmanWorkerProtocol") -> None:
        """
        C{connection} no longer wants a slot.
        """
        if connection in self._queue:
            self._queue.remove(connection)

    def release(self) -> None:
        """
        Give a slot back: the longest waiting connection gets it.
        """
        self.used -= 1
        while self._queue and self.used < self.size and not self.closed:
            connection = self._queue.popleft()
            self.used += 1
            connection.slotGranted()

    def close(self) -> None:
        """
        Give out no more slots; jobs waiting for one start anyway.
        """
        self.closed = True
        queue, self._queue = self._queue, deque()
        for waiter in queue:
            if isinstance(waiter, _LateStart):
                waiter.startAnyway()


class _LateStart:
    """
    A job waiting for a slot of its function's group of now (see
    L{GearmanWorkerProtocol._run}).
    """

    def __init__(self, connection: "GearmanWorkerProtocol", job: "Job", function: Function, slots: Slots) -> None:
        self.connection = connection
        self.job = job
        self.function = function
        self.slots = slots

    def slotGranted(self) -> None:
        """
        A slot is free: run the job.
        """
        self.connection._start(self.job, self.function, self.slots)

    def startAnyway(self) -> None:
        """
        No slot will come (the worker stops): run the job over the limit
        rather than leave it waiting.
        """
        self.slots.used += 1
        self.slotGranted()


class _Group:
    """
    Functions that share connections and a concurrency limit.

    @ivar functions: the functions, by name (changed by register and
        unregister while running).
    @ivar concurrency: connections per server, and slots in all (or per
        server).
    """

    def __init__(self, functions: Dict[bytes, Function], concurrency: int, servers: int, perServer: bool) -> None:
        self.functions = functions
        self.concurrency = concurrency
        shared = Slots(concurrency)
        self.slots = [Slots(concurrency) if perServer else shared for _ in range(servers)]
        self.reconnectors: List[Reconnector] = []
        self.connections: List[GearmanWorkerProtocol] = []


class GearmanWorkerProtocol(JobServerConnection):
    """
    One worker connection: registers its group's functions, then runs one
    job at a time, asking for one only while it holds a slot, and sleeping
    (PRE_SLEEP) until the server NOOPs it when there is none.

    @ivar job: the job running now, if any.
    @ivar hasSlot: whether it holds a slot (is grabbing or running a job).
    """

    def __init__(
        self,
        worker: "GearmanWorker",
        functions: Union[Sequence[Function], Dict[bytes, Function]],
        slots: Optional[Slots] = None,
        server: int = 0,
        group: Optional[_Group] = None,
    ) -> None:
        super().__init__(worker.reactor, worker.heartbeat, worker.heartbeatTimeout)
        self.worker = worker
        self.reactor: Any = worker.reactor
        self.functions = functions if isinstance(functions, dict) else {f.name: f for f in functions}
        self.slots = slots if slots is not None else Slots(1)
        self.server = server
        self.group = group
        self.job: Optional[Job] = None
        self.hasSlot = False
        self.sleeping = False
        self.grabbing = False
        self._changes = 0
        self._confirmed = -1
        # The ability packet the server has for each name on this
        # connection, and changes that wait for it to be idle (None: a
        # withdrawal).
        self._announced: Dict[bytes, bytes] = {}
        self._pending: Dict[bytes, Optional[bytes]] = {}

    @property
    def registered(self) -> bool:
        """
        Whether the server has confirmed every ability change sent so far.
        """
        return self.ready and self._confirmed == self._changes

    def send(self, ptype: int, *args: bytes) -> None:
        if self.connected:
            self.transport.write(encode(ptype, *args, magic=REQ))  # type: ignore[union-attr]

    def sendFor(self, job: Job, ptype: int, *args: bytes) -> None:
        """
        Send a packet about C{job}, unless the job has ended (or its
        connection, and with it the job, was lost).  WORK_FAIL and
        WORK_EXCEPTION end it.
        """
        if job.finished or self.job is not job:
            return
        if ptype in (PacketType.WORK_FAIL, PacketType.WORK_EXCEPTION):
            job.finished = True
        self.send(ptype, *args)

    def greet(self) -> None:
        if self.group is not None:
            self.group.connections.append(self)
        self.send(PacketType.SET_CLIENT_ID, self.worker.clientId)
        self._announced = {f.name: f.ability() for f in self.functions.values()}
        if self.connected:
            self.transport.writeSequence(list(self._announced.values()))  # type: ignore[union-attr]
        self._confirmed = self._changes
        self.wantWork()

    def _handshaken(self, payload: bytes) -> None:
        super()._handshaken(payload)
        self.worker._registrationChanged()

    def announce(self, function: Function) -> None:
        """
        Register C{function} on this connection (CAN_DO or CAN_DO_TIMEOUT):
        at once if the server does not know the name here, or in place of a
        withdrawal still waiting to be sent; a sleeping connection wakes to
        ask for work it may now do.  Changing the timeout of a name the
        server knows means withdrawing it first, so that waits as a
        withdrawal does.
        """
        packet = function.ability()
        name = function.name
        known = self._announced.get(name)
        if known == packet:
            self._pending.pop(name, None)
        elif known is None:
            self._pending.pop(name, None)
            self._announced[name] = packet
            self._changeAbilities([packet])
        else:
            self._pending[name] = packet
            self._applyPending()
        self._wake()

    def withdraw(self, name: bytes) -> None:
        """
        Withdraw the function C{name} (CANT_DO), as soon as no job is
        running or on its way on this connection: a job server requeues the
        jobs a connection holds for a function it withdraws, so that job
        would run twice.
        """
        if name in self._announced:
            self._pending[name] = None
            self._applyPending()

    def _applyPending(self) -> None:
        """
        Send the withdrawals and timeout changes that waited for this
        connection to be idle, if it is.
        """
        if self.job is not None or self.grabbing or not self._pending:
            return
        pending, self._pending = self._pending, {}
        packets = []
        for name, packet in pending.items():
            packets.append(encode(PacketType.CANT_DO, name, magic=REQ))
            if packet is None:
                self._announced.pop(name, None)
            else:
                packets.append(packet)
                self._announced[name] = packet
        self._changeAbilities(packets)

    def _changeAbilities(self, packets: List[bytes]) -> None:
        """
        Send ability changes and confirm them with an ECHO.
        """
        if not self.connected:
            return
        self.transport.writeSequence(packets)  # type: ignore[union-attr]
        self._changes += 1
        change = self._changes

        def confirmed(_: bytes) -> None:
            self._confirmed = max(self._confirmed, change)
            self.worker._registrationChanged()

        self.echo().addCallbacks(confirmed, lambda _: None)

    def silent(self) -> None:
        """
        A sleeping connection that heard nothing for a heartbeat's time asks
        for work anyway: a wake-up (NOOP) that never came, lost to a
        server's bug, costs one heartbeat, not the jobs forever.
        """
        self._wake()

    def _wake(self) -> None:
        """
        A sleeping connection asks for work again.
        """
        if self.sleeping:
            self.sleeping = False
            self.wantWork()

    # Slots and grabbing

    def wantWork(self) -> None:
        """
        Ask for a job as soon as this connection holds a slot.
        """
        if self.worker.stopping or not self.connected or self.job is not None:
            return
        if self.hasSlot or self.slots.request(self):
            self.hasSlot = True
            self._grab()

    def slotGranted(self) -> None:
        """
        L{Slots} gives this connection a slot it waited for.
        """
        self.hasSlot = True
        if self.worker.stopping or not self.connected or self.job is not None or self.grabbing:
            self._releaseSlot()
        else:
            self._grab()

    def _grab(self) -> None:
        if not self.grabbing:
            self.sleeping = False
            self.grabbing = True
            self.send(PacketType.GRAB_JOB_UNIQ)

    def _releaseSlot(self) -> None:
        if self.hasSlot:
            self.hasSlot = False
            self.slots.release()

    def packetReceived(self, ptype: int, args: List[bytes], payload: bytes) -> None:
        if ptype == PacketType.NOOP:
            self._wake()
        elif ptype == PacketType.NO_JOB:
            self.grabbing = False
            self._applyPending()
            self._releaseSlot()
            if not self.worker.stopping:
                self.sleeping = True
                self.send(PacketType.PRE_SLEEP)
            self.worker._stateChanged()
        elif ptype in (PacketType.JOB_ASSIGN_UNIQ, PacketType.JOB_ASSIGN_ALL):
            self.grabbing = False
            handle, name, unique = args[0], args[1], args[2]
            self._run(handle, name, unique, args[-1])
        elif ptype == PacketType.JOB_ASSIGN:
            self.grabbing = False
            self._run(args[0], args[1], b"", args[2])
        elif ptype == PacketType.ERROR:
            self.log.warn(
                "Job server error {code}: {text}",
                code=args[0].decode("ascii", "replace"),
                text=args[1].decode("utf-8", "replace"),
            )
        else:
            super().packetReceived(ptype, args, payload)

    # Running jobs

    def _run(self, handle: bytes, name: bytes, unique: bytes, data: bytes) -> None:
        function = self.functions.get(name) or self.worker.functions.get(name) or self.worker._retired.get(name)
        if function is None or self.job is not None:
            # Never ours, or a second job at once: a server's mistake.
            self.log.warn("Job {handle} of {function} is not ours: failing it", handle=handle, function=name)
            self.send(PacketType.WORK_FAIL, handle)
            if self.job is None:
                self._releaseSlot()
                self.wantWork()
                self.worker._stateChanged()
            return
        if not self.hasSlot:
            # Assigned without a slot (a server answering a GRAB twice): run
            # it anyway rather than lose it, over the limit.
            self.hasSlot = True
            self.slots.used += 1
        job = Job(self, handle, name, unique, data, function.threaded)
        self.job = job
        slots = self.worker._slotsElsewhere(job, self)
        if slots is not None and not slots.request(_LateStart(self, job, function, slots)):
            # Its function's limit is now another group's, and full: the
            # job waits here for a slot of it (the server waits too).
            return
        self._start(job, function, slots)

    def _start(self, job: Job, function: Function, slots: Optional[Slots] = None) -> None:
        """
        Run C{job}'s function; C{slots} is another group's, whose slot it
        holds too.
        """
        self.worker._jobStarted(job, self, slots)
        if job.finished or self.job is not job:
            # Its connection was lost while it waited: the server has given
            # it to another worker.
            self._done(None, job)
            return
        if function.threaded:
            d = deferToThreadPool(self.reactor, self.worker.threadPool(), function.callable, job)
        else:
            d = maybeDeferred(function.callable, job)
        d.addCallbacks(self._completed, self._failed, callbackArgs=(job,), errbackArgs=(job,))
        d.addErrback(self._failed, job)
        d.addBoth(self._done, job)

    def _completed(self, result: FunctionResult, job: Job) -> None:
        data = _bytes(result)
        if not job.finished and self.job is job:
            job.finished = True
            self.send(PacketType.WORK_COMPLETE, job.handle, data)

    def _failed(self, failure: Failure, job: Job) -> None:
        if job.finished or self.job is not job:
            return
        job.finished = True
        if failure.check(JobFailed):
            self.send(PacketType.WORK_FAIL, job.handle)
            return
        text = failure.getErrorMessage() or failure.type.__name__  # type: ignore[union-attr]
        self.log.warn(
            "Job {handle} ({function}) raised {error}: {text}",
            handle=job.handle.decode("ascii", "replace"),
            function=job.function.decode("utf-8", "replace"),
            error=failure.type.__name__,  # type: ignore[union-attr]
            text=text,
        )
        self.send(PacketType.WORK_EXCEPTION, job.handle, _bytes(text))

    def _done(self, result: object, job: Job) -> None:
        self.worker._jobEnded(job)
        if self.job is job:
            self.job = None
            self._applyPending()
            # Give the slot back, then ask again: a connection waiting for
            # a slot (another server's, perhaps) has its turn first.
            self._releaseSlot()
            self.wantWork()
        self.worker._stateChanged()

    @property
    def idle(self) -> bool:
        """
        Whether this connection neither waits for an answer to a GRAB nor
        runs a job.
        """
        return self.job is None and not self.grabbing

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self.group is not None and self in self.group.connections:
            self.group.connections.remove(self)
        # A running job's result can no longer be delivered (the server has
        # given the job back to its queue), but the function still runs and
        # keeps its slot until it ends.
        if self.job is not None:
            self.job.finished = True
        self.grabbing = False
        self.sleeping = False
        self.slots.withdraw(self)
        super().connectionLost(reason)
        if self.job is None:
            self._releaseSlot()
        self.worker._stateChanged()


class _WorkerFactory(Factory):
    def __init__(self, worker: "GearmanWorker", group: _Group, server: int) -> None:
        self.worker = worker
        self.group = group
        self.server = server

    def buildProtocol(self, addr: object) -> GearmanWorkerProtocol:
        protocol = GearmanWorkerProtocol(
            self.worker, self.group.functions, self.group.slots[self.server], self.server, self.group
        )
        protocol.factory = self
        return protocol


class _DaemonThreadPool(ThreadPool):
    """
    A thread pool whose threads do not keep the process alive: a job still
    running when the worker stops is abandoned (its server runs it again).
    """

    def threadFactory(self, *args: Any, **kwargs: Any) -> threading.Thread:  # type: ignore[override]
        thread = threading.Thread(*args, **kwargs)
        thread.daemon = True
        return thread


def _defaultClientId() -> bytes:
    return ("%s:%d" % (socket.gethostname(), os.getpid())).encode("utf-8")


@implementer(IGearmanWorker)
class GearmanWorker(MultiService):
    """
    A worker service.

    C{concurrency} is how many jobs run at once in all, whichever servers
    they come from (or per server, with C{perServer=True}).  The worker
    keeps that many connections to each server and lets only that many ask
    for a job at a time.  A function registered with a concurrency of its
    own gets connections and a limit of its own.

    Stopping it stops asking for jobs, waits up to C{drainTimeout} seconds
    for the jobs that started (also one whose assignment arrives after the
    stop began), then disconnects (the server requeues any still running).

    @ivar functions: the registered functions, by name.
    @ivar stopping: whether a stop is under way.
    """

    log = Logger()

    def __init__(
        self,
        servers: Sequence[Union[str, Any]],
        concurrency: int = 1,
        clientId: Union[bytes, str, None] = None,
        reactor: Optional[IReactorTime] = None,
        drainTimeout: float = DEFAULT_DRAIN_TIMEOUT,
        threads: int = 10,
        retryPolicy: Optional[Callable[[int], float]] = None,
        perServer: bool = False,
        heartbeat: Optional[float] = DEFAULT_HEARTBEAT,
        heartbeatTimeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    ) -> None:
        """
        @param servers: C{host:port} strings, endpoint descriptions or
            endpoint objects, as for L{gearman_tw.client.GearmanClient}.
        @param concurrency: jobs run at once, in all (see C{perServer}).
        @param clientId: what the servers' C{workers} command shows; host
            name and process id by default.
        @param reactor: the reactor (the global one if L{None}).
        @param drainTimeout: seconds a stop waits for running jobs.
        @param threads: the largest size of the pool threaded functions run in.
        @param retryPolicy: reconnection delays, as for Twisted's
            C{backoffPolicy} (at most 30 s apart by default).
        @param perServer: C{concurrency} counts jobs per server instead.
        @param heartbeat: seconds of silence after which a connection is
            asked for an ECHO; L{None} never to ask.
        @param heartbeatTimeout: seconds a server has to answer that ECHO,
            or the one after registering, before the connection is dropped
            as hung and made again.
        @raise TypeError: an argument has the wrong type.
        @raise ValueError: an argument has a wrong value.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor  # type: ignore[assignment]
        if isinstance(servers, (str, bytes)):
            raise TypeError("servers must be a list of servers, not one %s" % (type(servers).__name__,))
        self.servers = list(servers)
        if not self.servers:
            raise ValueError("a GearmanWorker needs at least one server")
        self.concurrency: int = _count(concurrency, "concurrency")  # type: ignore[assignment]
        self.threads: int = _count(threads, "threads")  # type: ignore[assignment]
        self.drainTimeout: float = _seconds(drainTimeout, "drainTimeout", allowNone=False, positive=False)  # type: ignore[assignment]
        self.heartbeat = _seconds(heartbeat, "heartbeat")
        self.heartbeatTimeout: float = _seconds(heartbeatTimeout, "heartbeatTimeout", allowNone=False)  # type: ignore[assignment]
        if retryPolicy is not None and not callable(retryPolicy):
            raise TypeError("retryPolicy must be callable")
        # It needs callLater, callFromThread and a thread pool's reactor.
        self.reactor: Any = reactor
        self.clientId = _bytes(clientId, "clientId") if clientId else _defaultClientId()
        if len(self.clientId) >= MAX_ARGUMENT_SIZE:
            raise ValueError("clientId must be shorter than %d bytes" % (MAX_ARGUMENT_SIZE,))
        if not isinstance(perServer, bool):
            raise TypeError("perServer must be True or False, not %s" % (type(perServer).__name__,))
        self.perServer = perServer
        self._endpoints = [clientEndpoint(reactor, server) for server in self.servers]
        self.functions: Dict[bytes, Function] = {}
        self.stopping = False
        self._threadPool: Optional[ThreadPool] = None
        self._retryPolicy = retryPolicy or backoffPolicy(maxDelay=30.0)
        self._shared: Optional[_Group] = None
        self._groups: Dict[bytes, _Group] = {}
        self._retired: Dict[bytes, Function] = {}
        self._registeredWaiters: List[Deferred[None]] = []
        # Groups of functions unregistered while their jobs still ran.
        self._retiring: List[_Group] = []
        # Every job whose function runs, by the connection it came on (which
        # may be lost meanwhile).
        self._running: Dict[Job, GearmanWorkerProtocol] = {}
        # Slots such jobs also hold in groups they did not come from.
        self._extraSlots: Dict[Job, List[Slots]] = {}
        # (condition, Deferred) fired once the condition holds.
        self._conditions: List[Tuple[Callable[[], bool], Deferred[None]]] = []
        self._stopped: Optional[Deferred[None]] = None
        self._restartAfterStop = False

    # Functions

    def register(
        self,
        name: Union[bytes, str],
        function: WorkFunction,
        timeout: Optional[float] = None,
        threaded: bool = False,
        concurrency: Optional[int] = None,
    ) -> None:
        """
        Register C{function} under C{name}, before or while running (then
        every connection announces it at once).  Registering a name again
        replaces its function.

        @param timeout: seconds the server lets one job run (CAN_DO_TIMEOUT).
        @param threaded: run in a thread (for blocking or CPU-bound code).
        @param concurrency: jobs of this function at once, on connections
            of its own (counted as the worker's C{concurrency} is).
        @raise TypeError: an argument has the wrong type.
        @raise ValueError: an argument has a wrong value.
        @raise RuntimeError: the worker is stopping.
        """
        key = _name(name)
        if not callable(function):
            raise TypeError("function must be callable, not %s" % (type(function).__name__,))
        limit = _seconds(timeout, "timeout")
        if not isinstance(threaded, bool):
            raise TypeError("threaded must be True or False")
        ownConcurrency = _count(concurrency, "concurrency", allowNone=True)
        if self.stopping:
            raise RuntimeError("the worker is stopping")
        new = Function(key, function, limit, threaded, ownConcurrency)
        old = self.functions.get(key)
        if old is not None and old.concurrency != new.concurrency:
            self._unregister(key)
            old = None
        self.functions[key] = new
        self._retired.pop(key, None)
        group = self._groupOf(new)
        fresh = group is None
        if group is None:
            size = self.concurrency if new.concurrency is None else new.concurrency
            group = _Group({}, size, len(self.servers), self.perServer)
            if new.concurrency is None:
                self._shared = group
            else:
                self._groups[key] = group
        group.functions[key] = new
        self._countRunning(key, group)
        if not fresh:
            self._announce(group, new)
        elif self.running:
            self._connectGroup(group)

    def _groupOf(self, function: Function) -> Optional[_Group]:
        """
        The group C{function}'s jobs run in now, if it has one yet.
        """
        return self._shared if function.concurrency is None else self._groups.get(function.name)

    def _jobEnded(self, job: Job) -> None:
        self._running.pop(job, None)
        for slots in self._extraSlots.pop(job, ()):
            slots.release()

    def _countRunning(self, key: bytes, group: _Group) -> None:
        """
        Jobs of C{key} still running from another group (it was registered
        again, or with another concurrency) hold a slot of C{group} too
        until they end, so that its limit counts them.
        """
        for job, connection in list(self._running.items()):
            if job.function == key:
                self._countIn(job, connection, group)

    def _slotsElsewhere(self, job: Job, connection: "GearmanWorkerProtocol") -> Optional[Slots]:
        """
        The slots of the group C{job}'s function belongs to now, if that is
        not the group of the connection it came on (it was registered again
        while the assignment was on its way).
        """
        function = self.functions.get(job.function)
        if function is None:
            return None
        group = self._groupOf(function)
        if group is None or group is connection.group:
            return None
        return group.slots[connection.server]

    def _jobStarted(self, job: Job, connection: "GearmanWorkerProtocol", slots: Optional[Slots]) -> None:
        """
        A job starts, holding a slot of C{slots} too if it is given.
        """
        self._running[job] = connection
        if slots is not None:
            self._extraSlots.setdefault(job, []).append(slots)

    def _countIn(self, job: Job, connection: "GearmanWorkerProtocol", group: _Group) -> None:
        if connection.group is group:
            return
        slots = group.slots[connection.server]
        held = self._extraSlots.setdefault(job, [])
        if slots not in held:
            slots.used += 1
            held.append(slots)

    def unregister(self, name: Union[bytes, str]) -> Deferred[None]:
        """
        Stop taking jobs of C{name}: every connection withdraws it
        (CANT_DO).  A job of it that is running, or whose assignment was
        already on its way, still runs to its end.

        @return: fires once no job of C{name} runs any more.
        @raise TypeError: C{name} is not bytes or str.
        @raise KeyError: no function is registered under C{name}.
        """
        key = _name(name)
        if key not in self.functions:
            raise KeyError("no function is registered as %r" % (name,))
        self._unregister(key)
        return self._whenNoJobsOf(key)

    def _unregister(self, key: bytes) -> None:
        function = self.functions.pop(key)
        self._retired[key] = function
        group = self._groups.pop(key) if function.concurrency is not None else self._shared
        if group is None:
            return
        group.functions.pop(key, None)
        for connection in list(group.connections):
            connection.withdraw(key)
        if function.concurrency is not None:
            self._retiring.append(group)
            self._disconnectGroup(group)

    def _announce(self, group: _Group, function: Function) -> None:
        for connection in list(group.connections):
            connection.announce(function)

    def _whenNoJobsOf(self, key: bytes) -> Deferred[None]:
        return self._when(lambda: not any(job.function == key for job in self._running))

    def _when(self, condition: Callable[[], bool]) -> Deferred[None]:
        """
        A Deferred that fires once C{condition()} holds (checked now, and
        whenever a job ends or a GRAB is answered).
        """
        if condition():
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._conditions.append((condition, d))
        return d

    def _stateChanged(self) -> None:
        """
        A job ended, a GRAB was answered or a connection lost: fire the
        Deferreds of L{_when} whose condition now holds.
        """
        if not self._conditions:
            return
        conditions, self._conditions = self._conditions, []
        for condition, d in conditions:
            if condition():
                d.callback(None)
            else:
                self._conditions.append((condition, d))

    def threadPool(self) -> ThreadPool:
        """
        The pool threaded functions run in, started on first use and stopped
        with the service.  Its threads do not keep the process alive.
        """
        if self._threadPool is None:
            self._threadPool = _DaemonThreadPool(0, self.threads, name="gearman-worker")
            self._threadPool.start()
        return self._threadPool

    # Connections

    def _activeGroups(self) -> List[_Group]:
        groups = [] if self._shared is None else [self._shared]
        return groups + list(self._groups.values())

    def _allGroups(self) -> List[_Group]:
        return self._activeGroups() + self._retiring

    def _connectGroup(self, group: _Group) -> None:
        for index, (endpoint, name) in enumerate(self._endpoints):
            factory = _WorkerFactory(self, group, index)
            for _ in range(group.concurrency):
                reconnector = Reconnector(
                    name,
                    endpoint,
                    factory,
                    self.reactor,
                    self._retryPolicy,
                    onLost=lambda connection, reason: self._registrationChanged(),
                    onFailed=lambda reconnector: self._registrationChanged(),
                )
                group.reconnectors.append(reconnector)
                reconnector.setServiceParent(self)

    def _idle(self, group: Optional[_Group] = None) -> bool:
        """
        Whether no job runs and no GRAB waits for its answer (in C{group},
        or anywhere).
        """
        jobs = self._running.values() if group is None else [c for c in self._running.values() if c.group is group]
        if any(True for _ in jobs):
            return False
        groups = self._allGroups() if group is None else [group]
        return all(c.idle for g in groups for c in g.connections)

    def _removeConnections(self, group: _Group) -> List[object]:
        """
        Remove a group's reconnectors from this service (which stops them
        if it runs); return what their stops return.
        """
        stops = [self.removeService(r) for r in group.reconnectors if r.parent is self]
        group.reconnectors = []
        return stops

    def _disconnectGroup(self, group: _Group) -> Deferred[None]:
        """
        Stop a retiring group's connections once its jobs have ended.
        """
        for slots in group.slots:
            slots.close()

        def stop(_: object) -> "Deferred[object]":
            stops = self._removeConnections(group)
            if group in self._retiring:
                self._retiring.remove(group)
            return DeferredList([d for d in stops if isinstance(d, Deferred)]).addCallback(lambda _: None)

        return self._when(lambda: self._idle(group)).addCallback(stop).addCallback(lambda _: None)

    def startService(self) -> None:
        if not self.functions:
            raise RuntimeError("a GearmanWorker needs at least one function")
        if self._stopped is not None:
            # A stop is still under way: start again once it is done.
            Service.startService(self)
            self._restartAfterStop = True
            return
        self._start()

    def _start(self) -> None:
        self.stopping = False
        # Connections added below start with the service, not before.
        self.running = False
        for group in self._activeGroups():
            for slots in group.slots:
                slots.closed = False
            if not group.reconnectors:
                self._connectGroup(group)
        super().startService()

    @property
    def connections(self) -> List[GearmanWorkerProtocol]:
        """
        The open connections.
        """
        return [c for group in self._allGroups() for c in group.connections]

    def runningJobs(self) -> List[Job]:
        """
        The jobs whose functions run now (also one whose connection was
        lost meanwhile, which can deliver nothing).
        """
        return list(self._running)

    # Registration

    def _serverState(self, index: int) -> str:
        """
        C{"registered"}, C{"unreachable"} or C{"pending"} for server
        C{index}.
        """
        groups = [g for g in self._activeGroups() if g.functions]
        if all(any(c.server == index and c.registered for c in g.connections) for g in groups):
            return "registered"
        # Each reconnector's factory is the _WorkerFactory of its server.
        reconnectors = [r for g in groups for r in g.reconnectors if r.factory.server == index]  # type: ignore[attr-defined]
        if not any(r.ready for r in reconnectors) and any(r.failures for r in reconnectors):
            return "unreachable"
        return "pending"

    def whenRegistered(self) -> Deferred[None]:
        """
        A new Deferred that fires once every function is registered with
        every job server that can be reached (each server has confirmed
        them, or failed to connect), and with at least one; it fails with
        L{ServerUnavailable} if the worker is not running or stops first.
        """
        if not self.running or self.stopping:
            return fail(ServerUnavailable("the worker is not running"))
        d: Deferred[None] = Deferred()
        self._registeredWaiters.append(d)
        self._registrationChanged()
        return d

    def _registrationChanged(self) -> None:
        if not self._registeredWaiters or not self.running or self.stopping:
            return
        states = [self._serverState(index) for index in range(len(self.servers))]
        if "pending" in states or "registered" not in states:
            return
        waiters, self._registeredWaiters = self._registeredWaiters, []
        for d in waiters:
            d.callback(None)

    # Stopping

    def stopService(self) -> Deferred[None]:
        """
        Stop asking for jobs, wait (up to C{drainTimeout}) for every job that
        started, however late its assignment came, then disconnect.
        Deferreds from L{whenRegistered} still waiting fail with
        L{ServerUnavailable}.
        """
        if self._stopped is not None:
            self._restartAfterStop = False
            return self._stopped
        self.stopping = True
        for group in self._allGroups():
            for slots in group.slots:
                slots.close()
        waiters, self._registeredWaiters = self._registeredWaiters, []
        for d in waiters:
            d.errback(ServerUnavailable("the worker was stopped before every function was registered"))
        bounded: Deferred[None] = Deferred()
        self._stopped = bounded

        def fire(_: object = None) -> None:
            if not bounded.called:
                if timer.active():
                    timer.cancel()
                bounded.callback(None)

        timer = self.reactor.callLater(self.drainTimeout, fire)  # type: ignore[attr-defined]
        self._when(self._idle).addCallback(fire)

        def disconnect(_: object) -> Deferred[None]:
            return MultiService.stopService(self)  # type: ignore[return-value]

        def cleanUp(_: object) -> None:
            for group in self._allGroups():
                self._removeConnections(group)
            self._retiring = []
            pool, self._threadPool = self._threadPool, None
            if pool is not None:
                # Joining a thread still running a job would freeze the
                # reactor: leave that to a thread of its own.
                threading.Thread(target=pool.stop, name="gearman-worker-stop", daemon=True).start()
            self._stopped = None
            if self._restartAfterStop:
                self._restartAfterStop = False
                self._start()

        bounded.addCallback(disconnect)
        bounded.addCallback(cleanUp)
        return bounded
