"""
Tests for L{gearman_tw.connection}: what the client's and the worker's
connections share.
"""

from typing import List, Tuple

from twisted.internet import error
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.client import GearmanClientProtocol
from gearman_tw.connection import JobServerConnection
from gearman_tw.errors import ConnectionLost, describeFailure
from gearman_tw.protocol import REQ, RES, PacketType, encode, parseAll
from gearman_tw.worker import GearmanWorker, GearmanWorkerProtocol


class NoDelayTransport(StringTransport):
    """
    A StringTransport that records C{setTcpNoDelay} calls.
    """

    def __init__(self) -> None:
        super().__init__()
        self.noDelay: List[bool] = []

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.noDelay.append(enabled)


class JobServerConnectionTests(SynchronousTestCase):
    """
    Tests for L{JobServerConnection} and the protocols built on it.
    """

    def protocols(self) -> List[JobServerConnection]:
        worker = GearmanWorker(["127.0.0.1"], reactor=Clock(), clientId="w")
        return [GearmanClientProtocol(exceptions=True), GearmanWorkerProtocol(worker, [])]

    def test_noDelay(self) -> None:
        """
        The client's and the worker's connections turn TCP_NODELAY on.
        """
        for protocol in self.protocols():
            transport = NoDelayTransport()
            protocol.makeConnection(transport)
            self.assertEqual(transport.noDelay, [True], protocol)

    def test_noDelayUnsupported(self) -> None:
        """
        Over a transport without C{setTcpNoDelay} (a UNIX socket, a test
        transport) the client and the worker still go on to send their
        first requests: the option, and the worker's client ID.
        """
        first = [
            encode(PacketType.OPTION_REQ, b"exceptions", magic=REQ),
            encode(PacketType.SET_CLIENT_ID, b"w", magic=REQ),
        ]
        for protocol, packet in zip(self.protocols(), first):
            transport = StringTransport()
            protocol.makeConnection(transport)
            self.assertTrue(transport.value().startswith(packet), protocol)

    def test_receive(self) -> None:
        """
        L{JobServerConnection.receive} gives the response packets as they
        complete, however the bytes are split, and keeps the parser's
        failure after bad data.  (Over a StringTransport there is no read
        sizer: tests.test_reads checks sizing over TCP.)
        """
        connection = JobServerConnection()
        connection.makeConnection(StringTransport())
        stream = encode(PacketType.NOOP, magic=RES) + encode(PacketType.JOB_CREATED, b"H:1", magic=RES)
        self.assertEqual(connection.receive(stream[:15]), [(PacketType.NOOP, [], b"")])
        self.assertEqual(connection.receive(stream[15:]), [(PacketType.JOB_CREATED, [b"H:1"], b"H:1")])
        self.assertIsNone(connection.parser.failure)
        self.assertEqual(connection.receive(b"\0RES\0\0\0\xff\0\0\0\0"), [])
        self.assertIsNotNone(connection.parser.failure)

    def test_badData(self) -> None:
        """
        Bad data from the server closes the client's and the worker's
        connections, with an error logged; the packets before it in the same
        read are still handled.
        """
        garbage = b"\0XYZ" + b"\0" * 8
        client, worker = self.protocols()
        clientTransport, workerTransport = StringTransport(), StringTransport()
        client.makeConnection(clientTransport)
        worker.makeConnection(workerTransport)
        echoed = client.echo(b"ping")  # type: ignore[attr-defined]
        workerTransport.clear()
        with capturedLogs() as events:
            client.dataReceived(
                encode(PacketType.ECHO_RES, b"", magic=RES)
                + encode(PacketType.ECHO_RES, b"ping", magic=RES)
                + garbage
            )
            worker.dataReceived(encode(PacketType.NO_JOB, magic=RES) + garbage)
        self.assertEqual(self.successResultOf(echoed), b"ping")
        self.assertEqual(workerTransport.value(), encode(PacketType.PRE_SLEEP, magic=REQ))
        self.assertTrue(clientTransport.disconnecting)
        self.assertTrue(workerTransport.disconnecting)
        errors = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual([e["log_format"] for e in errors], ["Bad data from the job server: {why}"] * 2)

    def test_unexpectedPacket(self) -> None:
        """
        A response the client has no use for is logged as unexpected and
        the connection stays up.
        """
        client = self.protocols()[0]
        transport = StringTransport()
        client.makeConnection(transport)
        with capturedLogs() as events:
            client.dataReceived(encode(PacketType.NO_JOB, magic=RES))
        self.assertFalse(transport.disconnecting)
        self.assertEqual(
            [(e["log_level"], e.get("ptype")) for e in events],
            [(LogLevel.warn, PacketType.NO_JOB)],
        )


class HeartbeatTests(SynchronousTestCase):
    """
    The handshake and the heartbeat notice a job server that stopped
    answering.
    """

    def connect(self, **kwargs) -> Tuple[JobServerConnection, StringTransport, Clock]:
        clock = Clock()
        connection = JobServerConnection(clock, **kwargs)
        transport = StringTransport()
        connection.makeConnection(transport)
        return connection, transport, clock

    def echoes(self, transport: StringTransport) -> int:
        packets = parseAll(transport.value(), magic=REQ)
        transport.clear()
        return sum(1 for ptype, _, _ in packets if ptype == PacketType.ECHO_REQ)

    def test_handshakeTimeout(self) -> None:
        """
        A server that does not answer the handshake's ECHO within
        C{heartbeatTimeout} seconds has the connection dropped, with the
        reason recorded.
        """
        connection, transport, clock = self.connect(heartbeat=10, heartbeatTimeout=3)
        self.assertEqual(self.echoes(transport), 1)
        clock.advance(2.9)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(connection.lostReason, "the job server did not answer the handshake within 3 s")
        self.assertFalse(connection.ready)

    def test_heartbeat(self) -> None:
        """
        A ready connection that hears nothing for C{heartbeat} seconds sends
        an ECHO; an answer keeps it, silence past C{heartbeatTimeout} drops
        it.  Traffic in between means no ECHO at all.
        """
        connection, transport, clock = self.connect(heartbeat=10, heartbeatTimeout=3)
        self.echoes(transport)
        connection.dataReceived(encode(PacketType.ECHO_RES, b"", magic=RES))
        self.assertTrue(connection.ready)
        clock.advance(5)
        connection.dataReceived(encode(PacketType.NOOP, magic=RES))
        clock.advance(5)
        self.assertEqual(self.echoes(transport), 0)
        clock.advance(10)
        self.assertEqual(self.echoes(transport), 1)
        clock.advance(2)
        connection.dataReceived(encode(PacketType.ECHO_RES, b"", magic=RES))
        clock.advance(5)
        self.assertFalse(transport.disconnecting)
        clock.advance(5)
        self.assertEqual(self.echoes(transport), 1)
        clock.advance(3)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(connection.lostReason, "the job server did not answer a heartbeat within 3 s")

    def test_noHeartbeat(self) -> None:
        """
        With C{heartbeat=None} a quiet connection is never probed.
        """
        connection, transport, clock = self.connect(heartbeat=None, heartbeatTimeout=3)
        connection.dataReceived(encode(PacketType.ECHO_RES, b"", magic=RES))
        self.echoes(transport)
        clock.advance(3600)
        self.assertEqual(self.echoes(transport), 0)
        self.assertFalse(transport.disconnecting)

    def test_lostCancelsTimers(self) -> None:
        """
        A lost connection leaves no timer behind and fails its ECHOs.
        """
        connection, transport, clock = self.connect(heartbeat=10, heartbeatTimeout=3)
        pending = connection.echo(b"x")
        connection.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])
        self.failureResultOf(pending, ConnectionLost)
        self.failureResultOf(connection.echo(b"y"), ConnectionLost)


class DescribeFailureTests(SynchronousTestCase):
    """
    L{describeFailure} says in a few words why a connection failed.
    """

    def test_reasons(self) -> None:
        """
        Refused, timed out, DNS failures and closes get their own words.
        """
        cases = [
            (error.ConnectionRefusedError(), "connection refused"),
            (error.TimeoutError(), "timed out"),
            (error.DNSLookupError("nohost"), "host name not found"),
            (ConnectionDone(), "connection closed by the job server"),
            (RuntimeError("odd"), "odd"),
        ]
        for exception, text in cases:
            self.assertEqual(describeFailure(Failure(exception)), text)

    def test_tls(self) -> None:
        """
        pyOpenSSL's errors are a TLS failure with their reasons.
        """
        from OpenSSL.SSL import Error

        error = Error([("SSL routines", "", "certificate verify failed")])
        self.assertEqual(describeFailure(Failure(error)), "TLS failure: certificate verify failed")
