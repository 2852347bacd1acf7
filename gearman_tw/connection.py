# -*- test-case-name: tests.test_connection -*-
"""
What connections share: TCP_NODELAY for all of them (the server's too),
and a base protocol for a client's and a worker's connections to a job
server: response parsing, ECHO round trips, a readiness handshake and a
heartbeat that notices a job server which stopped answering.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Deque, List, Optional

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITransport
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from gearman_tw.errors import ConnectionLost
from gearman_tw.protocol import REQ, RES, Packet, PacketParser, PacketType, encode
from gearman_tw.reads import ReadSizer

#: Seconds a connection may stay silent before it is asked for an ECHO.
DEFAULT_HEARTBEAT = 30.0

#: Seconds a job server has to answer the ECHO of the handshake or of a
#: heartbeat before the connection is dropped as hung.
DEFAULT_HEARTBEAT_TIMEOUT = 10.0


def setNoDelay(transport: ITransport) -> None:
    """
    Turn TCP_NODELAY on, where the transport has it (TCP and TLS over TCP,
    not UNIX sockets): a small packet must not wait for the reply to the
    last one.
    """
    setTcpNoDelay = getattr(transport, "setTcpNoDelay", None)
    if setTcpNoDelay is not None:
        setTcpNoDelay(True)


class JobServerConnection(Protocol):
    """
    A connection to a job server: requests go out with TCP_NODELAY
    (L{setNoDelay}), responses are parsed as they arrive and handed to
    L{packetReceived} one by one, reads are sized to them (L{ReadSizer}),
    and bad data from the server is logged and closes the connection.

    Once connected it sends what L{greet} writes, then an ECHO: the
    connection is I{ready} when the server answers it (L{onReady} is
    called), and is dropped if no answer comes within C{heartbeatTimeout}
    seconds.  A ready connection that hears nothing for C{heartbeat}
    seconds sends an ECHO with the same bound, so a server that stopped
    answering (paused, hung, its host gone) is noticed.

    @ivar parser: this connection's response parser; its C{failure} says why
        it stopped.
    @ivar connected: whether the transport is open.
    @ivar ready: whether the job server answered the handshake.
    @ivar lostReason: why this side dropped the connection, if it did.
    @ivar onReady: called with this connection once it is ready.
    @ivar onLost: called with this connection and the reason once it is
        lost.
    """

    log = Logger()

    def __init__(
        self,
        clock: Optional[IReactorTime] = None,
        heartbeat: Optional[float] = DEFAULT_HEARTBEAT,
        heartbeatTimeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    ) -> None:
        self.parser = PacketParser(magic=RES)
        self.clock = clock
        self.heartbeat = heartbeat
        self.heartbeatTimeout = heartbeatTimeout
        self.connected = False
        self.ready = False
        self.lostReason: Optional[str] = None
        self.onReady: Optional[Callable[[JobServerConnection], object]] = None
        self.onLost: Optional[Callable[[JobServerConnection, Failure], object]] = None
        self._reads: Optional[ReadSizer] = None
        self._echoes: Deque[Deferred[bytes]] = deque()
        self._heard = False
        self._ticker: Optional[IDelayedCall] = None
        self._deadline: Optional[IDelayedCall] = None

    def connectionMade(self) -> None:
        setNoDelay(self.transport)  # type: ignore[arg-type]
        self._reads = ReadSizer.forTransport(self.transport)  # type: ignore[arg-type]
        self.connected = True
        self.greet()
        handshake = self._probe("the job server did not answer the handshake")
        handshake.addCallbacks(self._handshaken, lambda _: None)

    def greet(self) -> None:
        """
        Write what this kind of connection sends first; the handshake's
        ECHO follows it.
        """

    def _handshaken(self, _: bytes) -> None:
        self.ready = True
        self._schedule()
        if self.onReady is not None:
            self.onReady(self)

    # Round trips and the heartbeat

    def echo(self, data: bytes = b"") -> Deferred[bytes]:
        """
        ECHO_REQ: fires with the data the server echoes, or fails with
        L{ConnectionLost}.
        """
        if not self.connected:
            return fail(ConnectionLost("not connected to the job server"))
        d: Deferred[bytes] = Deferred()
        self._echoes.append(d)
        self.transport.write(encode(PacketType.ECHO_REQ, data, magic=REQ))  # type: ignore[union-attr]
        return d

    def echoReceived(self, payload: bytes) -> None:
        """
        ECHO_RES: the oldest ECHO is answered.
        """
        if self._echoes:
            self._echoes.popleft().callback(payload)

    def echoFailed(self, error: Exception) -> None:
        """
        The server answered the oldest ECHO with an error.
        """
        if self._echoes:
            self._echoes.popleft().errback(error)

    def _probe(self, why: str) -> Deferred[bytes]:
        """
        An ECHO that must be answered within C{heartbeatTimeout} seconds,
        or the connection is dropped because C{why}.
        """
        d = self.echo()
        clock = self.clock
        if clock is None or not self.connected:
            return d

        def expire() -> None:
            self._deadline = None
            self.drop("%s within %g s" % (why, self.heartbeatTimeout))

        self._deadline = clock.callLater(self.heartbeatTimeout, expire)

        def answered(payload: bytes) -> bytes:
            if self._deadline is not None and self._deadline.active():
                self._deadline.cancel()
            self._deadline = None
            return payload

        return d.addCallback(answered)

    def _schedule(self) -> None:
        if self.clock is not None and self.heartbeat is not None and self.connected:
            self._heard = False
            self._ticker = self.clock.callLater(self.heartbeat, self._tick)

    def _tick(self) -> None:
        self._ticker = None
        if not self.connected:
            return
        if self._heard or self._deadline is not None:
            self._schedule()
            return
        self.silent()
        d = self._probe("the job server did not answer a heartbeat")
        d.addCallbacks(lambda _: self._schedule(), lambda _: None)

    def silent(self) -> None:
        """
        The server sent nothing for a heartbeat's time; an ECHO follows.
        Subclasses may act on it too.
        """

    def drop(self, reason: str) -> None:
        """
        Abort the connection, recording C{reason} as why it was lost.
        """
        if self.connected:
            self.log.warn("Dropping the connection to the job server: {reason}", reason=reason)
            self.lostReason = reason
            self.transport.abortConnection()  # type: ignore[union-attr]

    # Receiving

    def receive(self, data: bytes) -> List[Packet]:
        """
        The responses C{data} completes, in order (see
        L{PacketParser.feed}).
        """
        parser = self.parser
        packets = parser.feed(data)
        if self._reads is not None:
            self._reads.received(len(data), parser.pending > 0)
        return packets

    def dataReceived(self, data: bytes) -> None:
        self._heard = True
        for ptype, args, payload in self.receive(data):
            self.packetReceived(ptype, args, payload)
        failure = self.parser.failure
        if failure is not None and self.connected:
            self.log.error("Bad data from the job server: {why}", why=failure.text)
            self.lostReason = "bad data from the job server: %s" % (failure.text.decode("utf-8", "replace"),)
            # Nothing more is sent or chosen to send on it, and no close
            # waits on a peer that may not read.
            self.connected = False
            self.ready = False
            self.transport.abortConnection()  # type: ignore[union-attr]

    def packetReceived(self, ptype: int, args: List[bytes], payload: bytes) -> None:
        """
        One response from the server (see L{PacketParser.feed}); subclasses
        handle the ones they expect and pass the rest here, which answers
        ECHOs and logs anything else as unexpected.
        """
        if ptype == PacketType.ECHO_RES:
            self.echoReceived(payload)
        else:
            self.log.warn("Unexpected packet {ptype} from the job server", ptype=ptype)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.connected = False
        self.ready = False
        for timer in (self._ticker, self._deadline):
            if timer is not None and timer.active():
                timer.cancel()
        self._ticker = self._deadline = None
        lost = ConnectionLost("connection to the job server lost")
        while self._echoes:
            self._echoes.popleft().errback(lost)
        if self.onLost is not None:
            self.onLost(self, reason)
