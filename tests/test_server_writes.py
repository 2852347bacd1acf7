"""
Tests for L{gearman_tw.server.writes}, over real loopback sockets.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from typing import List

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gearman_tw.protocol import REQ, RES, PacketType, encode
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.flow import OutputFlow
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.packets import PacketPeer
from gearman_tw.server.writes import WriteBatch, connectionSender, sendsDirectly


def _writer(transport, batch, limit=0, events=None):
    """
    A writer for C{transport} with an L{OutputFlow} (as C{write.flow}) that
    records C{"full"} and C{"drained"} in C{events}.
    """
    events = [] if events is None else events
    flow = OutputFlow(
        transport,
        limit,
        lambda: events.append("full"),
        lambda: events.append("drained"),
        streaming=not sendsDirectly(transport),
    )
    write = PacketPeer(connectionSender(transport, flow), 1, "-", batch=batch).write
    return write, flow


class _Accepted(Protocol):
    def connectionMade(self) -> None:
        self.factory.accepted.callback(self)  # type: ignore[attr-defined]

    def connectionLost(self, reason: object = None) -> None:
        self.factory.lost.callback(None)  # type: ignore[attr-defined]


def _recvAvailable(sock: socket.socket) -> bytes:
    """
    Whatever the client socket holds right now.
    """
    chunks = []
    while True:
        try:
            data = sock.recv(1 << 20, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


class WriteBatchTests(SynchronousTestCase):
    """
    Tests for L{WriteBatch}.
    """

    def test_flushInOrder(self) -> None:
        """
        L{WriteBatch.flush} calls the deferred senders in order, once, and
        ends the batch.
        """
        calls: List[int] = []
        batch = WriteBatch()
        batch.begin()
        self.assertTrue(batch.active)
        batch.defer(lambda: calls.append(1))
        batch.defer(lambda: calls.append(2))
        self.assertEqual(calls, [])
        batch.flush()
        self.assertEqual(calls, [1, 2])
        self.assertFalse(batch.active)
        batch.flush()
        self.assertEqual(calls, [1, 2])

    def test_otherTransports(self) -> None:
        """
        Transports that are not plain TCP or UNIX servers get everything
        through their own C{write}: at once outside a batch, in one call
        at the end of one.
        """

        class CountingTransport(StringTransport):
            writes = 0

            def write(self, data: bytes) -> None:
                self.writes += 1
                super().write(data)

        transport = CountingTransport()
        batch = WriteBatch()
        write, _ = _writer(transport, batch)
        write(b"now")
        self.assertEqual((transport.value(), transport.writes), (b"now", 1))
        batch.begin()
        write(b" one")
        write(b" two")
        self.assertEqual(transport.writes, 1)
        batch.flush()
        self.assertEqual((transport.value(), transport.writes), (b"now one two", 2))


class SocketWriterTests(TestCase):
    """
    Tests for L{connectionSender} on a real TCP server transport.
    """

    @inlineCallbacks
    def setUp(self):
        factory = Factory.forProtocol(_Accepted)
        factory.accepted = Deferred()  # type: ignore[attr-defined]
        factory.lost = Deferred()  # type: ignore[attr-defined]
        self.lost = factory.lost  # type: ignore[attr-defined]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.client = socket.create_connection(("127.0.0.1", port.getHost().port))
        self.addCleanup(self.client.close)
        self.server = yield factory.accepted  # type: ignore[attr-defined]
        self.transport = self.server.transport
        self.batch = WriteBatch()
        self.write, self.flow = _writer(self.transport, self.batch)

        def closeServer():
            if self.transport.connected:
                self.transport.abortConnection()
                return self.lost

        self.addCleanup(closeServer)

    def test_sendsAtOnce(self) -> None:
        """
        With nothing buffered, a write reaches the socket before the call
        returns: nothing is left in the transport's buffers.
        """
        self.write(b"hello")
        self.assertEqual(self.transport._tempDataLen, 0)
        self.assertEqual(self.transport.dataBuffer, b"")
        self.assertEqual(_recvAvailable(self.client), b"hello")

    def test_batch(self) -> None:
        """
        While a batch is active, writes wait and go out in one send when it
        is flushed.
        """
        sends: List[bytes] = []
        realSend = self.transport.socket.send

        class CountingSocket:
            def __getattr__(self, name):
                return getattr(self.__dict__["real"], name)

            def send(self, data):
                sends.append(bytes(data))
                return realSend(data)

        counting = CountingSocket()
        counting.__dict__["real"] = self.transport.socket
        self.transport.socket = counting
        self.flow.detach()
        write, _ = _writer(self.transport, self.batch)
        self.batch.begin()
        write(b"one ")
        write(b"two")
        self.assertEqual(_recvAvailable(self.client), b"")
        self.batch.flush()
        self.assertEqual(sends, [b"one two"])
        self.assertEqual(_recvAvailable(self.client), b"one two")
        write(b"!")
        self.assertEqual(sends, [b"one two", b"!"])
        self.transport.socket = counting.__dict__["real"]

    @inlineCallbacks
    def test_fullSocketKeepsOrder(self):
        """
        What the kernel does not take goes to the transport's buffer, and
        later writes queue behind it, so the reader gets every byte in order
        once it reads.
        """
        self.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        chunks = [(b"%06d" % i) * 10000 for i in range(20)]
        for chunk in chunks:
            self.write(chunk)
        self.assertTrue(self.transport._tempDataLen or self.transport.dataBuffer)
        expected = b"".join(chunks)
        received = []
        got = 0
        for _ in range(2000):
            data = _recvAvailable(self.client)
            received.append(data)
            got += len(data)
            if got >= len(expected):
                break
            yield deferLater(reactor, 0.001, lambda: None)
        self.assertEqual(b"".join(received), expected)

    @inlineCallbacks
    def test_writeThenLoseConnection(self):
        """
        Bytes gathered in a batch before C{loseConnection} are sent before
        the connection closes.
        """
        self.batch.begin()
        self.write(b"last words")
        self.flow.detach()
        self.transport.loseConnection()
        self.batch.flush()
        yield self.lost
        self.client.settimeout(5)
        data = b""
        while True:
            chunk = self.client.recv(1024)
            if not chunk:
                break
            data += chunk
        self.assertEqual(data, b"last words")

    @inlineCallbacks
    def test_resetPeer(self):
        """
        Writing to a connection the peer has reset does not raise: the
        transport meets the error and the connection is lost.
        """
        self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        self.client.close()
        for _ in range(200):
            if not self.transport.connected:
                break
            self.write(b"x" * 1000)
            yield deferLater(reactor, 0.005, lambda: None)
        yield self.lost
        self.assertFalse(self.transport.connected)


class UNIXSocketWriterTests(TestCase):
    """
    L{connectionSender} on a UNIX stream server transport.
    """

    @inlineCallbacks
    def test_sendsAtOnce(self):
        """
        A UNIX server transport gets the direct writer too: bytes reach the
        peer before the call returns.
        """
        factory = Factory.forProtocol(_Accepted)
        factory.accepted = Deferred()  # type: ignore[attr-defined]
        factory.lost = Deferred()  # type: ignore[attr-defined]
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "w.sock")
        port = reactor.listenUNIX(path, factory)
        self.addCleanup(port.stopListening)
        client = socket.socket(socket.AF_UNIX)
        self.addCleanup(client.close)
        client.connect(path)
        server = yield factory.accepted  # type: ignore[attr-defined]
        transport = server.transport
        write, _ = _writer(transport, WriteBatch())
        write(b"over unix")
        self.assertEqual(transport._tempDataLen, 0)
        self.assertEqual(_recvAvailable(client), b"over unix")
        transport.abortConnection()
        yield factory.lost  # type: ignore[attr-defined]


class ServerWritesTests(TestCase):
    """
    The job server's connections write through L{connectionSender}, gathering
    each read's replies per connection.
    """

    @inlineCallbacks
    def test_oneSendPerConnectionPerRead(self):
        """
        Three WORK_DATA packets in one read from a worker reach their client
        in one send, and JOB_ASSIGN goes out within the read that asked.
        """
        factory = GearmanServerFactory(JobServer(Clock(), handlePrefix=b"H:t"))
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        address = ("127.0.0.1", port.getHost().port)

        def connect() -> socket.socket:
            sock = socket.create_connection(address)
            self.addCleanup(sock.close)
            return sock

        @inlineCallbacks
        def receive(sock: socket.socket, size: int):
            data = b""
            for _ in range(500):
                data += _recvAvailable(sock)
                if len(data) >= size:
                    return data
                yield deferLater(reactor, 0.002, lambda: None)
            self.fail("only %r arrived" % (data,))

        client = connect()
        client.sendall(encode(PacketType.SUBMIT_JOB, b"f", b"", b"x", magic=REQ))
        created = encode(PacketType.JOB_CREATED, b"H:t:1", magic=RES)
        self.assertEqual((yield receive(client, len(created))), created)
        worker = connect()
        worker.sendall(encode(PacketType.CAN_DO, b"f", magic=REQ) + encode(PacketType.GRAB_JOB, magic=REQ))
        assign = encode(PacketType.JOB_ASSIGN, b"H:t:1", b"f", b"x", magic=RES)
        self.assertEqual((yield receive(worker, len(assign))), assign)

        sends: List[bytes] = []
        [clientTransport] = [
            protocol.transport
            for protocol in factory.connections
            if protocol.transport.getPeer().port == client.getsockname()[1]
        ]
        real = clientTransport.socket

        class CountingSocket:
            def __getattr__(self, name):
                return getattr(real, name)

            def send(self, data):
                sends.append(bytes(data))
                return real.send(data)

        clientTransport.socket = CountingSocket()
        self.addCleanup(setattr, clientTransport, "socket", real)
        worker.sendall(
            b"".join(encode(PacketType.WORK_DATA, b"H:t:1", b"%d" % i, magic=REQ) for i in range(3))
        )
        expected = b"".join(encode(PacketType.WORK_DATA, b"H:t:1", b"%d" % i, magic=RES) for i in range(3))
        self.assertEqual((yield receive(client, len(expected))), expected)
        self.assertEqual(sends, [expected])
