"""
Tests for L{gearman_tw.server.protocol}: framing, dispatch and bad input
(reference sections 1 and 2), over StringTransports.
"""

import struct

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.protocol import REQ, RES, PacketType, encode, parseAll
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer

P = PacketType


def req(ptype: int, *args: bytes) -> bytes:
    return encode(ptype, *args, magic=REQ)


class ProtocolTests(SynchronousTestCase):
    """
    One job server, connections made on demand.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.server = JobServer(self.clock, handlePrefix=b"H")
        self.factory = GearmanServerFactory(self.server, maxPacketSize=4096)

    def connect(self):
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        protocol.makeConnection(transport)
        return protocol, transport

    def replies(self, transport):
        data = transport.value()
        transport.clear()
        return [(ptype, args) for ptype, args, _ in parseAll(data, magic=RES)]

    def test_closedSilently(self) -> None:
        """
        Bad magic, type 0 and types over 42 close without a reply.
        """
        for data in (b"\0XYZ" + struct.pack(">II", 16, 0), b"\0REQ" + struct.pack(">II", 0, 0), b"\0REQ" + struct.pack(">II", 43, 0)):
            protocol, transport = self.connect()
            protocol.dataReceived(data)
            self.assertEqual(transport.value(), b"")
            self.assertTrue(transport.disconnecting, data)
            self.flushLoggedErrors()

    def test_responseMagic(self) -> None:
        """
        A packet with the response magic gets INVALID_MAGIC; the connection
        stays open.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(encode(P.ECHO_REQ, b"x", magic=RES) + req(P.ECHO_REQ, b"y"))
        self.assertEqual(
            self.replies(transport),
            [(P.ERROR, [b"INVALID_MAGIC", b"Request magic expected"]), (P.ECHO_RES, [b"y"])],
        )
        self.assertFalse(transport.disconnecting)

    def test_unexpectedCommands(self) -> None:
        """
        Type 5, server-to-client types, ALL_YOURS and SUBMIT_JOB_SCHED get
        INVALID_COMMAND and the connection stays open.
        """
        protocol, transport = self.connect()
        data = b"".join(
            [req(5), req(P.NOOP), req(P.JOB_CREATED, b"h"), req(P.ALL_YOURS), req(P.NO_JOB),
             req(P.SUBMIT_JOB_SCHED, b"f", b"", b"1", b"2", b"3", b"4", b"5", b"d"), req(P.ECHO_RES, b"x")]
        )
        protocol.dataReceived(data)
        self.assertEqual(
            self.replies(transport), [(P.ERROR, [b"INVALID_COMMAND", b"Command not expected"])] * 7
        )
        self.assertFalse(transport.disconnecting)

    def test_tooFewArguments(self) -> None:
        """
        Too few NULs for the type: INVALID_PACKET, then the connection closes.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"\0REQ" + struct.pack(">II", P.SUBMIT_JOB, 3) + b"f\0x")
        self.assertEqual(self.replies(transport), [(P.ERROR, [b"INVALID_PACKET", b"Packet has too few arguments"])])
        self.assertTrue(transport.disconnecting)
        self.flushLoggedErrors()

    def test_oversize(self) -> None:
        """
        A declared size over the maximum gets ARGUMENT_TOO_LARGE and a close
        before the payload is read.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"\0REQ" + struct.pack(">II", P.ECHO_REQ, 5000))
        self.assertEqual(self.replies(transport)[0][1][0], b"ARGUMENT_TOO_LARGE")
        self.assertTrue(transport.disconnecting)

    def test_longTextLine(self) -> None:
        """
        A text line over 8 KB without a newline closes the connection; so do
        more than five words.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"x" * 9000)
        self.assertTrue(transport.disconnecting)
        protocol, transport = self.connect()
        protocol.dataReceived(b"a b c d e f\n")
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)

    def test_badInputIsolated(self) -> None:
        """
        Garbage on one connection leaves another's queued job, and the other
        connection, untouched; a truncated packet then a close loses nothing.
        """
        client, clientTransport = self.connect()
        client.dataReceived(req(P.SUBMIT_JOB, b"f", b"", b"keep"))
        bad, badTransport = self.connect()
        bad.dataReceived(b"\0\xff\xff\xff" + b"junk" * 10)
        truncated, truncatedTransport = self.connect()
        truncated.dataReceived(req(P.SUBMIT_JOB_BG, b"f", b"", b"half")[:-2])
        truncated.connectionLost(None)
        bad.connectionLost(None)
        self.assertEqual(list(self.server.jobs), [b"H:1"])
        client.dataReceived(req(P.ECHO_REQ, b"still here"))
        self.assertEqual(self.replies(clientTransport)[-1], (P.ECHO_RES, [b"still here"]))
        self.flushLoggedErrors()

    def test_splitAnywhere(self) -> None:
        """
        Packets and admin lines trickling in a byte at a time are answered
        as if whole.
        """
        protocol, transport = self.connect()
        for byte in req(P.ECHO_REQ, b"abc") + b"version\n":
            protocol.dataReceived(bytes([byte]))
        self.assertTrue(transport.value().startswith(encode(P.ECHO_RES, b"abc")))
        self.assertTrue(transport.value().endswith(b"\n"))

    def test_echoEmpty(self) -> None:
        """
        ECHO_REQ returns the same bytes, NULs and emptiness included.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.ECHO_REQ, b"a\0b") + req(P.ECHO_REQ, b""))
        self.assertEqual(self.replies(transport), [(P.ECHO_RES, [b"a\0b"]), (P.ECHO_RES, [b""])])

    def test_option(self) -> None:
        """
        OPTION_REQ exceptions (any case) is echoed as sent; anything else is
        UNKNOWN_OPTION.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.OPTION_REQ, b"ExCePtIoNs") + req(P.OPTION_REQ, b"other"))
        self.assertEqual(
            self.replies(transport),
            [(P.OPTION_RES, [b"ExCePtIoNs"]), (P.ERROR, [b"UNKNOWN_OPTION", b"Server does not recognize given option"])],
        )
        self.assertTrue(protocol.peer.exceptions)

    def test_clientId(self) -> None:
        """
        SET_CLIENT_ID is kept up to 127 bytes, without a reply.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.SET_CLIENT_ID, b"i" * 200))
        self.assertEqual(protocol.peer.clientId, b"i" * 127)
        self.assertEqual(transport.value(), b"")

    def test_canDoTimeout(self) -> None:
        """
        CAN_DO_TIMEOUT is in milliseconds: under a second counts as one, 0 or
        junk as none, more than 20 characters drops the connection.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.CAN_DO_TIMEOUT, b"a", b"250") + req(P.CAN_DO_TIMEOUT, b"b", b"2500") + req(P.CAN_DO_TIMEOUT, b"c", b"junk"))
        self.assertEqual([t for _, t in protocol.peer.abilities], [1.0, 2.5, 0.0])
        protocol.dataReceived(req(P.CAN_DO_TIMEOUT, b"d", b"1" * 21))
        self.assertTrue(transport.disconnecting)
        self.flushLoggedErrors()

    def test_epoch(self) -> None:
        """
        SUBMIT_JOB_EPOCH: junk or 0 runs now; an epoch overflowing 64 bits
        drops the connection without a reply.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.SUBMIT_JOB_EPOCH, b"f", b"", b"junk", b"d"))
        self.assertEqual(self.replies(transport), [(P.JOB_CREATED, [b"H:1"])])
        self.assertEqual(self.server.functions[b"f"].queues[1][0].data, b"d")
        protocol.dataReceived(req(P.SUBMIT_JOB_EPOCH, b"f", b"", b"9" * 20, b"d"))
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)
        self.flushLoggedErrors()

    def test_statusLimits(self) -> None:
        """
        GET_STATUS reads its handle as a C string; 64 bytes or more are not
        answered and close the connection, as in gearmand.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.GET_STATUS, b"h\0junk"))
        self.assertEqual(self.replies(transport), [(P.STATUS_RES, [b"h", b"0", b"0", b"0", b"0"])])
        protocol.dataReceived(req(P.GET_STATUS, b"h" * 64) + req(P.GET_STATUS, b"h"))
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)
        self.flushLoggedErrors()

    def test_reduce(self) -> None:
        """
        SUBMIT_REDUCE_JOB keeps the reducer and drops the aggregator.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.SUBMIT_REDUCE_JOB, b"f", b"u", b"red", b"agg", b"d"))
        self.assertEqual(self.server.jobs[b"H:1"].reducer, b"red")

    def test_disconnectRequeues(self) -> None:
        """
        Closing a worker connection puts its job back.
        """
        worker, _ = self.connect()
        client, _ = self.connect()
        worker.dataReceived(req(P.CAN_DO, b"f"))
        client.dataReceived(req(P.SUBMIT_JOB, b"f", b"", b"x"))
        worker.dataReceived(req(P.GRAB_JOB))
        self.assertEqual(self.server.functions[b"f"].running, 1)
        worker.connectionLost(None)
        self.assertEqual(self.server.functions[b"f"].running, 0)
        self.assertEqual(self.server.functions[b"f"].queued, [0, 1, 0])
