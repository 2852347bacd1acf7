"""
Tests for L{gearman_tw.reads}.
"""

from __future__ import annotations

import socket
from typing import Any, Generator, List

from twisted.internet import reactor
from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gearman_tw.client import GearmanClient
from gearman_tw.protocol import REQ, RES, PacketType, encode
from gearman_tw.reads import LARGE_READ, SMALL_READ, ReadSizer
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.worker import GearmanWorker


class _Transport:
    """
    Just the attribute L{ReadSizer} sets.
    """

    bufferSize = 65536


class ReadSizerTests(SynchronousTestCase):
    """
    Tests for L{ReadSizer}'s sizing.
    """

    def setUp(self) -> None:
        self.transport = _Transport()
        self.sizer = ReadSizer(self.transport)  # type: ignore[arg-type]

    def test_startsSmall(self) -> None:
        """
        A new sizer sets its transport to small reads.
        """
        self.assertEqual(self.transport.bufferSize, SMALL_READ)

    def test_smallReadsStaySmall(self) -> None:
        """
        Reads shorter than the buffer leave it as it is.
        """
        for length in (1, 28, SMALL_READ - 1):
            self.sizer.received(length, False)
            self.assertEqual(self.transport.bufferSize, SMALL_READ)

    def test_fullReadGrows(self) -> None:
        """
        A read that fills the small buffer makes reads large, and they stay
        large while reads are not small.
        """
        self.sizer.received(SMALL_READ, False)
        self.assertEqual(self.transport.bufferSize, LARGE_READ)
        for length in (LARGE_READ, SMALL_READ, LARGE_READ - 1):
            self.sizer.received(length, False)
            self.assertEqual(self.transport.bufferSize, LARGE_READ)

    def test_smallReadShrinks(self) -> None:
        """
        Once reads are large, a read shorter than the small size that
        completes every packet, after another that did, makes them small
        again.
        """
        self.sizer.received(SMALL_READ, False)
        self.sizer.received(SMALL_READ - 1, False)
        self.assertEqual(self.transport.bufferSize, SMALL_READ)

    def test_partialStaysLarge(self) -> None:
        """
        A short read that leaves a packet still arriving keeps reads large
        (the reader only caught up with the sender), and so does the read
        that completes it.
        """
        self.sizer.received(SMALL_READ, True)
        self.assertEqual(self.transport.bufferSize, LARGE_READ)
        self.sizer.received(10, True)
        self.assertEqual(self.transport.bufferSize, LARGE_READ)
        self.sizer.received(10, False)
        self.assertEqual(self.transport.bufferSize, LARGE_READ)
        self.sizer.received(10, False)
        self.assertEqual(self.transport.bufferSize, SMALL_READ)

    def test_packetsJustOverSmall(self) -> None:
        """
        Packets a little larger than a small read, one at a time, take two
        reads for the first and one each after that.
        """
        reads = 0
        for _ in range(5):
            left = SMALL_READ + 900
            while left:
                length = min(left, self.transport.bufferSize)
                left -= length
                reads += 1
                self.sizer.received(length, left > 0)
        self.assertEqual(reads, 6)
        self.assertEqual(self.transport.bufferSize, LARGE_READ)

    def test_otherTransports(self) -> None:
        """
        Transports that do not read into a C{bufferSize} of their own get no
        sizer and keep their attributes.
        """
        transport = StringTransport()
        self.assertIsNone(ReadSizer.forTransport(transport))
        self.assertFalse(hasattr(transport, "bufferSize"))


def _recvExactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(data)
        data += chunk
    return data


class ServerReadsTests(TestCase):
    """
    The job server's TCP connections read small until a read fills the
    buffer.
    """

    @inlineCallbacks
    def connect(self):
        """
        Connect to a new server; fire with the socket, the server and the
        server side's transport.
        """
        factory = GearmanServerFactory(JobServer(Clock(), handlePrefix=b"H:t"))
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        sock = socket.create_connection(("127.0.0.1", port.getHost().port))
        sock.settimeout(10)
        self.addCleanup(sock.close)
        for _ in range(500):
            if factory.connections:
                break
            yield deferLater(reactor, 0.002, lambda: None)
        [protocol] = list(factory.connections)
        self.addCleanup(protocol.transport.abortConnection)
        return sock, factory, protocol.transport

    @inlineCallbacks
    def test_twistedHonoursBufferSize(self):
        """
        Twisted's TCP transport reads at most its C{bufferSize} at a time:
        the public attribute L{ReadSizer} relies on.  Should a Twisted
        release stop honouring it, this fails.
        """
        sock, factory, transport = yield self.connect()
        [protocol] = list(factory.connections)
        sizes: List[int] = []
        real = protocol.dataReceived

        def counting(data: bytes) -> None:
            sizes.append(len(data))
            real(data)

        protocol.dataReceived = counting  # type: ignore[method-assign]
        transport.pauseProducing()
        count = 4 * SMALL_READ // 20
        sock.sendall(encode(PacketType.ECHO_REQ, b"x" * 8, magic=REQ) * count)
        yield deferLater(reactor, 0.05, lambda: None)
        transport.resumeProducing()
        expected = encode(PacketType.ECHO_RES, b"x" * 8, magic=RES) * count
        self.assertEqual((yield deferToThread(lambda: _recvExactly(sock, len(expected)))), expected)
        self.assertEqual(sizes[0], SMALL_READ)

    @inlineCallbacks
    def test_burstThenSmall(self):
        """
        A burst of submissions bigger than a small read is read large, and
        every job is answered; the next small packet makes reads small.
        """
        sock, factory, transport = yield self.connect()
        self.assertEqual(transport.bufferSize, SMALL_READ)

        count = 200
        burst = b"".join(
            encode(PacketType.SUBMIT_JOB_BG, b"f", b"", b"%03d" % i + b"x" * 97, magic=REQ) for i in range(count)
        )
        self.assertGreater(len(burst), SMALL_READ * 4)
        sock.sendall(burst)
        expected = b"".join(encode(PacketType.JOB_CREATED, b"H:t:%d" % (i + 1), magic=RES) for i in range(count))
        received = yield deferToThread(lambda: _recvExactly(sock, len(expected)))
        self.assertEqual(received, expected)
        self.assertEqual(transport.bufferSize, LARGE_READ)
        self.assertEqual(factory.server.jobCount(), count)

        sock.sendall(encode(PacketType.ECHO_REQ, b"ping", magic=REQ))
        echo = encode(PacketType.ECHO_RES, b"ping", magic=RES)
        self.assertEqual((yield deferToThread(lambda: _recvExactly(sock, len(echo)))), echo)
        self.assertEqual(transport.bufferSize, SMALL_READ)

    @inlineCallbacks
    def test_largePacketInParts(self):
        """
        While a large packet is still arriving, reads stay large however
        short the last one was; once it is complete and a small packet
        follows, they are small again.
        """
        sock, factory, transport = yield self.connect()
        packet = encode(PacketType.SUBMIT_JOB_BG, b"f", b"", b"z" * (LARGE_READ * 2), magic=REQ)
        first = LARGE_READ + SMALL_READ + 10
        sock.sendall(packet[:first])
        parser = transport.protocol._parser
        for _ in range(500):
            if parser.pending == first:
                break
            yield deferLater(reactor, 0.002, lambda: None)
        self.assertEqual(parser.pending, first)
        self.assertEqual(transport.bufferSize, LARGE_READ)
        sock.sendall(packet[first:] + encode(PacketType.ECHO_REQ, b"ping", magic=REQ))
        replies = encode(PacketType.JOB_CREATED, b"H:t:1", magic=RES) + encode(PacketType.ECHO_RES, b"ping", magic=RES)
        self.assertEqual((yield deferToThread(lambda: _recvExactly(sock, len(replies)))), replies)
        self.assertEqual(factory.server.jobCount(), 1)
        sock.sendall(encode(PacketType.ECHO_REQ, b"ping", magic=REQ))
        echo = encode(PacketType.ECHO_RES, b"ping", magic=RES)
        self.assertEqual((yield deferToThread(lambda: _recvExactly(sock, len(echo)))), echo)
        self.assertEqual(transport.bufferSize, SMALL_READ)


class LibraryReadsTests(TestCase):
    """
    The client's and the worker's TCP connections size their reads too.
    """

    @inlineCallbacks
    def test_clientAndWorker(self) -> Generator[Deferred[Any], Any, None]:
        """
        A client and a worker connected over TCP read large after a job
        and a result several small reads long, and small again after a
        small job.
        """
        factory = GearmanServerFactory(JobServer(reactor, handlePrefix=b"H:t"))
        # Twisted annotates a ServerFactory; any protocol factory serves.
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        host = port.getHost()
        assert isinstance(host, IPv4Address)
        address = "127.0.0.1:%d" % (host.port,)
        worker = GearmanWorker([address])
        worker.register(b"double", lambda job: job.data * 2)
        worker.startService()
        self.addCleanup(worker.stopService)
        client = GearmanClient([address])
        client.startService()
        self.addCleanup(client.stopService)
        for _ in range(500):
            if worker.connections:
                break
            yield deferLater(reactor, 0.002, lambda: None)
        [workerProtocol] = worker.connections
        workerTransport = workerProtocol.transport
        # A TCP connection, with a buffer size.
        assert isinstance(workerTransport, FileDescriptor)
        sizes: List[int] = []
        real = ReadSizer.received

        def received(sizer: ReadSizer, length: int, partial: bool) -> None:
            real(sizer, length, partial)
            if sizer._transport is workerTransport:
                sizes.append(workerTransport.bufferSize)

        self.patch(ReadSizer, "received", received)
        payload = b"y" * (SMALL_READ * 3)
        result = yield client.submitJob(b"double", payload)
        self.assertEqual(result, payload * 2)
        [clientTransport] = [server.connection.transport for server in client._servers]
        # The worker may have read NO_JOB since: what it read the job with.
        self.assertIn(LARGE_READ, sizes)
        self.assertEqual(clientTransport.bufferSize, LARGE_READ)
        self.assertEqual((yield client.submitJob(b"double", b"ab")), b"abab")
        self.assertEqual(clientTransport.bufferSize, SMALL_READ)
        self.assertEqual(workerTransport.bufferSize, SMALL_READ)

