# -*- test-case-name: tests.test_faultserver -*-
"""
A scriptable, fault-injecting Gearman job server for tests.

It is a packet-level proxy that sits in front of a real job server, so the
job semantics are real and only the faults are made up.  Each connection gets
a L{FaultProxy}, which parses the packets going both ways, records them, and
forwards them under the test's rules: pause (a SIGSTOPped server), hold a
packet type until released, drop, delay, inject packets or garbage,
disconnect or abort.

Two ways to run it share that logic:

  - L{FaultEndpoint}: in memory, driven by a L{Clock}, in front of a
    L{JobServer}::

        clock = Clock()
        endpoint = FaultEndpoint(JobServer(clock), clock)
        endpoint.configure(lambda proxy: proxy.hold(PacketType.JOB_ASSIGN_UNIQ))
        client = GearmanClient([endpoint], reactor=clock)
        ...
        endpoint.flush()

  - L{listenFaultProxy}: on loopback TCP with the real reactor, in front of
    any job server (ours or C gearmand).
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Set, Tuple, Union

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, DeferredLock, fail, gatherResults, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, serverFromString
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IReactorTCP,
    IReactorTime,
    IStreamClientEndpoint,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.test import iosim
from zope.interface import implementer

from gearman_tw.protocol import (
    HEADER_SIZE,
    MAX_PACKET_TYPE,
    REQ,
    RES,
    TEXT,
    PacketParser,
    PacketType,
    encode,
)
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer

#: The direction of packets from the job server to the client or worker.
TO_CLIENT = "toClient"

#: The direction of packets from the client or worker to the job server.
TO_SERVER = "toServer"

_OTHER = {TO_CLIENT: TO_SERVER, TO_SERVER: TO_CLIENT}

#: A recorded packet: its type (a L{PacketType}; L{TEXT} for an admin line,
#: the negated type for a packet with the wrong magic) and its arguments (the
#: line, or the raw payload, for those two).
Record = Tuple[int, List[bytes]]

#: One packet (or, with no record, raw bytes) waiting in an outbox: the
#: clock time it is due, its bytes (L{None} for "close the connection"), and
#: what to record once it is delivered.
_Outgoing = Tuple[float, Optional[bytes], Optional[Record]]


def _checkDirection(direction: str) -> str:
    if direction not in _OTHER:
        raise ValueError("direction must be %r or %r, not %r" % (TO_CLIENT, TO_SERVER, direction))
    return direction


def _typed(ptype: int) -> int:
    """
    C{ptype} as a L{PacketType} where it is one, for readable test failures.
    """
    return PacketType(ptype) if 0 < ptype <= MAX_PACKET_TYPE else ptype


def countPackets(records: List[Record], ptype: int) -> int:
    """
    How many packets of type C{ptype} C{records} holds.

    @param records: one of a L{FaultProxy}'s records, e.g. C{proxy.toClient}.
    """
    return sum(1 for recorded, _ in records if recorded == ptype)


def _setNoDelay(transport: ITransport) -> None:
    setTcpNoDelay = getattr(transport, "setTcpNoDelay", None)
    if setTcpNoDelay is not None:
        setTcpNoDelay(True)


class _Stream:
    """
    One direction of a proxied connection: parsing, rules, and the packets
    on their way to the peer at its end.

    @ivar transport: the transport to that peer, once connected.
    @ivar lost: that peer's connection is gone.
    @ivar closing: the proxy is closing that peer's connection.
    @ivar inbox: bytes read while paused, not yet parsed; L{None} marks the
        sending side's close.
    @ivar passthrough: the parser met bytes it cannot frame; since then the
        stream is forwarded raw.
    """

    def __init__(self, magic: bytes) -> None:
        self.parser = PacketParser(magic)
        self.unparsed = b""
        self.passthrough = False
        self.inbox: List[Optional[bytes]] = []
        self.outbox: Deque[_Outgoing] = deque()
        self.timer: Optional[IDelayedCall] = None
        self.transport: Optional[ITransport] = None
        self.lost = False
        self.closing = False
        self.holding: Set[int] = set()
        self.drops: Dict[int, Optional[int]] = {}
        self.delays: Dict[Optional[int], float] = {}
        self.received: List[Record] = []
        self.delivered: List[Record] = []

    def delayFor(self, ptype: Optional[int]) -> float:
        """
        The delay rule for C{ptype}, or the one for every type.
        """
        delays = self.delays
        if ptype is not None and ptype in delays:
            return delays[ptype]
        return delays.get(None, 0.0)


class FaultProxy:
    """
    One proxied connection between a client (or worker) and a job server.

    Packets are parsed both ways (admin text lines pass through as they
    are; bytes that cannot be framed are forwarded raw from there on) and
    delivered in order, unless a rule says otherwise.  A packet the proxy
    reads is recorded in C{fromClient} or C{fromServer}; when it reaches
    the other side it is recorded in C{toServer} or C{toClient}.

    @ivar fromClient: packets read from the client, dropped and held ones
        included.
    @ivar toServer: packets delivered to the job server.
    @ivar fromServer: packets read from the job server.
    @ivar toClient: packets delivered to the client, injected ones included.
    @ivar dropped: C{(direction, type, arguments)} of each dropped packet.
    @ivar upstreamFailure: why connecting to the job server failed, if it did.
    """

    def __init__(self, clock: IReactorTime) -> None:
        """
        @param clock: the clock of delays.
        """
        self._clock = clock
        self._streams: Dict[str, _Stream] = {TO_CLIENT: _Stream(RES), TO_SERVER: _Stream(REQ)}
        self._paused = False
        self._held: List[Tuple[str, int, List[bytes], bytes]] = []
        self._connecting: Optional["Deferred[object]"] = None
        self._closedWaiters: List["Deferred[None]"] = []
        self.fromClient = self._streams[TO_SERVER].received
        self.toServer = self._streams[TO_SERVER].delivered
        self.fromServer = self._streams[TO_CLIENT].received
        self.toClient = self._streams[TO_CLIENT].delivered
        self.dropped: List[Tuple[str, int, List[bytes]]] = []
        self.upstreamFailure: Optional[Failure] = None

    # The test's controls

    @property
    def paused(self) -> bool:
        """
        Whether the proxy is paused (see L{pause}).
        """
        return self._paused

    def pause(self) -> None:
        """
        Stop forwarding both ways, as a SIGSTOPped server would: the
        connections stay open, nothing more is read from either peer (over
        TCP the bytes stay in the kernel), nothing is answered, and delays
        stop delivering.  Injected packets and garbage still go out.
        """
        self._paused = True
        for stream in self._streams.values():
            if stream.transport is not None:
                stream.transport.pauseProducing()  # type: ignore[attr-defined]

    def resume(self) -> None:
        """
        Undo L{pause}: what arrived meanwhile is parsed, recorded and
        forwarded in order, under the rules then in force.
        """
        if not self._paused:
            return
        self._paused = False
        for stream in self._streams.values():
            if stream.transport is not None:
                stream.transport.resumeProducing()  # type: ignore[attr-defined]
            inbox, stream.inbox = stream.inbox, []
            for data in inbox:
                if data is None:
                    self._enqueueClose(stream)
                else:
                    self._parse(stream, data)
        for stream in self._streams.values():
            self._flush(stream)

    def hold(self, ptype: int, direction: str = TO_CLIENT) -> None:
        """
        Keep packets of type C{ptype} going in C{direction} back until
        L{release}d; other packets pass them.

        @param ptype: e.g. C{PacketType.JOB_ASSIGN_UNIQ} or C{PacketType.NO_JOB}.
        @param direction: L{TO_CLIENT} or L{TO_SERVER}.
        """
        self._streams[_checkDirection(direction)].holding.add(ptype)

    def release(self, ptype: Optional[int] = None, count: Optional[int] = None) -> int:
        """
        Deliver held packets, oldest first, in either direction.

        @param ptype: the type to deliver; L{None} for every type.
        @param count: how many to deliver, holding on as before; L{None} to
            deliver all of them and stop holding that type (every type if
            C{ptype} is L{None}).
        @return: how many packets were released.
        """
        if count is None:
            for stream in self._streams.values():
                if ptype is None:
                    stream.holding.clear()
                else:
                    stream.holding.discard(ptype)
        chosen: List[Tuple[str, int, List[bytes], bytes]] = []
        kept: List[Tuple[str, int, List[bytes], bytes]] = []
        for entry in self._held:
            if (ptype is None or entry[1] == ptype) and (count is None or len(chosen) < count):
                chosen.append(entry)
            else:
                kept.append(entry)
        self._held = kept
        for direction, heldType, args, data in chosen:
            self._enqueue(self._streams[direction], data, (heldType, args), 0.0)
        for stream in self._streams.values():
            self._flush(stream)
        return len(chosen)

    def heldPackets(self, direction: str = TO_CLIENT) -> List[Record]:
        """
        The packets held back in C{direction}, oldest first.
        """
        _checkDirection(direction)
        return [(ptype, args) for held, ptype, args, _ in self._held if held == direction]

    def drop(self, ptype: int, direction: str = TO_CLIENT, count: Optional[int] = None) -> None:
        """
        Discard packets of type C{ptype} going in C{direction}.

        @param count: how many to discard; L{None} for all of them from now
            on; 0 to stop dropping that type.
        """
        drops = self._streams[_checkDirection(direction)].drops
        if count == 0:
            drops.pop(ptype, None)
        else:
            drops[ptype] = count

    def delay(self, seconds: float, direction: str = TO_CLIENT, ptype: Optional[int] = None) -> None:
        """
        Deliver packets going in C{direction} C{seconds} after they are read
        (on the clock).  The order is kept, as on a TCP stream: packets
        behind a delayed one wait for it.

        @param ptype: the type to delay; L{None} for every type not given
            its own delay.
        @param seconds: the delay; 0 removes the rule.
        """
        delays = self._streams[_checkDirection(direction)].delays
        if seconds:
            delays[ptype] = seconds
        else:
            delays.pop(ptype, None)

    def inject(self, ptype: int, *args: bytes, direction: str = TO_CLIENT) -> None:
        """
        Send a packet of the test's making at once, ahead of anything
        delayed, held or paused, and record it as delivered.

        @param args: the arguments, the opaque data last.
        @param direction: L{TO_CLIENT} (response magic) or L{TO_SERVER}
            (request magic).
        """
        magic = RES if _checkDirection(direction) == TO_CLIENT else REQ
        self._sendNow(self._streams[direction], encode(ptype, *args, magic=magic), (_typed(ptype), list(args)))

    def sendGarbage(self, data: bytes, direction: str = TO_CLIENT) -> None:
        """
        Send raw C{data} at once, unrecorded, ahead of anything delayed,
        held or paused.
        """
        self._sendNow(self._streams[_checkDirection(direction)], data, None)

    def disconnect(self) -> None:
        """
        Close both connections cleanly, dropping what the proxy still holds
        back (what is already written is sent first), and stop connecting
        to the job server if that is still under way.
        """
        self._close(abort=False)

    def abort(self) -> None:
        """
        Abort both connections (C{abortConnection}), and stop connecting to
        the job server if that is still under way.
        """
        self._close(abort=True)

    def whenClosed(self) -> "Deferred[None]":
        """
        @return: a new Deferred that fires once both connections are closed.
        """
        streams = self._streams.values()
        if all(stream.lost for stream in streams):
            return succeed(None)
        d: "Deferred[None]" = Deferred()
        self._closedWaiters.append(d)
        return d

    # The connections' side

    def _connected(self, direction: str, transport: ITransport) -> None:
        """
        The peer at the end of C{direction} is connected through C{transport}.
        """
        stream = self._streams[direction]
        stream.transport = transport
        if self._paused:
            transport.pauseProducing()  # type: ignore[attr-defined]
        self._flush(stream)

    def _received(self, direction: str, data: bytes) -> None:
        """
        Bytes arrived that go in C{direction}.
        """
        stream = self._streams[direction]
        if stream.lost or stream.closing:
            return
        if self._paused:
            stream.inbox.append(data)
            return
        self._parse(stream, data)
        self._flush(stream)

    def _connectionLost(self, direction: str) -> None:
        """
        The peer at the end of C{direction} is gone: forget what was on its
        way there, and close the other connection after what is on its way.
        """
        stream = self._streams[direction]
        if stream.lost:
            return
        stream.lost = True
        stream.transport = None
        stream.inbox = []
        stream.outbox.clear()
        if stream.timer is not None and stream.timer.active():
            stream.timer.cancel()
        stream.timer = None
        self._held = [entry for entry in self._held if entry[0] != direction]
        other = self._streams[_OTHER[direction]]
        if self._paused:
            other.inbox.append(None)
        else:
            self._enqueueClose(other)
            self._flush(other)
        if all(s.lost for s in self._streams.values()):
            waiters, self._closedWaiters = self._closedWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _connectingUpstream(self, connecting: "Deferred[object]") -> None:
        """
        The connection to the job server is being made: C{connecting} fires
        once it is, or fails.
        """
        self._connecting = connecting

        def done(result: object) -> None:
            self._connecting = None

        def failed(reason: Failure) -> None:
            self._connecting = None
            self.upstreamFailure = reason
            self._connectionLost(TO_SERVER)

        connecting.addCallbacks(done, failed)

    # Forwarding

    def _parse(self, stream: _Stream, data: bytes) -> None:
        delay = stream.delayFor
        if stream.passthrough:
            self._enqueue(stream, data, None, delay(None))
            return
        buf = stream.unparsed + data if stream.unparsed else data
        offset = 0
        for ptype, args, payload in stream.parser.packets(data):
            if ptype == TEXT:
                end = buf.index(b"\n", offset) + 1
                args = [payload]
            else:
                end = offset + HEADER_SIZE + len(payload)
                if ptype < 0:
                    args = [payload]
            self._route(stream, ptype, args, buf[offset:end])
            offset = end
        if stream.parser.failure is not None:
            stream.passthrough = True
            stream.unparsed = b""
            if offset < len(buf):
                self._enqueue(stream, buf[offset:], None, delay(None))
        else:
            stream.unparsed = buf[offset:]

    def _route(self, stream: _Stream, ptype: int, args: List[bytes], data: bytes) -> None:
        """
        Apply the rules to one packet read.
        """
        record = (_typed(ptype), args)
        stream.received.append(record)
        direction = TO_CLIENT if stream is self._streams[TO_CLIENT] else TO_SERVER
        if ptype in stream.drops:
            remaining = stream.drops[ptype]
            if remaining is not None:
                if remaining <= 1:
                    del stream.drops[ptype]
                else:
                    stream.drops[ptype] = remaining - 1
            self.dropped.append((direction, record[0], args))
            return
        if ptype in stream.holding:
            self._held.append((direction, record[0], args, data))
            return
        self._enqueue(stream, data, record, stream.delayFor(ptype))

    def _enqueue(self, stream: _Stream, data: bytes, record: Optional[Record], delay: float) -> None:
        if stream.lost or stream.closing:
            return
        stream.outbox.append((self._clock.seconds() + delay, data, record))

    def _enqueueClose(self, stream: _Stream) -> None:
        if stream.lost or stream.closing:
            return
        stream.outbox.append((self._clock.seconds() + stream.delayFor(None), None, None))

    def _sendNow(self, stream: _Stream, data: bytes, record: Optional[Record]) -> None:
        if stream.lost or stream.closing:
            return
        if stream.transport is None:
            # Not connected yet (the job server, over TCP): first thing then.
            stream.outbox.appendleft((0.0, data, record))
            return
        stream.transport.write(data)
        if record is not None:
            stream.delivered.append(record)

    def _flush(self, stream: _Stream) -> None:
        """
        Write what is due in C{stream}, in one write, and set a timer for
        the rest.
        """
        transport = stream.transport
        if self._paused or transport is None or stream.closing:
            return
        outbox = stream.outbox
        now = self._clock.seconds()
        chunks: List[bytes] = []
        for _ in range(len(outbox)):
            due, data, record = outbox[0]
            if due > now:
                break
            outbox.popleft()
            if data is None:
                if chunks:
                    transport.write(b"".join(chunks))
                stream.closing = True
                outbox.clear()
                transport.loseConnection()
                return
            chunks.append(data)
            if record is not None:
                stream.delivered.append(record)
        if chunks:
            transport.write(b"".join(chunks))
        if outbox and stream.timer is None:
            stream.timer = self._clock.callLater(max(0.0, outbox[0][0] - now), self._due, stream)

    def _due(self, stream: _Stream) -> None:
        stream.timer = None
        self._flush(stream)

    def _close(self, abort: bool) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        for direction, stream in self._streams.items():
            stream.outbox.clear()
            stream.inbox = []
            if stream.lost:
                continue
            transport = stream.transport
            if transport is None:
                # Never connected: nothing to close.
                self._connectionLost(direction)
                continue
            stream.closing = True
            if abort:
                transport.abortConnection()  # type: ignore[attr-defined]
            else:
                transport.loseConnection()


class _Side(Protocol):
    """
    One of a proxy's two connections: bytes read go in C{direction} away
    from this peer.
    """

    def __init__(
        self,
        proxy: FaultProxy,
        toward: str,
        onConnected: Optional[Callable[[FaultProxy], None]] = None,
    ) -> None:
        """
        @param toward: the direction toward this side's peer.
        @param onConnected: called with the proxy once connected.
        """
        self.proxy = proxy
        self._toward = toward
        self._away = _OTHER[toward]
        self._onConnected = onConnected

    def connectionMade(self) -> None:
        transport = self.transport
        assert transport is not None
        _setNoDelay(transport)
        self.proxy._connected(self._toward, transport)
        if self._onConnected is not None:
            self._onConnected(self.proxy)

    def dataReceived(self, data: bytes) -> None:
        self.proxy._received(self._away, data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.proxy._connectionLost(self._toward)


class _Proxies:
    """
    What the in-memory endpoint and the TCP server share: the proxies made,
    and settings for every connection.

    @ivar proxies: the L{FaultProxy} of each connection, oldest first.
    @ivar hang: while true, new connections are accepted but start paused.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.proxies: List[FaultProxy] = []
        self.hang = False
        self._setups: List[Callable[[FaultProxy], object]] = []

    def configure(self, setup: Callable[[FaultProxy], object]) -> None:
        """
        Apply C{setup} to every proxy made so far and to each one made
        later, e.g. C{configure(lambda p: p.hold(PacketType.NO_JOB))}.
        """
        self._setups.append(setup)
        for proxy in self.proxies:
            setup(proxy)

    def pause(self) -> None:
        """
        Pause every connection and let new ones hang, as if the job server
        were SIGSTOPped.
        """
        self.hang = True
        for proxy in self.proxies:
            proxy.pause()

    def resume(self) -> None:
        """
        Undo L{pause}.
        """
        self.hang = False
        for proxy in self.proxies:
            proxy.resume()

    def _newProxy(self) -> FaultProxy:
        proxy = FaultProxy(self.clock)
        if self.hang:
            proxy.pause()
        for setup in self._setups:
            setup(proxy)
        self.proxies.append(proxy)
        return proxy


@implementer(IStreamClientEndpoint)
class FaultEndpoint(_Proxies):
    """
    A client endpoint whose connections reach a L{JobServer} in memory
    through a L{FaultProxy} each: client <-> proxy <-> server.

    @ivar server: the job server.
    @ivar factory: the server's protocol factory.
    @ivar refuse: while true, L{connect} fails with L{ConnectionRefusedError}.
    """

    def __init__(self, server: JobServer, clock: IReactorTime) -> None:
        """
        @param clock: a L{Clock}; it runs the server, the delays and the pumps.
        """
        _Proxies.__init__(self, clock)
        self.server = server
        self.factory = GearmanServerFactory(server)
        self.refuse = False
        self._pumps: List[iosim.IOPump] = []

    def connect(self, protocolFactory: IProtocolFactory) -> "Deferred[IProtocol]":
        """
        Connect a protocol of C{protocolFactory} to the job server through a
        new proxy.

        @return: a Deferred that fires with the protocol, or fails with
            L{ConnectionRefusedError} while L{refuse} is set.
        """
        if self.refuse:
            return fail(ConnectionRefusedError())
        protocol = protocolFactory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4730))
        if protocol is None:
            return fail(ConnectionRefusedError("the factory built no protocol"))
        proxy = self._newProxy()
        clientSide = _Side(proxy, TO_CLIENT, self._connectUpstream)
        self._pumps.append(
            iosim.connect(
                clientSide,
                iosim.makeFakeServer(clientSide),
                protocol,
                iosim.makeFakeClient(protocol),
                greet=False,
                clock=self.clock,
            )
        )
        self.flush()
        return succeed(protocol)

    def _connectUpstream(self, proxy: FaultProxy) -> None:
        factory = self.factory
        server = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 0))
        assert server is not None
        server.factory = factory
        serverSide = _Side(proxy, TO_SERVER)
        self._pumps.append(
            iosim.connect(
                server,
                iosim.makeFakeServer(server),
                serverSide,
                iosim.makeFakeClient(serverSide),
                greet=False,
                clock=self.clock,
            )
        )

    def flush(self, rounds: int = 100) -> None:
        """
        Deliver every byte written so far on every connection, both ways,
        until traffic settles (what is delayed or held stays back).

        @raise RuntimeError: it did not settle in C{rounds} rounds.
        """
        for _ in range(rounds):
            moved = [pump.flush() for pump in self._pumps]
            if not any(moved):
                return
        raise RuntimeError("traffic did not settle in %d rounds" % (rounds,))

    def disconnectAll(self) -> None:
        """
        Close every connection cleanly, as if the server went away.
        """
        for proxy in self.proxies:
            proxy.disconnect()
        self.flush()


class _AcceptFactory(Factory):
    """
    Builds the client side of a new proxied connection for a
    L{FaultProxyServer}.
    """

    noisy = False

    def __init__(self, server: "FaultProxyServer") -> None:
        self._server = server

    def buildProtocol(self, addr: object) -> Optional[Protocol]:  # type: ignore[override]
        return self._server._accept()


class FaultProxyServer(_Proxies):
    """
    Fault proxies listening on loopback TCP in front of a job server; made
    by L{listenFaultProxy}.  A connection's proxy appears in C{proxies} when
    the connection is accepted, which may be after the client sees it
    connected.

    @ivar port: the port number it listens on.
    @ivar listeningPort: the listening port, or L{None} while refusing.
    """

    def __init__(self, reactor: IReactorTime, upstream: IStreamClientEndpoint) -> None:
        """
        @param reactor: the reactor (also the clock of delays).
        @param upstream: how to reach the job server.
        """
        _Proxies.__init__(self, reactor)
        self.port = 0
        self.listeningPort: Optional[IListeningPort] = None
        self._reactor = reactor
        self._upstream = upstream
        self._refuse = False
        self._switching = DeferredLock()
        self._stopped = False
        self._factory = _AcceptFactory(self)

    def _accept(self) -> Optional[Protocol]:
        if self._stopped:
            return None
        return _Side(self._newProxy(), TO_CLIENT, self._connectUpstream)

    def _connectUpstream(self, proxy: FaultProxy) -> None:
        proxy._connectingUpstream(connectProtocol(self._upstream, _Side(proxy, TO_SERVER)))

    def _listen(self) -> "Deferred[None]":
        endpoint = serverFromString(self._reactor, "tcp:%d:interface=127.0.0.1" % (self.port,))

        def listening(port: IListeningPort) -> None:
            self.listeningPort = port
            self.port = port.getHost().port  # type: ignore[attr-defined]

        return endpoint.listen(self._factory).addCallback(listening)

    def _stopListening(self) -> "Deferred[None]":
        port, self.listeningPort = self.listeningPort, None
        if port is None:
            return succeed(None)
        d = port.stopListening()
        return d if d is not None else succeed(None)  # type: ignore[return-value]

    @property
    def refuse(self) -> bool:
        """
        Whether connections are refused; setting it calls L{setRefuse}.
        """
        return self._refuse

    @refuse.setter
    def refuse(self, refuse: bool) -> None:
        self.setRefuse(refuse)

    def setRefuse(self, refuse: bool) -> "Deferred[None]":
        """
        Refuse connections by closing the listening socket (connecting then
        fails with L{ConnectionRefusedError}), or accept them again on the
        same port.  Open connections are left alone.

        @return: a Deferred that fires once the switch is made.
        """
        self._refuse = refuse

        def switch() -> "Deferred[None]":
            if self._stopped:
                return succeed(None)
            if self._refuse and self.listeningPort is not None:
                return self._stopListening()
            if not self._refuse and self.listeningPort is None:
                return self._listen()
            return succeed(None)

        return self._switching.run(switch)

    def disconnectAll(self) -> None:
        """
        Close every connection cleanly.
        """
        for proxy in self.proxies:
            proxy.disconnect()

    def stop(self) -> "Deferred[None]":
        """
        Stop listening and abort every connection.

        @return: a Deferred that fires once the listener and every
            connection are closed.
        """
        self._stopped = True
        closing = [self._switching.run(self._stopListening)]
        for proxy in self.proxies:
            proxy.abort()
            closing.append(proxy.whenClosed())
        return gatherResults(closing).addCallback(lambda _: None)


def listenFaultProxy(
    reactor: Union[IReactorTCP, IReactorTime], upstreamHost: str, upstreamPort: int
) -> "Deferred[FaultProxyServer]":
    """
    Listen on a free port of 127.0.0.1 with a L{FaultProxy} for each
    connection, in front of the job server at C{upstreamHost:upstreamPort}.

    @param reactor: the reactor; it must provide TCP and time.
    @return: a Deferred that fires with the listening L{FaultProxyServer};
        call its L{FaultProxyServer.stop} in the test's cleanup.
    """
    upstream = TCP4ClientEndpoint(reactor, upstreamHost, upstreamPort)
    server = FaultProxyServer(reactor, upstream)  # type: ignore[arg-type]
    return server._listen().addCallback(lambda _: server)
