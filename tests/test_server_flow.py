"""
Tests for L{gearman_tw.server.flow} and the job server's use of it: the
bound on a connection's unsent replies, the shared budget for large
packets being received, and the timeout on unfinished packets.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from typing import List, Tuple

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gearman_tw.protocol import REQ, RES, PacketType, encode
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.flow import FREE_INPUT, InputBudget, OutputFlow
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.protocol import GearmanServerProtocol


def _flow(streaming: bool, limit: int = 100) -> Tuple[OutputFlow, StringTransport, List[str]]:
    events: List[str] = []
    transport = StringTransport()
    flow = OutputFlow(
        transport, limit, lambda: events.append("full"), lambda: events.append("drained"), streaming
    )
    return flow, transport, events


class OutputFlowTests(SynchronousTestCase):
    """
    L{OutputFlow} counts what its transport holds and says when it is too
    much and when it is all sent.
    """

    def test_registers(self) -> None:
        """
        It registers with the transport as the producer it was asked to be,
        and L{OutputFlow.detach} unregisters it.
        """
        flow, transport, _ = _flow(streaming=True)
        self.assertIs(transport.producer, flow)
        self.assertTrue(transport.streaming)
        flow.detach()
        self.assertIsNone(transport.producer)
        flow.detach()
        pull, transport, _ = _flow(streaming=False)
        self.assertFalse(transport.streaming)

    def test_pushCountsOncePaused(self) -> None:
        """
        Registered as a push producer it counts only once the transport
        paused it (its own buffer is full), and forgets on resume.
        """
        flow, _, events = _flow(streaming=True)
        flow.handed(1000)
        self.assertEqual((flow.backlog, flow.full, events), (0, False, []))
        flow.pauseProducing()
        flow.handed(60)
        self.assertEqual(events, [])
        flow.handed(60)
        self.assertEqual((flow.backlog, flow.full, events), (120, True, ["full"]))
        flow.handed(60)
        self.assertEqual(events, ["full"])
        flow.resumeProducing()
        self.assertEqual((flow.backlog, flow.full, events), (0, False, ["full", "drained"]))
        flow.handed(1000)
        self.assertEqual(flow.backlog, 0)

    def test_pullCountsUntilDrained(self) -> None:
        """
        Registered as a pull producer it counts everything handed over until
        the transport says its buffer emptied, which also clears
        L{OutputFlow.buffered}.
        """
        flow, _, events = _flow(streaming=False)
        self.assertFalse(flow.buffered)
        flow.handed(60)
        self.assertTrue(flow.buffered)
        flow.handed(60)
        self.assertEqual(events, ["full"])
        flow.resumeProducing()
        self.assertEqual((flow.buffered, flow.backlog, events), (False, 0, ["full", "drained"]))
        # A drain while not full tells no one.
        flow.handed(10)
        flow.resumeProducing()
        self.assertEqual(events, ["full", "drained"])

    def test_noLimit(self) -> None:
        """
        A limit of 0 is no limit.
        """
        flow, _, events = _flow(streaming=False, limit=0)
        flow.handed(10**9)
        self.assertEqual(events, [])


class _Who:
    def __init__(self) -> None:
        self.granted: List[int] = []

    def inputGranted(self, size: int) -> None:
        self.granted.append(size)


class InputBudgetTests(SynchronousTestCase):
    """
    L{InputBudget} grants reservations first come, first served.
    """

    def test_fifo(self) -> None:
        """
        A reservation that does not fit waits, and so does every later one
        even if it would fit, until releases make room in their order.
        """
        budget = InputBudget(100)
        a, b, c = _Who(), _Who(), _Who()
        self.assertTrue(budget.reserve(a, 70))  # type: ignore[arg-type]
        self.assertFalse(budget.reserve(b, 50))  # type: ignore[arg-type]
        self.assertFalse(budget.reserve(c, 10))  # type: ignore[arg-type]
        self.assertEqual((budget.used, budget.waiting), (70, 2))
        budget.release(a, 70)  # type: ignore[arg-type]
        self.assertEqual((b.granted, c.granted, budget.used, budget.waiting), ([50], [10], 60, 0))

    def test_largerThanBudget(self) -> None:
        """
        A packet larger than the whole budget is granted once nothing else
        is reserved, so it can never wait forever.
        """
        budget = InputBudget(100)
        a, big = _Who(), _Who()
        budget.reserve(a, 10)  # type: ignore[arg-type]
        self.assertFalse(budget.reserve(big, 500))  # type: ignore[arg-type]
        budget.release(a, 10)  # type: ignore[arg-type]
        self.assertEqual(big.granted, [500])
        self.assertTrue(InputBudget(100).reserve(_Who(), 500))  # type: ignore[arg-type]

    def test_withdraw(self) -> None:
        """
        Releasing with size 0 withdraws a waiting request; the next in line
        moves up.
        """
        budget = InputBudget(100)
        a, b, c = _Who(), _Who(), _Who()
        budget.reserve(a, 90)  # type: ignore[arg-type]
        budget.reserve(b, 50)  # type: ignore[arg-type]
        budget.reserve(c, 10)  # type: ignore[arg-type]
        budget.release(b, 0)  # type: ignore[arg-type]
        self.assertEqual((c.granted, budget.used), ([10], 100))
        self.assertEqual(b.granted, [])

    def test_noLimit(self) -> None:
        """
        A limit of 0 grants everything.
        """
        budget = InputBudget(0)
        for _ in range(10):
            self.assertTrue(budget.reserve(_Who(), 10**9))  # type: ignore[arg-type]


def _echo(size: int, fill: bytes = b"e") -> bytes:
    return encode(PacketType.ECHO_REQ, fill * size, magic=REQ)


class PacketTimeoutTests(SynchronousTestCase):
    """
    A connection that keeps a packet unfinished, or says nothing after it
    connects, for the factory's C{packetTimeout} is closed.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = GearmanServerFactory(JobServer(self.clock), packetTimeout=10)
        self.factory.startFactory()
        self.addCleanup(self.factory.stopFactory)

    def connect(self) -> Tuple[GearmanServerProtocol, StringTransport]:
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert protocol is not None
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        protocol.makeConnection(transport)
        return protocol, transport

    def advance(self, seconds: float) -> None:
        for _ in range(int(seconds)):
            self.clock.advance(1)

    def test_unfinishedPacket(self) -> None:
        """
        Half a packet left for the timeout (plus the sweep's quarter)
        closes the connection; more bytes of the same packet do not reset
        the clock.
        """
        protocol, transport = self.connect()
        packet = _echo(100)
        protocol.dataReceived(packet[:20])
        self.advance(8)
        protocol.dataReceived(packet[20:21])
        self.assertFalse(transport.disconnecting)
        self.advance(5)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.factory.timedOut, 1)

    def test_silent(self) -> None:
        """
        A connection that sends nothing at all is closed too.
        """
        _, transport = self.connect()
        self.advance(9)
        self.assertFalse(transport.disconnecting)
        self.advance(5)
        self.assertTrue(transport.disconnecting)

    def test_completePacketsKeepItOpen(self) -> None:
        """
        A connection that finishes its packets, however slowly it sends
        them, or sits idle between them, stays open.
        """
        protocol, transport = self.connect()
        packet = _echo(10)
        for _ in range(10):
            protocol.dataReceived(packet[:5])
            self.advance(5)
            protocol.dataReceived(packet[5:])
            self.advance(30)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(transport.value()), 10 * len(encode(PacketType.ECHO_RES, b"e" * 10)))

    def test_pausedNotBlamed(self) -> None:
        """
        While the server is not reading from a connection (here: its unread
        replies passed C{maxOutput}) its unfinished packet is not timed;
        once reading resumes, it is.
        """
        self.factory.maxOutput = 1000
        protocol, transport = self.connect()
        protocol.flow.pauseProducing()  # The transport's own buffer is full.
        protocol.dataReceived(_echo(2000) + _echo(10)[:5])
        self.assertTrue(protocol.paused)
        self.advance(60)
        self.assertFalse(transport.disconnecting)
        protocol.flow.resumeProducing()
        self.assertFalse(protocol.paused)
        self.advance(14)
        self.assertTrue(transport.disconnecting)

    def test_noTimeout(self) -> None:
        """
        A timeout of 0 checks nothing.
        """
        factory = GearmanServerFactory(JobServer(self.clock), packetTimeout=0)
        factory.startFactory()
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.advance(1000)
        self.assertFalse(transport.disconnecting)
        factory.stopFactory()


def _packets(data: bytes) -> List[Tuple[int, bytes]]:
    packets = []
    pos = 0
    while pos + 12 <= len(data):
        magic, ptype, size = struct.unpack(">4sII", data[pos : pos + 12])
        assert magic == RES, data[pos : pos + 12]
        packets.append((ptype, data[pos + 12 : pos + 12 + size]))
        pos += 12 + size
    return packets


class FlowOverSocketsTests(TestCase):
    """
    The limits at work on real loopback connections.
    """

    def listen(self, **kwargs: object) -> GearmanServerFactory:
        self.factory = GearmanServerFactory(JobServer(reactor), **kwargs)  # type: ignore[arg-type]
        # Twisted annotates a ServerFactory; any protocol factory serves.
        port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")  # type: ignore[arg-type]
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        self.port = address.port
        self.addCleanup(port.stopListening)
        return self.factory

    def client(self, buffers: int = 65536) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffers)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffers)
        sock.connect(("127.0.0.1", self.port))
        sock.setblocking(False)
        self.addCleanup(sock.close)
        return sock

    def protocolOf(self, sock: socket.socket) -> GearmanServerProtocol:
        port = sock.getsockname()[1]
        for protocol in self.factory.connections:
            if protocol.transport.getPeer().port == port:  # type: ignore[union-attr]
                return protocol
        raise AssertionError("no server connection for port %d" % (port,))

    @inlineCallbacks
    def pump(self, condition, seconds: float = 10.0):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                self.fail("timed out")
            yield deferLater(reactor, 0.002, lambda: None)

    def sendAll(self, sock: socket.socket, data: bytes):  # type: ignore[no-untyped-def]
        """
        Send all of C{data} on a non-blocking socket as it takes it.
        """
        view = memoryview(data)

        def more() -> bool:
            nonlocal view
            try:
                view = view[sock.send(view[: 1 << 16]) :]
            except BlockingIOError:
                pass
            return not view

        return self.pump(more, 10)

    def receive(self, sock: socket.socket, into: bytearray) -> None:
        """
        Add to C{into} all that non-blocking C{sock} has received, without
        waiting for more.
        """
        try:
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                into.extend(chunk)
        except BlockingIOError:
            pass

    @inlineCallbacks
    def roundTrip(self):  # type: ignore[no-untyped-def]
        """
        An ECHO on a fresh connection is answered.
        """
        other = self.client()
        other.send(_echo(3, b"x"))
        got = bytearray()

        def answered() -> bool:
            self.receive(other, got)
            return len(got) >= 15

        yield self.pump(answered, 5)
        self.assertEqual(bytes(got), encode(PacketType.ECHO_RES, b"xxx"))

    @inlineCallbacks
    def test_nonReaderIsStopped(self):  # type: ignore[no-untyped-def]
        """
        A client that sends ECHOs and never reads the replies is no longer
        read from once its unsent replies pass the limit: it cannot make the
        server hold more, others are served meanwhile, and once it reads,
        every reply arrives, in order.
        """
        self.listen(maxOutput=256 * 1024)
        sock = self.client()
        packets = [_echo(65536, b"%c" % (65 + i % 26,)) for i in range(1024)]  # 64 MiB
        stream = b"".join(packets)
        view = memoryview(stream)
        sent = 0
        stalled = 0
        for _ in range(5000):
            try:
                sent += sock.send(view[sent : sent + (1 << 20)])
                stalled = 0
            except BlockingIOError:
                stalled += 1
                if stalled > 50:
                    break
            yield deferLater(reactor, 0.001, lambda: None)
        protocol = self.protocolOf(sock)
        self.assertTrue(protocol.paused)
        self.assertLess(protocol.received, 16 << 20)
        self.assertLess(sent, len(stream))
        yield self.roundTrip()
        # Now read everything, sending the rest as the socket takes it.
        got = bytearray()
        expected = b"".join(encode(PacketType.ECHO_RES, p[12:]) for p in packets)

        def done() -> bool:
            nonlocal sent
            self.receive(sock, got)
            if sent < len(stream):
                try:
                    sent += sock.send(view[sent : sent + (1 << 20)])
                except BlockingIOError:
                    pass
            return len(got) >= len(expected)

        yield self.pump(done, 60)
        self.assertEqual(bytes(got), expected)
        self.assertFalse(protocol.paused)

    @inlineCallbacks
    def test_listingWaitsForReader(self):  # type: ignore[no-untyped-def]
        """
        A long admin listing to a client that does not read stops being
        made once its unsent part passes the limit, and completes once the
        client reads.
        """
        factory = self.listen(maxOutput=64 * 1024)
        worker = self.client()
        names = [b"function-%06d" % (n,) for n in range(20000)]
        abilities = b"".join(encode(PacketType.CAN_DO, name, magic=REQ) for name in names)
        yield self.sendAll(worker, abilities)
        yield self.pump(lambda: self.protocolOf(worker).received == len(abilities))
        sock = self.client(4096)
        yield self.pump(lambda: any(p.transport.getPeer().port == sock.getsockname()[1] for p in factory.connections))
        self.protocolOf(sock).transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # type: ignore[union-attr]
        sock.send(b"status\n")
        protocol = self.protocolOf(sock)
        yield self.pump(lambda: protocol.flow.full)
        # The listing waits for the reader, no slice made meanwhile.
        backlog = protocol.flow.backlog
        yield deferLater(reactor, 0.2, lambda: None)
        self.assertTrue(protocol.paused)
        self.assertEqual(protocol.flow.backlog, backlog)
        self.assertLess(protocol.flow.backlog, 64 * 1024 + 256 * 1024)
        got = bytearray()

        def done() -> bool:
            self.receive(sock, got)
            return got.endswith(b"\n.\n")

        yield self.pump(done, 30)
        lines = bytes(got).split(b"\n")
        self.assertEqual(sorted(line.split(b"\t")[0] for line in lines[:-2]), names)

    @inlineCallbacks
    def test_adminRepliesWaitForReader(self):  # type: ignore[no-untyped-def]
        """
        Admin lines read together that each ask for a large reply (a stored
        result) are not all answered at once: past about a MiB of replies
        the rest wait until those are sent, and, with a client that does
        not read, until it does; so what the server holds stays bounded.
        Once the client reads, every reply comes, in order.
        """
        from gearman_tw.server.results import COMPLETE, StoredResult

        factory = self.listen(maxOutput=64 * 1024)
        data = os.urandom(256 * 1024)
        factory.server.results.add(StoredResult(b"f", b"H:1", b"", b"", COMPLETE, data, 1.0, 10.0**12), None)
        sock = self.client(4096)
        yield self.pump(lambda: len(factory.connections) == 1)
        protocol = self.protocolOf(sock)
        protocol.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # type: ignore[union-attr]
        count = 12
        sock.send(b"result H:1\n" * count)
        yield self.pump(lambda: protocol.received == 11 * count)
        yield self.pump(lambda: protocol.flow.full)
        yield deferLater(reactor, 0.2, lambda: None)
        reply = len(factory.admin.execute(protocol.peer, b"result H:1"))  # type: ignore[arg-type]
        # Two replies' worth: the MiB one read may make, and the slice
        # that waits for the reader.
        self.assertLess(protocol.flow.backlog, 64 * 1024 + 1024 * 1024 + 2 * reply)
        self.assertTrue(protocol.paused)
        got = bytearray()

        def done() -> bool:
            self.receive(sock, got)
            return len(got) >= count * reply

        yield self.pump(done, 30)
        self.assertEqual(bytes(got), factory.admin.execute(protocol.peer, b"result H:1") * count)  # type: ignore[operator]

    @inlineCallbacks
    def test_largePacketsTakeTurns(self):  # type: ignore[no-untyped-def]
        """
        With room for one large packet, a second connection's large packet
        waits (its reading paused) until the first is complete, then
        completes too; a connection that goes while it holds room gives it
        back.
        """
        factory = self.listen(maxInput=1 << 20)
        size = 800 * 1024
        a, b, c = self.client(), self.client(), self.client()
        packetA, packetB, packetC = _echo(size, b"a"), _echo(size, b"b"), _echo(size, b"c")
        half = FREE_INPUT * 2

        yield self.sendAll(a, packetA[:half])
        yield self.pump(lambda: self.protocolOf(a).received >= half)
        yield self.sendAll(b, packetB[:half])
        yield self.pump(lambda: factory.inputBudget.waiting == 1)
        self.assertTrue(self.protocolOf(b).paused)
        self.assertFalse(self.protocolOf(a).paused)
        yield self.sendAll(a, packetA[half:])
        got = bytearray()

        def answered(sock: socket.socket, length: int):  # type: ignore[no-untyped-def]
            def check() -> bool:
                self.receive(sock, got)
                return len(got) >= length

            return check

        yield self.pump(answered(a, 12 + size))
        self.assertEqual(bytes(got), encode(PacketType.ECHO_RES, b"a" * size))
        # b was granted room when a's packet completed.
        yield self.pump(lambda: not self.protocolOf(b).paused)
        yield self.sendAll(c, packetC[:half])
        yield self.pump(lambda: factory.inputBudget.waiting == 1)
        # b leaves holding its room: c gets it.
        b.close()
        yield self.pump(lambda: factory.inputBudget.waiting == 0)
        yield self.sendAll(c, packetC[half:])
        got.clear()
        yield self.pump(answered(c, 12 + size))
        self.assertEqual(bytes(got), encode(PacketType.ECHO_RES, b"c" * size))
        yield self.pump(lambda: factory.inputBudget.used == 0)
