# -*- test-case-name: tests.test_server_service -*-
"""
The job server as a Twisted service: listening, and stopping gracefully.
"""

from __future__ import annotations

import signal
from typing import Any, List, Optional, Sequence

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, gatherResults, succeed
from twisted.internet.interfaces import IListeningPort, IReactorTime, IStreamServerEndpoint
from twisted.logger import Logger

from gearman_tw.server.factory import GearmanServerFactory

#: Seconds a stopping server waits for running jobs before it closes anyway.
DEFAULT_DRAIN_TIMEOUT = 30.0


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
        handleSignals: bool = False,
    ) -> None:
        """
        @param handleSignals: on start, make SIGUSR1 stop the server
            gracefully (see L{shutdown}), as gearmand does.
        """
        self.factory = factory
        self.endpoints = list(endpoints)
        self.reactor = reactor
        self.drainTimeout = drainTimeout
        self.handleSignals = handleSignals
        self.ports: List[IListeningPort] = []
        self._listening: Optional[Deferred[Any]] = None
        self._stopping = False

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        if self.handleSignals and hasattr(signal, "SIGUSR1"):
            signal.signal(signal.SIGUSR1, self._onSignal)
        self._listening = gatherResults(
            [endpoint.listen(self.factory) for endpoint in self.endpoints],
            consumeErrors=True,
        )
        self._listening.addCallbacks(self._listened, self._listenFailed)

    def _listened(self, ports: List[IListeningPort]) -> None:
        self.ports = ports
        for port in ports:
            self.log.info("Gearman job server listening on {address}", address=port.getHost())

    def _listenFailed(self, failure: Any) -> None:
        self.log.failure("Cannot listen", failure)
        stop = getattr(self.reactor, "stop", None)
        if stop is not None and getattr(self.reactor, "running", False):
            stop()

    def whenListening(self) -> Deferred[List[IListeningPort]]:
        """
        Fire with the listening ports once every endpoint listens.
        """
        if self._listening is None:
            return Deferred()
        result: Deferred[List[IListeningPort]] = Deferred()
        self._listening.addCallback(lambda ports: (result.callback(ports), ports)[1])
        return result

    def _stopListening(self) -> Deferred[Any]:
        ports, self.ports = self.ports, []
        return DeferredList([port.stopListening() or succeed(None) for port in ports])

    def _drained(self) -> Deferred[None]:
        """
        Fire when no worker holds a job, or after C{drainTimeout} seconds.
        """
        done: Deferred[None] = Deferred()

        def idle() -> None:
            if not done.called:
                if timer.active():
                    timer.cancel()
                done.callback(None)

        timer = self.reactor.callLater(self.drainTimeout, idle)
        self.factory.server.whenIdle(idle)
        return done

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._stopping = True
        d = self._stopListening()
        d.addCallback(lambda _: self._drained())
        d.addCallback(lambda _: self._closeConnections())
        return d

    def _closeConnections(self) -> None:
        for protocol in list(self.factory.connections):
            if protocol.transport is not None:
                protocol.transport.loseConnection()

    def shutdown(self, graceful: bool) -> None:
        """
        Stop the process: at once (running jobs still get C{drainTimeout}
        seconds), or, when C{graceful}, after closing the listeners and
        serving open connections until no job is queued or running.
        """
        stop = getattr(self.reactor, "stop", None)
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
            if server.jobs:
                self.reactor.callLater(0.1, check)
            else:
                done.callback(None)

        check()
        return done

    def _onSignal(self, signum: int, frame: Any) -> None:
        callFromThread = getattr(self.reactor, "callFromThread", None)
        if callFromThread is not None:
            callFromThread(self.shutdown, True)
