"""
Tests for L{gearman_tw.connection}: what the client's and the worker's
connections share.
"""

from typing import List

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.client import GearmanClientProtocol
from gearman_tw.connection import JobServerConnection
from gearman_tw.protocol import REQ, RES, PacketType, encode
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
