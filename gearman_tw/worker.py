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
jobs at once keeps N connections to each server.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.protocol import Factory
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from gearman_tw.connection import JobServerConnection
from gearman_tw.endpoints import clientEndpoint
from gearman_tw.errors import JobFailed
from gearman_tw.interfaces import IGearmanWorker
from gearman_tw.protocol import REQ, PacketType, encode

#: Seconds a stopping worker waits for running jobs before disconnecting
#: (the server then gives the jobs to another worker).
DEFAULT_DRAIN_TIMEOUT = 30.0

FunctionResult = Union[bytes, str, None, "Deferred[Union[bytes, str, None]]"]
WorkFunction = Callable[["Job"], FunctionResult]


def _bytes(value: Union[bytes, str, None]) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError("a Gearman function must return bytes or str, not %r" % (type(value),))


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


class Job:
    """
    A job handed to a function.

    Its methods may be called from the reactor thread or, for threaded
    functions, from the thread running the job.

    @ivar handle: the job handle.
    @ivar function: the function name.
    @ivar unique: the unique key (empty if none).
    @ivar data: the workload.
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
        """
        self._send(PacketType.WORK_DATA, self.handle, _bytes(data))

    def sendWarning(self, data: Union[bytes, str]) -> None:
        """
        Send WORK_WARNING to the job's clients.
        """
        self._send(PacketType.WORK_WARNING, self.handle, _bytes(data))

    def sendStatus(self, numerator: int, denominator: int) -> None:
        """
        Send WORK_STATUS: C{numerator} of C{denominator} done.
        """
        self._send(PacketType.WORK_STATUS, self.handle, b"%d" % (numerator,), b"%d" % (denominator,))

    def fail(self) -> None:
        """
        End the job with WORK_FAIL; what the function returns is then
        ignored.
        """
        self._send(PacketType.WORK_FAIL, self.handle)


class GearmanWorkerProtocol(JobServerConnection):
    """
    One worker connection: registers its functions, then grabs and runs one
    job at a time, sleeping (PRE_SLEEP) until the server NOOPs it.

    @ivar job: the job running now, if any.
    """

    def __init__(self, worker: "GearmanWorker", functions: Sequence[Function]) -> None:
        super().__init__()
        self.worker = worker
        self.reactor = worker.reactor
        self.functions = {f.name: f for f in functions}
        self.job: Optional[Job] = None
        self.sleeping = False
        self.connected = False
        self._idleWaiters: List[Deferred[None]] = []

    def send(self, ptype: int, *args: bytes) -> None:
        if self.connected:
            self.transport.write(encode(ptype, *args, magic=REQ))  # type: ignore[union-attr]

    def sendFor(self, job: Job, ptype: int, *args: bytes) -> None:
        """
        Send a packet about C{job}, unless the job has ended (or its
        connection, and with it the job, was lost).
        """
        if job.finished or self.job is not job:
            return
        if ptype == PacketType.WORK_FAIL:
            job.finished = True
        self.send(ptype, *args)

    def connectionMade(self) -> None:
        super().connectionMade()
        self.connected = True
        self.send(PacketType.SET_CLIENT_ID, self.worker.clientId)
        for function in self.functions.values():
            if function.timeout:
                milliseconds = b"%d" % (max(1, int(function.timeout * 1000)),)
                self.send(PacketType.CAN_DO_TIMEOUT, function.name, milliseconds)
            else:
                self.send(PacketType.CAN_DO, function.name)
        self.grab()

    def grab(self) -> None:
        """
        Ask for a job, unless busy or stopping.
        """
        if self.job is None and not self.worker.stopping and self.connected:
            self.sleeping = False
            self.send(PacketType.GRAB_JOB_UNIQ)

    def packetReceived(self, ptype: int, args: List[bytes], payload: bytes) -> None:
        if ptype == PacketType.NOOP:
            if self.sleeping:
                self.grab()
        elif ptype == PacketType.NO_JOB:
            if not self.worker.stopping:
                self.sleeping = True
                self.send(PacketType.PRE_SLEEP)
        elif ptype in (PacketType.JOB_ASSIGN_UNIQ, PacketType.JOB_ASSIGN_ALL):
            handle, name, unique = args[0], args[1], args[2]
            self._run(handle, name, unique, args[-1])
        elif ptype == PacketType.JOB_ASSIGN:
            self._run(args[0], args[1], b"", args[2])
        elif ptype == PacketType.ERROR:
            self.log.warn(
                "Job server error {code}: {text}",
                code=args[0].decode("ascii", "replace"),
                text=args[1].decode("utf-8", "replace"),
            )

    def _run(self, handle: bytes, name: bytes, unique: bytes, data: bytes) -> None:
        function = self.functions.get(name)
        if function is None:
            # Not ours (registered under another name since?): give it back.
            self.send(PacketType.WORK_FAIL, handle)
            self.grab()
            return
        job = Job(self, handle, name, unique, data, function.threaded)
        self.job = job
        if function.threaded:
            d = deferToThreadPool(self.reactor, self.worker.threadPool(), function.callable, job)
        else:
            d = maybeDeferred(function.callable, job)
        d.addCallbacks(self._completed, self._failed, callbackArgs=(job,), errbackArgs=(job,))
        d.addErrback(self._internalError, job)
        d.addBoth(self._done, job)

    def _completed(self, result: FunctionResult, job: Job) -> None:
        data = _bytes(result)  # type: ignore[arg-type]
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
        self.log.failure("Job {handle} raised", failure, handle=job.handle.decode("ascii", "replace"))
        text = failure.getErrorMessage() or failure.type.__name__  # type: ignore[union-attr]
        self.send(PacketType.WORK_EXCEPTION, job.handle, _bytes(text))

    def _internalError(self, failure: Failure, job: Job) -> None:
        # The function returned something that is not bytes or str.
        self._failed(failure, job)

    def _done(self, result: object, job: Job) -> None:
        if self.job is job:
            self.job = None
            waiters, self._idleWaiters = self._idleWaiters, []
            for waiter in waiters:
                waiter.callback(None)
            self.grab()

    def whenIdle(self) -> Deferred[None]:
        """
        Fire once no job runs on this connection.
        """
        if self.job is None:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idleWaiters.append(d)
        return d

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.connected = False
        self.worker._connectionLost(self)
        # A running job's result can no longer be delivered: the server has
        # given the job back to its queue.
        self.job = None
        waiters, self._idleWaiters = self._idleWaiters, []
        for waiter in waiters:
            waiter.callback(None)


class _WorkerFactory(Factory):
    def __init__(self, worker: "GearmanWorker", functions: Sequence[Function]) -> None:
        self.worker = worker
        self.functions = functions

    def buildProtocol(self, addr: object) -> GearmanWorkerProtocol:
        protocol = GearmanWorkerProtocol(self.worker, self.functions)
        protocol.factory = self
        return protocol


def _defaultClientId() -> bytes:
    return ("%s:%d" % (socket.gethostname(), os.getpid())).encode("utf-8")


@implementer(IGearmanWorker)
class GearmanWorker(MultiService):
    """
    A worker service: C{concurrency} connections to each job server, each
    running one job at a time; functions with a concurrency of their own get
    connections of their own.

    Stopping it stops taking jobs, waits up to C{drainTimeout} seconds for
    running ones, then disconnects (the server requeues any still running).
    """

    log = Logger()

    def __init__(
        self,
        servers: Sequence[Union[str, Any]],
        concurrency: int = 1,
        clientId: Union[bytes, str, None] = None,
        reactor: Any = None,
        drainTimeout: float = DEFAULT_DRAIN_TIMEOUT,
        threads: int = 10,
        retryPolicy: Optional[Callable[[int], float]] = None,
    ) -> None:
        """
        @param servers: C{host:port} strings, endpoint descriptions or
            endpoint objects, as for L{gearman_tw.client.GearmanClient}.
        @param concurrency: jobs run at once per server.
        @param clientId: what the servers' C{workers} command shows; host
            name and process id by default.
        @param threads: the largest size of the pool threaded functions run in.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not servers:
            raise ValueError("a GearmanWorker needs at least one server")
        self.reactor = reactor
        self.servers = list(servers)
        self.concurrency = concurrency
        self.clientId = _bytes(clientId) if clientId else _defaultClientId()
        self.drainTimeout = drainTimeout
        self.functions: Dict[bytes, Function] = {}
        self.stopping = False
        self._threads = threads
        self._threadPool: Optional[ThreadPool] = None
        self._retryPolicy = retryPolicy or backoffPolicy(maxDelay=30.0)
        self._connections: List[GearmanWorkerProtocol] = []
        self._clientServices: List[ClientService] = []

    def register(
        self,
        name: Union[bytes, str],
        function: WorkFunction,
        timeout: Optional[float] = None,
        threaded: bool = False,
        concurrency: Optional[int] = None,
    ) -> None:
        """
        Register C{function} under C{name}.  Register before starting the
        service.

        @param timeout: seconds the server lets one job run (CAN_DO_TIMEOUT).
        @param threaded: run in a thread (for blocking or CPU-bound code).
        @param concurrency: jobs of this function at once per server, on
            connections of its own.
        """
        if self.running:
            raise RuntimeError("register functions before starting the worker")
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        key = _bytes(name)
        self.functions[key] = Function(key, function, timeout, threaded, concurrency)

    def threadPool(self) -> ThreadPool:
        """
        The pool threaded functions run in, started on first use and stopped
        with the service.
        """
        if self._threadPool is None:
            self._threadPool = ThreadPool(0, self._threads, name="gearman-worker")
            self._threadPool.start()
        return self._threadPool

    def _groups(self) -> List[tuple]:
        shared = [f for f in self.functions.values() if f.concurrency is None]
        groups = []
        if shared:
            groups.append((shared, self.concurrency))
        for function in self.functions.values():
            if function.concurrency is not None:
                groups.append(([function], function.concurrency))
        return groups

    def startService(self) -> None:
        if not self.functions:
            raise RuntimeError("a GearmanWorker needs at least one function")
        self.stopping = False
        for server in self.servers:
            endpoint, _ = clientEndpoint(self.reactor, server)
            for functions, count in self._groups():
                factory = _WorkerFactory(self, functions)
                for _ in range(count):
                    service = ClientService(
                        endpoint,
                        factory,
                        retryPolicy=self._retryPolicy,
                        clock=self.reactor,
                        prepareConnection=self._connectionMade,
                    )
                    service.setServiceParent(self)
                    self._clientServices.append(service)
        super().startService()

    def _connectionMade(self, protocol: GearmanWorkerProtocol) -> None:
        self._connections.append(protocol)

    def _connectionLost(self, protocol: GearmanWorkerProtocol) -> None:
        if protocol in self._connections:
            self._connections.remove(protocol)

    @property
    def connections(self) -> List[GearmanWorkerProtocol]:
        """
        The open connections.
        """
        return list(self._connections)

    def runningJobs(self) -> List[Job]:
        """
        The jobs running now.
        """
        return [c.job for c in self._connections if c.job is not None]

    def stopService(self) -> Deferred[None]:
        """
        Stop taking jobs, wait (up to C{drainTimeout}) for running ones, then
        disconnect.
        """
        self.stopping = True
        idle = DeferredList([c.whenIdle() for c in self._connections])
        bounded: Deferred[None] = Deferred()

        def fire(_: object = None) -> None:
            if not bounded.called:
                if timer.active():
                    timer.cancel()
                bounded.callback(None)

        timer = self.reactor.callLater(self.drainTimeout, fire)
        idle.addBoth(fire)

        def disconnect(_: object) -> Deferred[None]:
            return MultiService.stopService(self)  # type: ignore[return-value]

        def cleanUp(_: object) -> None:
            for service in self._clientServices:
                self.removeService(service)
            self._clientServices = []
            if self._threadPool is not None:
                self._threadPool.stop()
                self._threadPool = None

        bounded.addCallback(disconnect)
        bounded.addCallback(cleanUp)
        return bounded
