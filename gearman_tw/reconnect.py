# -*- test-case-name: tests.test_reconnect -*-
"""
One connection to one job server, made again with backoff when it fails
or is lost.

Twisted's C{ClientService} does this too, but hands out proxies of its
protocols (so a lost connection cannot be matched to the one that was
made), does not say why an attempt failed, and cannot be asked to try
again sooner; a client with submissions waiting for a server needs all
three.  It also logs what a person watching needs: the server's name and
why, once each time the state changes (connected, unreachable for a new
reason, lost), not a line per attempt.
"""

from __future__ import annotations

from typing import Callable, Optional, cast

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from gearman_tw.connection import JobServerConnection
from gearman_tw.errors import describeFailure

RetryPolicy = Callable[[int], float]


class _HookedFactory(Factory):
    """
    Builds the owner's protocols with the reconnector's hooks on them.
    """

    # One is made per attempt: no "Starting factory" line for each.
    noisy = False

    def __init__(self, reconnector: "Reconnector") -> None:
        self.reconnector = reconnector

    def buildProtocol(self, addr: IAddress) -> Optional[JobServerConnection]:  # type: ignore[override]
        protocol = cast(Optional[JobServerConnection], self.reconnector.factory.buildProtocol(addr))
        if protocol is not None:
            protocol.onReady = self.reconnector._ready
            protocol.onLost = self.reconnector._lost
        return protocol


class Reconnector(Service):
    """
    Keeps one L{JobServerConnection} to one endpoint while running.

    @ivar serverName: the server's name, for messages.
    @ivar connection: the open connection, ready or not, if any.
    @ivar failures: attempts that failed since a connection was last ready.
    @ivar lastError: why the last attempt failed or the last connection
        was lost, if it was.
    """

    #: Seconds a stop waits for the connection to close before aborting it.
    closeTimeout = 5.0

    log = Logger()

    def __init__(
        self,
        name: str,
        endpoint: IStreamClientEndpoint,
        factory: Factory,
        clock: IReactorTime,
        retryPolicy: RetryPolicy,
        onReady: Callable[[JobServerConnection], object] = lambda connection: None,
        onLost: Callable[[JobServerConnection, Failure], object] = lambda connection, reason: None,
        onFailed: Callable[["Reconnector"], object] = lambda reconnector: None,
    ) -> None:
        """
        @param factory: builds the protocols (L{JobServerConnection}s).
        @param retryPolicy: the delay before attempt M{n + 1} after M{n}
            failures (as for Twisted's C{backoffPolicy}).
        @param onReady: called with each connection once it is ready.
        @param onLost: called with each connection that was made and is lost.
        @param onFailed: called after each failed connection attempt.
        """
        self.serverName = name
        self.endpoint = endpoint
        self.factory = factory
        self.clock = clock
        self.retryPolicy = retryPolicy
        self.connection: Optional[JobServerConnection] = None
        self.failures = 0
        self.lastError: Optional[str] = None
        self._onReady = onReady
        self._onLost = onLost
        self._onFailed = onFailed
        self._attempt: Optional[Deferred[JobServerConnection]] = None
        self._delayed: Optional[IDelayedCall] = None
        self._closed: Optional[Deferred[None]] = None
        self._wasReady: Optional[JobServerConnection] = None
        # What was last logged about the connection's state.
        self._logged: Optional[str] = None

    def __repr__(self) -> str:
        return "<Reconnector %s>" % (self.serverName,)

    @property
    def ready(self) -> bool:
        """
        Whether a ready connection is open.
        """
        return self.connection is not None and self.connection.ready

    def startService(self) -> None:
        super().startService()
        self.failures = 0
        self._connect()

    def _connect(self) -> None:
        self._delayed = None
        d = cast("Deferred[JobServerConnection]", self.endpoint.connect(_HookedFactory(self)))
        self._attempt = d
        d.addCallbacks(self._made, self._failed)

    def _made(self, protocol: JobServerConnection) -> None:
        self._attempt = None
        if not protocol.connected:
            # Lost before the endpoint said it was made.
            self._retry()
        elif not self.running:
            protocol.transport.abortConnection()  # type: ignore[union-attr]
        else:
            self.connection = protocol

    def _failed(self, failure: Failure) -> None:
        self._attempt = None
        # A HostnameEndpoint's attempt cancelled by stopService fails so.
        if not self.running and failure.check(CancelledError, ConnectingCancelledError):
            return
        self.failures += 1
        self.lastError = describeFailure(failure)
        self._state(
            "Cannot reach job server {server}: {why}; retrying",
            "unreachable: " + self.lastError,
            warn=True,
        )
        self._onFailed(self)
        self._retry()

    def _state(self, format: str, state: str, warn: bool = False) -> None:
        """
        Log C{format} if C{state} is not what was last logged.
        """
        if state == self._logged:
            return
        self._logged = state
        emit = self.log.warn if warn else self.log.info
        emit(format, server=self.serverName, why=self.lastError)

    def _retry(self) -> None:
        if self.running and self._delayed is None and self._attempt is None and self.connection is None:
            delay = self.retryPolicy(self.failures)
            self._delayed = self.clock.callLater(delay, self._connect)

    def retrySoon(self, delay: float) -> None:
        """
        If the next attempt is more than C{delay} seconds away, make it in
        C{delay} seconds instead.
        """
        timer = self._delayed
        if timer is not None and timer.getTime() > self.clock.seconds() + delay:
            timer.reset(delay)

    def _ready(self, protocol: JobServerConnection) -> None:
        self._wasReady = protocol
        self.failures = 0
        self.lastError = None
        self._state("Connected to job server {server}", "connected")
        self._onReady(protocol)

    def _lost(self, protocol: JobServerConnection, reason: Failure) -> None:
        if self.connection is protocol:
            self.connection = None
        if protocol.lostReason is not None:
            self.lastError = protocol.lostReason
        else:
            self.lastError = describeFailure(reason)
        if protocol is not self._wasReady:
            # Connected, but never ready (the handshake went unanswered).
            self.failures += 1
            if self.running:
                self._state(
                    "Cannot reach job server {server}: {why}; retrying",
                    "unreachable: %s" % (self.lastError,),
                    warn=True,
                )
        elif self.running:
            self._state(
                "Lost the connection to job server {server}: {why}; reconnecting",
                "lost",
                warn=True,
            )
        self._wasReady = None
        self._onLost(protocol, reason)
        closed, self._closed = self._closed, None
        if closed is not None:
            closed.callback(None)
        self._retry()

    def stopService(self) -> Deferred[None]:
        """
        Stop reconnecting and close the connection; fires once it is closed.
        """
        super().stopService()
        if self._delayed is not None:
            self._delayed.cancel()
            self._delayed = None
        if self._attempt is not None:
            self._attempt.cancel()
        connection = self.connection
        if connection is None or not connection.connected:
            return succeed(None)
        closed: Deferred[None] = Deferred()
        self._closed = closed
        connection.transport.loseConnection()  # type: ignore[union-attr]
        # A server that reads nothing more would hold the close forever.
        timer = self.clock.callLater(self.closeTimeout, connection.transport.abortConnection)  # type: ignore[union-attr]
        return closed.addBoth(lambda result: timer.cancel() if timer.active() else None)
