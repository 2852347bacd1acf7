# -*- test-case-name: tests.test_server_service,tests.test_tap -*-
"""
The job server as a Twisted service: listen, replay the persistent queue,
serve, and drain when stopping; and, under twistd, start-up failures
reported in one line.

Nothing here changes process-wide settings (signal handlers, the garbage
collector, the C allocator, the switch interval): C{twistd gearman} does that
in L{gearman_tw.server.tuning}.
"""

from __future__ import annotations

from typing import Any, Callable, List, NoReturn, Optional, Sequence, cast

from twisted.application.service import MultiService, Service
from twisted.internet.defer import CancelledError, Deferred, DeferredList, gatherResults, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gearman_tw.errors import QueueError
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import KEPT

#: Seconds a stopping server waits for running jobs before it closes anyway.
DEFAULT_DRAIN_TIMEOUT = 30.0

#: Seconds a stopping server waits for closing connections to flush.
CLOSE_TIMEOUT = 5.0


class CannotStart(SystemExit, Exception):
    """
    The job server cannot start, for the reason its message gives in one
    line (a port in use, say).

    Raised out of C{privilegedStartService}, it is an C{Exception} to
    twistd, which then does its start-up clean-up (removes its pid file,
    tells a daemon's parent why it failed) and re-raises it; and a
    C{SystemExit} with status 1 to Python, which then ends the process
    without printing a traceback.  L{ProcessService} logs the line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = 1

    def __str__(self) -> str:
        return str(self.args[0])


def _why(error: BaseException) -> str:
    """
    Why listening failed, in a few words: C{"Address already in use"}.
    """
    if isinstance(error, CannotListenError):
        inner = error.socketError
        if isinstance(inner, BaseException):
            return _why(inner)
        return str(inner)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


@implementer(IStreamServerEndpoint)
class NamedEndpoint:
    """
    A server endpoint whose listening failures name it: they fail with
    L{CannotStart}, C{"cannot listen on NAME: why"}.

    @ivar endpoint: the endpoint listened on.
    @ivar name: what the failure calls it: C{127.0.0.1:4730}, or an
        endpoint description.
    """

    def __init__(self, endpoint: IStreamServerEndpoint, name: str) -> None:
        self.endpoint = endpoint
        self.name = name

    def listen(self, protocolFactory: IProtocolFactory) -> "Deferred[IListeningPort]":
        """
        Listen on the endpoint.
        """
        d = self.endpoint.listen(protocolFactory)
        d.addErrback(self._failed)
        return d

    def _failed(self, failure: Failure) -> Failure:
        if failure.check(CancelledError, CannotStart):
            return failure
        return Failure(CannotStart("cannot listen on %s: %s" % (self.name, _why(failure.value))))


class ProcessService(MultiService):
    """
    The root of the service tree C{twistd gearman} runs: a child that
    cannot start (raising L{CannotStart}) is logged in one critical line,
    and ends the process with status 1, without a traceback.
    """

    log = Logger()

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except CannotStart as e:
            self._cannotStart(e)

    def startService(self) -> None:
        try:
            super().startService()
        except CannotStart as e:
            self._cannotStart(e)

    def _cannotStart(self, error: CannotStart) -> NoReturn:
        self.running = False
        self.log.critical("Cannot start the job server: {why}", why=str(error))
        raise error


class GearmanService(Service):
    """
    Serves one L{GearmanServerFactory} on any number of endpoints.

    On stop it closes its listeners, waits (up to C{drainTimeout} seconds)
    for the jobs workers are running to end, then closes every connection.

    @ivar ports: the listening ports, once listening.
    """

    log = Logger()

    def __init__(
        self,
        factory: GearmanServerFactory,
        endpoints: Sequence[IStreamServerEndpoint],
        reactor: IReactorTime,
        drainTimeout: float = DEFAULT_DRAIN_TIMEOUT,
        exitOnStartFailure: Optional[Callable[[], object]] = None,
    ) -> None:
        """
        @param exitOnStartFailure: called when the server fails to start
            after the reactor is running (replaying the persistent queue
            failed, say), before the reactor is stopped; C{twistd} passes
            L{gearman_tw.server.tuning.exitWithErrorAtExit} so that the
            process exits with status 1.
        """
        self.factory = factory
        self.endpoints = list(endpoints)
        self.reactor = reactor
        self.drainTimeout = drainTimeout
        self.exitOnStartFailure = exitOnStartFailure
        self.ports: List[IListeningPort] = []
        self._listening: Optional[Deferred[Any]] = None
        self._draining = False
        self._whenStopped: List[Deferred[None]] = []
        self._privileged = False
        #: Whether stopping closes the persistent queue (a standby closes
        #: it itself, after giving its lease up).
        self.ownsQueue = True

    def privilegedStartService(self) -> None:
        """
        Listen before twistd drops privileges (so ports below 1024 work with
        C{-u}); with a persistent queue, accept nothing until it is replayed.
        """
        super().privilegedStartService()
        self._privileged = True
        self._startListening()

    def startService(self) -> None:
        """
        Listen on every endpoint (unless L{privilegedStartService} did).

        @raise Exception: an endpoint failed at once (a TCP port in use, say),
            so that C{twistd} exits with an error instead of serving nothing.
        """
        super().startService()
        if not self._privileged:
            self._startListening()
        queue = self.factory.server.queue
        if queue is not None and getattr(queue, "persistent", True):
            # Replay the stored jobs before accepting any connection.
            replayed = Deferred.fromCoroutine(self._replay(queue))
            assert self._listening is not None
            listening = self._listening
            # The same Deferred, now firing with the listening ports.
            accepting: Deferred[List[IListeningPort]] = replayed.addCallback(lambda _: listening)
            accepting.addCallback(self._accept)
            accepting.addErrback(self._listenFailed)

    async def _replay(self, queue: Any) -> None:
        server = self.factory.server
        server.replaying = True
        await queue.open()
        records = await queue.replay()
        kept = {kind: await queue.kept(kind) for kind in KEPT}
        server.restoreAll(records, kept)
        why = await server.reserveHandles()
        if why is not None:
            # Serving without would give handles given before again.
            raise QueueError("cannot store the handle numbers given: %s" % (why,))
        server.replaying = False
        self.log.info(
            "Replayed {count} jobs from the {name} queue", count=len(records), name=queue.name
        )

    def _accept(self, ports: List[IListeningPort]) -> None:
        if not self.running:
            return  # stopped while replaying: the ports are closed
        for port in ports:
            startReading = getattr(port, "startReading", None)
            if startReading is not None:
                startReading()

    def _startListening(self) -> None:
        self._privileged = True
        queue = self.factory.server.queue
        paused = queue is not None and getattr(queue, "persistent", True)
        listening = gatherResults(
            [endpoint.listen(self.factory) for endpoint in self.endpoints],
            consumeErrors=True,
        )
        failures: List[Failure] = []
        listening.addCallbacks(self._listened, failures.append)
        if failures:
            self.running = False
            firstError = failures[0].value
            failure = getattr(firstError, "subFailure", failures[0])
            failure.raiseException()
        if paused:
            # Bound, but accept nothing until the queue has been replayed.
            listening.addCallback(self._pause)
        listening.addErrback(self._listenFailed)
        self._listening = listening

    def _pause(self, ports: List[IListeningPort]) -> List[IListeningPort]:
        for port in ports:
            stopReading = getattr(port, "stopReading", None)
            if stopReading is not None:
                stopReading()
        return ports

    def _listened(self, ports: List[IListeningPort]) -> List[IListeningPort]:
        self.ports = ports
        for port in ports:
            self.log.info("Gearman job server listening on {address}", address=port.getHost())
        return ports

    def _listenFailed(self, failure: Failure) -> None:
        if not self.running:
            # Stopped (SIGTERM, say) while replaying, which closed the
            # queue under the replay: nothing failed to start.
            self.log.info("Stopped before the persistent queue was replayed ({why})", why=failure.getErrorMessage())
            return
        if failure.check(CannotStart, QueueError):
            # Known causes, which say what is wrong in one line.
            self.log.critical("Cannot start the job server: {why}", why=failure.getErrorMessage())
        else:
            self.log.failure("Cannot start the job server", failure)
        if self.exitOnStartFailure is not None:
            self.exitOnStartFailure()
        self._stopListening()
        stop = getattr(self.reactor, "stop", None)
        if stop is None:
            return
        if getattr(self.reactor, "running", False):
            stop()
        else:
            # Failed in startService, before twistd runs the reactor.
            callWhenRunning = getattr(self.reactor, "callWhenRunning", None)
            if callWhenRunning is not None:
                callWhenRunning(stop)

    def whenListening(self) -> Deferred[List[IListeningPort]]:
        """
        Fire with the listening ports once every endpoint listens.
        """
        result: Deferred[List[IListeningPort]] = Deferred()
        if self._listening is None:
            result.errback(RuntimeError("the service is not started"))
            return result

        def relay(ports: List[IListeningPort]) -> List[IListeningPort]:
            result.callback(ports)
            return ports

        self._listening.addCallback(relay)
        return result

    def _stopListening(self) -> Deferred[Any]:
        ports, self.ports = self.ports, []
        return DeferredList([port.stopListening() or succeed(None) for port in ports])

    def _within(self, register: Callable[[Callable[[], object]], None], timeout: float) -> Deferred[None]:
        """
        A Deferred that fires when C{register}'s callback is called, or after
        C{timeout} seconds, whichever comes first.
        """
        done: Deferred[None] = Deferred()

        def fire() -> None:
            if not done.called:
                if timer.active():
                    timer.cancel()
                done.callback(None)

        timer = self.reactor.callLater(timeout, fire)
        register(fire)
        return done

    def stopService(self) -> Deferred[None]:
        """
        Close the listeners, wait up to C{drainTimeout} seconds for running
        jobs, then close every connection, waiting (a few seconds at most)
        for their last bytes to be written, cancel the job server's timers
        and close the persistent queue.
        """
        super().stopService()
        d = self._stopListening()
        d.addCallback(lambda _: self._within(self.factory.server.whenIdle, self.drainTimeout))
        d.addCallback(lambda _: self._closeConnections())
        d.addCallback(lambda _: self.factory.server.stopTimers())
        d.addCallback(lambda _: self._closeQueue())
        self._draining = True
        d.addBoth(self._drained)
        return d

    def _drained(self, result: object) -> object:
        self._draining = False
        observers, self._whenStopped = self._whenStopped, []
        for observer in observers:
            observer.callback(None)
        return result

    def whenStopped(self) -> Deferred[None]:
        """
        Fire once the service has stopped: at once if it is not running,
        or when L{stopService} has finished draining.
        """
        if not self.running and not self._draining:
            return succeed(None)
        result: Deferred[None] = Deferred()
        self._whenStopped.append(result)
        return result

    def _closeQueue(self) -> Deferred[None]:
        queue = self.factory.server.queue
        if queue is None or not self.ownsQueue:
            return succeed(None)
        d = queue.close()
        d.addErrback(lambda f: self.log.failure("Closing the persistent queue failed", f))
        return d

    def _closeConnections(self) -> Deferred[None]:
        # Gathered replies first: TLS drops writes after loseConnection.
        self.factory.writes.flush()
        for protocol in list(self.factory.connections):
            if protocol.transport is not None:
                protocol.close()
        return self._within(self.factory.whenNoConnections, CLOSE_TIMEOUT)

    def fence(self) -> None:
        """
        Stop serving at once, for a standby that may have lost its lease:
        close the listeners and every connection, without draining.
        """
        self._stopListening()
        for protocol in list(self.factory.connections):
            transport = protocol.transport
            if transport is not None:
                # TCP and TLS transports can abort (ITCPTransport).
                abort = getattr(transport, "abortConnection", transport.loseConnection)
                abort()

    def shutdown(self, graceful: bool) -> None:
        """
        Stop the process: at once (running jobs still get C{drainTimeout}
        seconds), or, when C{graceful}, after closing the listeners and
        serving open connections until no job is queued or running.
        """
        # Every reactor twistd runs has stop (IReactorCore).
        stop = cast(Callable[[], object], getattr(self.reactor, "stop", None))
        if not graceful:
            self.reactor.callLater(0, stop)
            return
        d = self._stopListening()
        d.addCallback(lambda _: self._whenNoJobs())
        d.addCallback(lambda _: stop())

    def _whenNoJobs(self) -> Deferred[None]:
        done: Deferred[None] = Deferred()
        server = self.factory.server

        def check() -> None:
            if server.hasWork():
                self.reactor.callLater(0.1, check)
            else:
                done.callback(None)

        check()
        return done
