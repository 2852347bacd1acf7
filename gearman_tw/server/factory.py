# -*- test-case-name: tests.test_server_protocol -*-
"""
The job server's protocol factory: what every connection shares.
"""

from __future__ import annotations

import socket
import sys
from typing import Callable, Dict, List, Optional

from twisted.internet.interfaces import IAddress, ITransport
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
)
from twisted.python.failure import Failure

from gearman_tw.connection import setNoDelay
from gearman_tw.protocol import DEFAULT_MAX_PACKET_SIZE
from gearman_tw.server.acl import AccessControl
from gearman_tw.server.admin import AdminCommands
from gearman_tw.server.flow import DEFAULT_MAX_INPUT, DEFAULT_MAX_OUTPUT, InputBudget
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.protocol import GearmanServerProtocol
from gearman_tw.server.writes import WriteBatch
from gearman_tw.verbosity import LOG_LEVELS

#: gearmand's log levels and the Twisted level each maps to.
LEVELS: Dict[str, LogLevel] = dict(
    zip(
        LOG_LEVELS,
        (
            LogLevel.critical,
            LogLevel.critical,
            LogLevel.critical,
            LogLevel.error,
            LogLevel.warn,
            LogLevel.info,
            LogLevel.info,
            LogLevel.debug,
        ),
        strict=True,
    )
)


def filteredLogger(namespace: str, verbosity: str) -> Logger:
    """
    A logger that drops events below gearmand log level C{verbosity}.
    """
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[verbosity])
    observer = FilteringLogObserver(globalLogPublisher, [predicate])
    return Logger(namespace=namespace, observer=observer)


class KeepAlive:
    """
    TCP keepalive settings for accepted connections.

    @ivar idle: seconds of silence before the first probe, or C{None} for
        the system default; likewise C{interval} between probes and
        C{count} probes before the connection is dropped.
    """

    def __init__(
        self, idle: Optional[int] = None, interval: Optional[int] = None, count: Optional[int] = None
    ) -> None:
        self.idle = idle
        self.interval = interval
        self.count = count

    def apply(self, transport: ITransport) -> None:
        """
        Turn keepalive on for C{transport}'s socket.
        """
        setKeepAlive = getattr(transport, "setTcpKeepAlive", None)
        if setKeepAlive is None:
            return
        setKeepAlive(True)
        sock = transport.getHandle()  # type: ignore[attr-defined]
        for option, value in (
            (getattr(socket, "TCP_KEEPIDLE", None), self.idle),
            (getattr(socket, "TCP_KEEPINTVL", None), self.interval),
            (getattr(socket, "TCP_KEEPCNT", None), self.count),
        ):
            if option is not None and value is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


#: Seconds between two log lines about refused connections.
_REFUSAL_LOG_INTERVAL = 10.0

#: Default seconds a connection may take to finish a packet it began, or to
#: send its first one (C{--packet-timeout}).
DEFAULT_PACKET_TIMEOUT = 60.0


class GearmanServerFactory(Factory[GearmanServerProtocol]):
    """
    Builds L{GearmanServerProtocol}s for one L{JobServer}.

    @ivar server: the job server.
    @ivar admin: answers text admin commands.
    @ivar maxPacketSize: the largest packet payload accepted.
    @ivar keepAlive: TCP keepalive settings, or C{None} to leave it off.
    @ivar connections: the open connections.
    @ivar writes: gathers the replies of one read, to send them at its end.
    @ivar maxConnections: the most connections open at once (0: no limit);
        more are closed as they are accepted.
    @ivar maxPerAddress: the most connections open at once from one IP
        address (0: no limit).
    @ivar refused: connections closed for a limit so far.
    @ivar maxOutput: a connection's unsent replies past which the server
        stops reading from it until they are sent (0: no limit).
    @ivar inputBudget: memory for large packets being received, shared by
        every connection.
    @ivar packetTimeout: seconds a connection may keep a packet or admin
        line unfinished, or stay silent after connecting, before it is
        closed (0: no limit).  Checked every quarter of it, so a
        connection goes between C{packetTimeout} and 1.25 times that late.
    @ivar timedOut: connections closed for C{packetTimeout} so far.
    @ivar acl: the access policy, or C{None} to allow everything.
    """

    protocol = GearmanServerProtocol

    def __init__(
        self,
        server: JobServer,
        admin: Optional[AdminCommands] = None,
        maxPacketSize: int = DEFAULT_MAX_PACKET_SIZE,
        keepAlive: Optional[KeepAlive] = None,
        log: Optional[Logger] = None,
        maxConnections: int = 0,
        maxPerAddress: int = 0,
        maxOutput: int = DEFAULT_MAX_OUTPUT,
        maxInput: int = DEFAULT_MAX_INPUT,
        packetTimeout: float = DEFAULT_PACKET_TIMEOUT,
        acl: Optional[AccessControl] = None,
    ) -> None:
        self.server = server
        self.acl = acl
        # With a standby: whether this server may serve now (it holds the
        # lease); checked for every connection and every read.
        self.fence: Optional[Callable[[], bool]] = None
        self.maxOutput = maxOutput
        self.inputBudget = InputBudget(maxInput)
        self.packetTimeout = packetTimeout
        self.timedOut = 0
        self._sweeper: Optional[LoopingCall] = None
        self.maxConnections = maxConnections
        self.maxPerAddress = maxPerAddress
        self.refused = 0
        self._perAddress: Dict[str, int] = {}
        self._lastRefusalLog = -_REFUSAL_LOG_INTERVAL
        self.admin = AdminCommands(server) if admin is None else admin
        self.maxPacketSize = maxPacketSize
        self.keepAlive = keepAlive
        self.log = Logger() if log is None else log
        self.connections: Dict[GearmanServerProtocol, None] = {}
        self.writes = WriteBatch()
        # Connections whose empty GRAB is answered at the end of the turn.
        self._emptyGrabs: List[GearmanServerProtocol] = []
        self._connectionNumber = 0
        self._closedWaiters: List[Callable[[], object]] = []

    def buildProtocol(self, addr: Optional[IAddress]) -> Optional[GearmanServerProtocol]:  # type: ignore[override]
        """
        A protocol for a new connection, or C{None} (Twisted then closes it)
        when it would pass C{maxConnections} or C{maxPerAddress}.
        """
        host = getattr(addr, "host", None)
        if self.fence is not None and not self.fence():
            return None
        if self.maxConnections and len(self.connections) >= self.maxConnections:
            self._refuse("%d connections are open (--max-connections)" % (len(self.connections),))
            return None
        if self.maxPerAddress and host is not None:
            count = self._perAddress.get(host, 0)
            if count >= self.maxPerAddress:
                self._refuse("%d connections are open from %s (--max-connections-per-address)" % (count, host))
                return None
        protocol = super().buildProtocol(addr)  # type: ignore[arg-type]
        if protocol is not None and self.maxPerAddress and host is not None:
            self._perAddress[host] = self._perAddress.get(host, 0) + 1
            protocol.limitedAddress = host
        return protocol

    def grabLater(self, protocol: GearmanServerProtocol) -> None:
        """
        Answer C{protocol}'s empty GRAB (L{GearmanServerProtocol.answerGrab})
        once the reactor has handled every read of this turn: a job another
        connection submits in the same turn goes to this worker at once.
        """
        if not self._emptyGrabs:
            self.server.reactor.callLater(0, self._answerGrabs)
        self._emptyGrabs.append(protocol)

    def _answerGrabs(self) -> None:
        waiting, self._emptyGrabs = self._emptyGrabs, []
        writes = self.writes
        writes.begin()
        try:
            for protocol in waiting:
                protocol.answerGrab()
        finally:
            writes.flush()

    def startFactory(self) -> None:
        if self.packetTimeout and self._sweeper is None:
            self._sweeper = LoopingCall(self._sweep)
            self._sweeper.clock = self.server.reactor
            self._sweeper.start(self.packetTimeout / 4, now=False)

    def stopFactory(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None

    def _sweep(self) -> None:
        """
        Close the connections that have kept a packet unfinished, or said
        nothing since they connected, for C{packetTimeout} seconds.
        """
        now = self.server.reactor.seconds()
        late = [p for p in self.connections if p.overdue(now, self.packetTimeout)]
        for protocol in late:
            self.timedOut += 1
            self.log.info(
                "Closing connection from {host}: no complete packet in {timeout} s",
                host=protocol.peer.host,
                timeout=self.packetTimeout,
            )
            protocol.close()

    def _refuse(self, why: str) -> None:
        self.refused += 1
        now = self.server.reactor.seconds()
        if now - self._lastRefusalLog >= _REFUSAL_LOG_INTERVAL:
            self._lastRefusalLog = now
            self.log.warn(
                "Refusing connections: {why} ({refused} refused so far)", why=why, refused=self.refused
            )

    def connectionClosed(self, protocol: GearmanServerProtocol, reason: Optional[Failure] = None) -> None:
        """
        Forget a closed connection, and log why if it was lost to a TLS
        failure (a handshake that failed verification, a plaintext client).

        @param reason: why it closed, as C{connectionLost} was told.
        """
        if reason is not None:
            self._logTLSFailure(protocol, reason)
        host = protocol.limitedAddress
        if host is not None:
            left = self._perAddress.get(host, 1) - 1
            if left > 0:
                self._perAddress[host] = left
            else:
                self._perAddress.pop(host, None)
            protocol.limitedAddress = None
        self.connections.pop(protocol, None)
        if not self.connections and self._closedWaiters:
            waiters, self._closedWaiters = self._closedWaiters, []
            for waiter in waiters:
                waiter()

    def _logTLSFailure(self, protocol: GearmanServerProtocol, reason: Failure) -> None:
        # pyOpenSSL is loaded once TLS is served; until then no TLS error can occur.
        openSSL = sys.modules.get("OpenSSL.SSL")
        if openSSL is None or reason.check(openSSL.Error) is None:
            return
        from gearman_tw.tls import describeFailure

        transport = protocol.transport
        failure = describeFailure(getattr(transport, "getHandle", lambda: None)(), reason.value)
        if failure is None:
            return
        address = transport.getPeer() if transport is not None else None
        host, port = getattr(address, "host", None), getattr(address, "port", None)
        if host is None:
            peer = str(address)
        else:
            peer = ("[%s]:%s" if ":" in host else "%s:%s") % (host, port)
        stage, why = failure
        self.log.error("TLS {stage} with {peer} failed: {why}", stage=stage, peer=peer, why=why)

    def whenNoConnections(self, callback: Callable[[], object]) -> None:
        """
        Call C{callback} once no connection is open.
        """
        if self.connections:
            self._closedWaiters.append(callback)
        else:
            callback()

    def nextConnectionNumber(self) -> int:
        """
        A number for C{workers} to show for a connection with no file
        descriptor (an in-memory transport).
        """
        self._connectionNumber += 1
        return self._connectionNumber

    def configureTransport(self, transport: ITransport) -> None:
        """
        Apply the socket options every connection gets: TCP_NODELAY, and
        keepalive when configured.
        """
        setNoDelay(transport)
        if self.keepAlive is not None:
            self.keepAlive.apply(transport)
