"""
Tests for L{gearman_tw.reconnect}.
"""

from typing import List

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from gearman_tw.connection import JobServerConnection
from gearman_tw.protocol import RES, PacketType, encode
from gearman_tw.reconnect import Reconnector


@implementer(IStreamClientEndpoint)
class ScriptedEndpoint:
    """
    An endpoint whose connection attempts the test answers one by one.
    """

    def __init__(self) -> None:
        self.attempts: List[Deferred[IProtocol]] = []
        self.factories: List[IProtocolFactory] = []

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        d: Deferred[IProtocol] = Deferred()
        self.attempts.append(d)
        self.factories.append(factory)
        return d

    def succeed(self) -> JobServerConnection:
        """
        Answer the last attempt with a connection over a StringTransport.
        """
        protocol = self.factories[-1].buildProtocol(IPv4Address("TCP", "127.0.0.1", 4730))
        assert isinstance(protocol, JobServerConnection)
        protocol.makeConnection(StringTransport())
        self.attempts[-1].callback(protocol)
        return protocol

    def refuse(self) -> None:
        self.attempts[-1].errback(ConnectionRefusedError())


def transportOf(protocol: JobServerConnection) -> StringTransport:
    """
    The transport L{ScriptedEndpoint.succeed} connected C{protocol} over.
    """
    transport = protocol.transport
    assert isinstance(transport, StringTransport)
    return transport


class ReconnectorTests(SynchronousTestCase):
    """
    Tests for L{Reconnector}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.endpoint = ScriptedEndpoint()
        self.events: List[tuple] = []
        self.reconnector = Reconnector(
            "s:1",
            self.endpoint,
            Factory.forProtocol(lambda: JobServerConnection(self.clock)),
            self.clock,
            lambda failures: 2.0**failures,
            onReady=lambda c: self.events.append(("ready", c)),
            onLost=lambda c, reason: self.events.append(("lost", c)),
            onFailed=lambda r: self.events.append(("failed", r.lastError)),
        )

    def test_retriesWithBackoff(self) -> None:
        """
        Failed attempts are retried after the policy's delay for the number
        of failures so far; the reason is kept.
        """
        self.reconnector.startService()
        self.endpoint.refuse()
        self.assertEqual(self.reconnector.failures, 1)
        self.assertEqual(self.reconnector.lastError, "connection refused")
        self.clock.advance(1.9)
        self.assertEqual(len(self.endpoint.attempts), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.endpoint.attempts), 2)
        self.endpoint.refuse()
        self.clock.advance(3.9)
        self.assertEqual(len(self.endpoint.attempts), 2)
        self.clock.advance(0.1)
        self.assertEqual(len(self.endpoint.attempts), 3)
        self.assertEqual(self.events, [("failed", "connection refused")] * 2)

    def test_retrySoon(self) -> None:
        """
        retrySoon brings a distant attempt closer, never a near one later.
        """
        self.reconnector.startService()
        for _ in range(5):
            self.endpoint.refuse()
            self.clock.advance(2.0**self.reconnector.failures)
        self.endpoint.refuse()
        self.reconnector.retrySoon(1.0)
        self.clock.advance(1.0)
        self.assertEqual(len(self.endpoint.attempts), 7)
        self.endpoint.refuse()
        self.reconnector.retrySoon(10**6)
        self.clock.advance(2.0**7)
        self.assertEqual(len(self.endpoint.attempts), 8)

    def test_readyAndLost(self) -> None:
        """
        A connection is reported once ready (its handshake answered), which
        resets the failures; once lost, it is reported and made again.
        """
        self.reconnector.startService()
        self.endpoint.refuse()
        self.clock.advance(2)
        protocol = self.endpoint.succeed()
        self.assertIs(self.reconnector.connection, protocol)
        self.assertFalse(self.reconnector.ready)
        protocol.dataReceived(encode(PacketType.ECHO_RES, b"", magic=RES))
        self.assertTrue(self.reconnector.ready)
        self.assertEqual(self.reconnector.failures, 0)
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        self.assertIsNone(self.reconnector.connection)
        self.assertEqual([e[0] for e in self.events], ["failed", "ready", "lost"])
        self.clock.advance(1)
        self.assertEqual(len(self.endpoint.attempts), 3)

    def test_unansweredHandshakeCountsAsFailure(self) -> None:
        """
        A connection lost before it was ready counts as a failed attempt,
        with the protocol's reason, so the backoff keeps growing against a
        server that accepts and never answers.
        """
        self.reconnector.startService()
        protocol = self.endpoint.succeed()
        self.clock.advance(10)
        self.assertTrue(transportOf(protocol).disconnecting)
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        self.assertEqual(self.reconnector.failures, 1)
        self.assertEqual(self.reconnector.lastError, "the job server did not answer the handshake within 10 s")

    def test_stop(self) -> None:
        """
        Stopping cancels a pending retry and closes the connection; a
        close the peer never completes is aborted after closeTimeout.
        """
        self.reconnector.startService()
        self.endpoint.refuse()
        self.successResultOf(self.reconnector.stopService())
        self.clock.advance(100)
        self.assertEqual(len(self.endpoint.attempts), 1)

        self.reconnector.startService()
        protocol = self.endpoint.succeed()
        aborts: List[bool] = []
        self.patch(transportOf(protocol), "abortConnection", lambda: aborts.append(True))
        stopped = self.reconnector.stopService()
        self.assertTrue(transportOf(protocol).disconnecting)
        self.assertNoResult(stopped)
        self.clock.advance(Reconnector.closeTimeout - 0.1)
        self.assertEqual(aborts, [])
        self.clock.advance(0.1)
        self.assertEqual(aborts, [True])
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        self.successResultOf(stopped)
        self.clock.advance(100)
        self.assertEqual(len(self.endpoint.attempts), 2)

    def test_stopWhileConnecting(self) -> None:
        """
        Stopping while an attempt is under way cancels it; a connection
        that arrives anyway is aborted and not kept.
        """
        self.reconnector.startService()
        self.reconnector.stopService()
        self.assertEqual(self.reconnector.failures, 0)
        self.assertIsNone(self.reconnector.lastError)
        self.clock.advance(100)
        self.assertEqual(len(self.endpoint.attempts), 1)

        self.reconnector.startService()
        self.reconnector.running = False
        protocol = self.endpoint.succeed()
        self.assertIsNone(self.reconnector.connection)
        self.assertTrue(transportOf(protocol).disconnecting)


class ReconnectorLogTests(SynchronousTestCase):
    """
    A reconnector logs the server and the reason once per change of
    state, not once per attempt.
    """

    def setUp(self) -> None:
        from twisted.logger import Logger

        self.clock = Clock()
        self.endpoint = ScriptedEndpoint()
        self.logged = EventLoggingObserver()
        self.reconnector = Reconnector(
            "127.0.0.1:4730",
            self.endpoint,
            Factory.forProtocol(lambda: JobServerConnection(self.clock)),
            self.clock,
            lambda failures: 1.0,
        )
        self.reconnector.log = Logger(observer=self.logged)

    def lines(self) -> List[str]:
        from twisted.logger import formatEvent

        return [formatEvent(event) for event in self.logged]

    def test_oncePerState(self) -> None:
        """
        Five refusals in a row log one line naming the server and why; a
        connection logs one line; losing it logs one, and refusals after
        that log one again.
        """
        self.reconnector.startService()
        for _ in range(5):
            self.endpoint.refuse()
            self.clock.advance(1)
        self.assertEqual(
            self.lines(), ["Cannot reach job server 127.0.0.1:4730: connection refused; retrying"]
        )
        protocol = self.endpoint.succeed()
        self.reconnector._ready(protocol)
        self.assertEqual(self.lines()[1:], ["Connected to job server 127.0.0.1:4730"])
        transportOf(protocol).loseConnection()
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        self.assertEqual(len(self.lines()), 3)
        self.assertTrue(self.lines()[2].startswith("Lost the connection to job server 127.0.0.1:4730: "))
        self.clock.advance(1)
        self.endpoint.refuse()
        self.clock.advance(1)
        self.endpoint.refuse()
        self.assertEqual(
            self.lines()[3:], ["Cannot reach job server 127.0.0.1:4730: connection refused; retrying"]
        )

    def test_noFactoryLines(self) -> None:
        """
        The factory made for each attempt logs no "Starting factory" line.
        """
        from twisted.logger import globalLogPublisher

        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        self.reconnector.startService()
        factory = self.endpoint.factories[-1]
        factory.doStart()
        factory.doStop()
        self.assertEqual([e for e in events if "factory" in e.get("log_format", "")], [])
