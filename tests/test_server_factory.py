"""
Tests for L{gearman_tw.server.factory}.
"""

import socket
from typing import List

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import LogEvent, LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.server.factory import GearmanServerFactory, KeepAlive, filteredLogger
from gearman_tw.server.jobs import JobServer


class SocketTransport(StringTransport):
    """
    A StringTransport over a real (unconnected) TCP socket, recording the
    TCP options set on it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sock = socket.socket()
        self.noDelay = False

    def getHandle(self):
        return self.sock

    def setTcpKeepAlive(self, enabled):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(enabled))

    def setTcpNoDelay(self, enabled):
        self.noDelay = enabled


class FactoryTests(SynchronousTestCase):
    """
    Tests for L{GearmanServerFactory}.
    """

    def test_noDelay(self) -> None:
        """
        Every connection gets TCP_NODELAY.
        """
        factory = GearmanServerFactory(JobServer(Clock()))
        transport = SocketTransport()
        self.addCleanup(transport.sock.close)
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        assert protocol is not None
        protocol.makeConnection(transport)
        self.assertTrue(transport.noDelay)
        self.assertEqual(transport.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), 0)

    def test_keepAlive(self) -> None:
        """
        With keepalive settings, connections get SO_KEEPALIVE and the given
        idle, interval and count.
        """
        factory = GearmanServerFactory(JobServer(Clock()), keepAlive=KeepAlive(61, 7, 3))
        transport = SocketTransport()
        self.addCleanup(transport.sock.close)
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        assert protocol is not None
        protocol.makeConnection(transport)
        sock = transport.sock
        self.assertEqual(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), 1)
        self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE), 61)
        self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL), 7)
        self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT), 3)

    def test_connectionsTracked(self) -> None:
        """
        The factory knows its open connections, and the job server its peers.
        """
        server = JobServer(Clock())
        factory = GearmanServerFactory(server)
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        assert protocol is not None
        protocol.makeConnection(StringTransport())
        self.assertEqual(list(factory.connections), [protocol])
        self.assertEqual(len(server.peers), 1)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(list(factory.connections), [])
        self.assertEqual(len(server.peers), 0)


class FilteredLoggerTests(SynchronousTestCase):
    """
    Tests for L{filteredLogger}.
    """

    def test_levels(self) -> None:
        """
        Events below the gearmand level given are dropped; the rest reach
        the global log publisher.
        """
        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        log = filteredLogger("gearman_tw.test", "WARNING")
        log.info("dropped")
        log.warn("kept warning")
        log.error("kept error")
        self.assertEqual(
            [(e["log_format"], e["log_level"]) for e in events if e.get("log_namespace") == "gearman_tw.test"],
            [("kept warning", LogLevel.warn), ("kept error", LogLevel.error)],
        )


class ConnectionLimitTests(SynchronousTestCase):
    """
    The factory's limits on open connections, in all and per address.
    """

    def connect(self, factory: GearmanServerFactory, host: str):
        protocol = factory.buildProtocol(IPv4Address("TCP", host, 40000))
        if protocol is not None:
            protocol.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", host, 40000)))
        return protocol

    def test_total(self) -> None:
        """
        Past C{maxConnections} a new connection gets no protocol (Twisted
        closes it); one closing makes room again.
        """
        factory = GearmanServerFactory(JobServer(Clock()), maxConnections=3)
        opened = [self.connect(factory, "127.0.0.%d" % i) for i in range(3)]
        self.assertIsNone(self.connect(factory, "127.0.0.9"))
        self.assertEqual(factory.refused, 1)
        opened[0].connectionLost(None)
        self.assertIsNotNone(self.connect(factory, "127.0.0.9"))

    def test_perAddress(self) -> None:
        """
        Past C{maxPerAddress} connections from one address, that address is
        refused while others are served; a closed one makes room.
        """
        factory = GearmanServerFactory(JobServer(Clock()), maxPerAddress=2)
        first = self.connect(factory, "127.0.0.1")
        self.connect(factory, "127.0.0.1")
        self.assertIsNone(self.connect(factory, "127.0.0.1"))
        self.assertIsNotNone(self.connect(factory, "127.0.0.2"))
        first.connectionLost(None)
        self.assertIsNotNone(self.connect(factory, "127.0.0.1"))
        self.assertIsNone(self.connect(factory, "127.0.0.1"))
        self.assertEqual(factory.refused, 2)

    def test_logRateLimited(self) -> None:
        """
        Refusals are logged at most once per 10 seconds, with their count.
        """
        clock = Clock()
        factory = GearmanServerFactory(JobServer(clock), maxConnections=1)
        events: List[LogEvent] = []
        factory.log.observer = events.append  # type: ignore[assignment]
        self.connect(factory, "127.0.0.1")
        for _ in range(50):
            self.connect(factory, "127.0.0.2")
        clock.advance(10)
        self.connect(factory, "127.0.0.2")
        refusals = [e for e in events if "Refusing" in e.get("log_format", "")]
        self.assertEqual([e["refused"] for e in refusals], [1, 51])

    def test_noLimits(self) -> None:
        """
        Without limits nothing is refused.
        """
        factory = GearmanServerFactory(JobServer(Clock()))
        for _ in range(100):
            self.assertIsNotNone(self.connect(factory, "127.0.0.1"))
        self.assertEqual(factory.refused, 0)
