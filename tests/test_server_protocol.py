"""
Tests for L{gearman_tw.server.protocol}: framing, dispatch and bad input
(reference sections 1 and 2), over in-memory transports.
"""

import struct
from typing import List, Optional, Sequence, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.client import GearmanClientProtocol, Task
from gearman_tw.errors import JobException, JobFailed
from gearman_tw.protocol import ARGUMENTS, MAX_PACKET_TYPE, REQ, RES, PacketParser, PacketType, encode, parseAll
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.model import HIGH, LOW, NORMAL
from gearman_tw.server.protocol import GearmanServerProtocol
from tests.mixins import SynchronousTestCaseMixin

P = PacketType

INVALID_COMMAND = (P.ERROR, [b"INVALID_COMMAND", b"Command not expected"])
INVALID_MAGIC = (P.ERROR, [b"INVALID_MAGIC", b"Request magic expected"])
UNKNOWN_OPTION = (P.ERROR, [b"UNKNOWN_OPTION", b"Server does not recognize given option"])

#: The types a server refuses with INVALID_COMMAND (reference 1.3).
UNEXPECTED = (
    5,
    P.NOOP,
    P.JOB_CREATED,
    P.NO_JOB,
    P.JOB_ASSIGN,
    P.ECHO_RES,
    P.ERROR,
    P.STATUS_RES,
    P.ALL_YOURS,
    P.OPTION_RES,
    P.JOB_ASSIGN_UNIQ,
    P.SUBMIT_JOB_SCHED,
    P.JOB_ASSIGN_ALL,
    P.STATUS_RES_UNIQUE,
)


def req(ptype: int, *args: bytes) -> bytes:
    """
    A request packet.
    """
    return encode(ptype, *args, magic=REQ)


def header(ptype: int, size: int, magic: bytes = REQ) -> bytes:
    """
    A packet header, for payloads the encoder would not build.
    """
    return magic + struct.pack(">II", ptype, size)


def sampleArguments(ptype: int) -> List[bytes]:
    """
    Well-formed arguments for any packet type.
    """
    argc, hasData = ARGUMENTS[ptype]
    return [b"a"] * argc + ([b"data"] if hasData else [])


class RecordingTransport(StringTransport):
    """
    A StringTransport that can set TCP_NODELAY and counts its writes.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.noDelay: Optional[bool] = None
        self.writes = 0

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.noDelay = enabled

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


class ServerTestMixin(SynchronousTestCaseMixin):
    """
    One job server on a Clock; connections made on demand.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.server = JobServer(self.clock, handlePrefix=b"H")
        self.factory = GearmanServerFactory(self.server, maxPacketSize=1 << 22)

    def connect(
        self, factory: Optional[GearmanServerFactory] = None, transport: Optional[StringTransport] = None
    ) -> Tuple[GearmanServerProtocol, StringTransport]:
        """
        A new connection on a StringTransport.
        """
        factory = factory or self.factory
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4730))
        assert protocol is not None
        if transport is None:
            transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        protocol.makeConnection(transport)
        return protocol, transport

    def replies(self, transport: StringTransport) -> List[Tuple[int, List[bytes]]]:
        """
        The binary packets written to C{transport} since the last call.
        """
        data = transport.value()
        transport.clear()
        return [(ptype, args) for ptype, args, _ in parseAll(data, magic=RES)]

    def assertClosedSilently(self, transport: StringTransport) -> None:
        """
        The connection was closed and nothing was written to it.
        """
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)

    def assertOpen(self, protocol: GearmanServerProtocol, transport: StringTransport) -> None:
        """
        The connection is open and still answers.
        """
        self.assertFalse(transport.disconnecting)
        transport.clear()
        protocol.dataReceived(req(P.ECHO_REQ, b"alive"))
        self.assertEqual(self.replies(transport), [(P.ECHO_RES, [b"alive"])])


class BadInputTests(ServerTestMixin, SynchronousTestCase):
    """
    Each bad-input case of reference section 1.3, and other malformed
    streams.
    """

    def tearDown(self) -> None:
        # Dropped connections are logged as errors.
        self.flushLoggedErrors()

    def test_badMagic(self) -> None:
        """
        A magic other than C{\\0REQ} or C{\\0RES} closes the connection
        without a reply; what came before it is still answered.
        """
        for magic in (b"\0XYZ", b"\0req", b"\0\0\0\0"):
            protocol, transport = self.connect()
            protocol.dataReceived(magic + struct.pack(">II", P.ECHO_REQ, 1) + b"x")
            self.assertClosedSilently(transport)
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.ECHO_REQ, b"first") + b"\0BAD" + b"\0" * 8 + req(P.ECHO_REQ, b"lost"))
        self.assertEqual(self.replies(transport), [(P.ECHO_RES, [b"first"])])
        self.assertTrue(transport.disconnecting)

    def test_responseMagic(self) -> None:
        """
        A packet with the response magic gets INVALID_MAGIC, has no effect,
        and the connection stays open.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(
            encode(P.ECHO_REQ, b"x")
            + encode(P.SUBMIT_JOB, b"f", b"", b"d")
            + encode(P.CAN_DO, b"f")
            + encode(P.GRAB_JOB)
        )
        self.assertEqual(self.replies(transport), [INVALID_MAGIC] * 4)
        self.assertEqual(self.server.jobs, {})
        self.assertEqual(protocol.peer.abilities, [])
        self.assertOpen(protocol, transport)

    def test_badTypes(self) -> None:
        """
        Type 0 and types from 43 up close the connection without a reply,
        whatever the magic.
        """
        for magic in (REQ, RES):
            for ptype in (0, 43, 0xFFFFFFFF):
                protocol, transport = self.connect()
                protocol.dataReceived(header(ptype, 0, magic))
                self.assertClosedSilently(transport)

    def test_unexpectedCommands(self) -> None:
        """
        Type 5, every server-to-client type, ALL_YOURS and SUBMIT_JOB_SCHED
        each get INVALID_COMMAND; the connection stays open and no job is
        made.
        """
        for ptype in UNEXPECTED:
            protocol, transport = self.connect()
            protocol.dataReceived(req(ptype, *sampleArguments(ptype)))
            self.assertEqual(self.replies(transport), [INVALID_COMMAND], ptype)
            self.assertOpen(protocol, transport)
        self.assertEqual(self.server.jobs, {})

    def test_expectedCommands(self) -> None:
        """
        No other type gets INVALID_COMMAND.
        """
        for ptype in range(1, MAX_PACKET_TYPE + 1):
            if ptype in UNEXPECTED:
                continue
            protocol, transport = self.connect()
            protocol.dataReceived(req(ptype, *sampleArguments(ptype)))
            self.assertNotIn(INVALID_COMMAND, self.replies(transport), ptype)

    def test_tooFewArguments(self) -> None:
        """
        Too few NULs for the type: ERROR INVALID_PACKET after the replies to
        earlier packets, then the connection closes; later packets are not
        run.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(
            req(P.ECHO_REQ, b"before")
            + header(P.SUBMIT_JOB, 3)
            + b"f\0x"
            + req(P.SUBMIT_JOB, b"f", b"", b"after")
        )
        self.assertEqual(
            self.replies(transport),
            [(P.ECHO_RES, [b"before"]), (P.ERROR, [b"INVALID_PACKET", b"Packet has too few arguments"])],
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.server.jobs, {})
        protocol.dataReceived(req(P.ECHO_REQ, b"ignored"))
        self.assertEqual(transport.value(), b"")

    def test_tooFewArgumentsEachType(self) -> None:
        """
        Every type with NUL-ended arguments is checked.
        """
        for ptype in range(1, MAX_PACKET_TYPE + 1):
            argc, hasData = ARGUMENTS[ptype]
            separators = argc if hasData else argc - 1
            if separators <= 0:
                continue
            protocol, transport = self.connect()
            payload = b"\0".join([b"a"] * separators)
            protocol.dataReceived(header(ptype, len(payload)) + payload)
            self.assertEqual(
                self.replies(transport), [(P.ERROR, [b"INVALID_PACKET", b"Packet has too few arguments"])], ptype
            )
            self.assertTrue(transport.disconnecting)

    def test_oversize(self) -> None:
        """
        A declared size over the factory's maximum gets ERROR
        ARGUMENT_TOO_LARGE and a close as soon as the header is in.
        """
        factory = GearmanServerFactory(self.server, maxPacketSize=4096)
        protocol, transport = self.connect(factory)
        protocol.dataReceived(header(P.ECHO_REQ, 4097))
        [(ptype, args)] = self.replies(transport)
        self.assertEqual((ptype, args[0]), (P.ERROR, b"ARGUMENT_TOO_LARGE"))
        self.assertTrue(transport.disconnecting)
        protocol, transport = self.connect(factory)
        protocol.dataReceived(req(P.ECHO_REQ, b"e" * 4096))
        self.assertEqual(self.replies(transport), [(P.ECHO_RES, [b"e" * 4096])])

    def test_argumentTooLarge(self) -> None:
        """
        A NUL-ended argument that does not fit gearmand's 8192-byte buffer
        with its NUL closes the connection without a reply.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.SUBMIT_JOB, b"f" * 8191, b"", b"x"))
        self.assertEqual(self.replies(transport), [(P.JOB_CREATED, [b"H:1"])])
        protocol.dataReceived(req(P.SUBMIT_JOB, b"g" * 8192, b"", b"x"))
        self.assertClosedSilently(transport)
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.CAN_DO, b"j" * 8193))
        self.assertClosedSilently(transport)
        self.assertEqual(list(self.server.functions), [b"f" * 8191])

    def test_garbage(self) -> None:
        """
        Binary garbage closes the connection; a garbage line is an unknown
        admin command.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"\0\xff\x13\x37" + bytes(range(256)))
        self.assertClosedSilently(transport)
        protocol, transport = self.connect()
        protocol.dataReceived(b"\xfe\x00junk\n")
        self.assertEqual(transport.value(), b"ERR UNKNOWN_COMMAND Unknown+server+command\xfe\x00junk\r\n")
        self.assertOpen(protocol, transport)

    def test_longTextLine(self) -> None:
        """
        8192 bytes of text without a newline close the connection at once
        without a reply; a line of 8191 bytes is answered.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"x" * 8191)
        self.assertFalse(transport.disconnecting)
        protocol.dataReceived(b"x")
        self.assertClosedSilently(transport)
        protocol, transport = self.connect()
        protocol.dataReceived(b"x" * 100000)
        self.assertClosedSilently(transport)
        protocol, transport = self.connect()
        protocol.dataReceived(b"status " + b"y" * 8184 + b"\n")
        self.assertEqual(transport.value(), b".\n")

    def test_tooManyWords(self) -> None:
        """
        An admin line of more than five words closes without a reply, after
        the replies to earlier lines.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"status\na b c d e f\nstatus\n")
        self.assertEqual(transport.value(), b".\n")
        self.assertTrue(transport.disconnecting)

    def test_truncatedThenLost(self) -> None:
        """
        A connection lost in the middle of a packet or a line does nothing
        with it, and its jobs are handled as for any closed connection.
        """
        client, clientTransport = self.connect()
        client.dataReceived(req(P.SUBMIT_JOB_BG, b"f", b"", b"kept"))
        for partial in (
            req(P.SUBMIT_JOB_BG, b"f", b"", b"half")[:-2],
            req(P.SUBMIT_JOB, b"f", b"", b"x")[:7],
            b"status",
        ):
            protocol, transport = self.connect()
            protocol.dataReceived(partial)
            protocol.connectionLost(Failure(ConnectionDone()))
            self.assertEqual(transport.value(), b"")
            self.assertNotIn(protocol, self.factory.connections)
            self.assertNotIn(protocol.peer, self.server.peers)
        kept = self.server.lookup(b"H:1")
        assert kept is not None
        self.assertEqual((self.server.jobCount(), kept.data), (1, b"kept"))
        self.assertEqual(self.server.functions[b"f"].queued, [0, 1, 0])
        self.assertOpen(client, clientTransport)

    def test_malformedIsolated(self) -> None:
        """
        A malformed packet on one connection leaves another connection's
        queued job, and that connection, untouched.
        """
        client, clientTransport = self.connect()
        client.dataReceived(req(P.SUBMIT_JOB, b"f", b"", b"keep"))
        self.assertEqual(self.replies(clientTransport), [(P.JOB_CREATED, [b"H:1"])])
        for bad in (header(P.SUBMIT_JOB, 2) + b"f\0", b"\0\xff\xff\xff" + b"junk" * 10, header(99, 0)):
            protocol, transport = self.connect()
            protocol.dataReceived(req(P.CAN_DO, b"f") + bad)
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.server.functions[b"f"].queued, [0, 1, 0])
        self.assertEqual(self.server.functions[b"f"].workers, 0)
        worker, workerTransport = self.connect()
        worker.dataReceived(req(P.CAN_DO, b"f") + req(P.GRAB_JOB))
        self.assertEqual(self.replies(workerTransport), [(P.JOB_ASSIGN, [b"H:1", b"f", b"keep"])])
        worker.dataReceived(req(P.WORK_COMPLETE, b"H:1", b"done"))
        self.assertEqual(self.replies(clientTransport), [(P.WORK_COMPLETE, [b"H:1", b"done"])])

    def test_dataAfterClose(self) -> None:
        """
        Once a connection is being closed, more data is ignored.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(header(0, 0))
        protocol.dataReceived(req(P.SUBMIT_JOB, b"f", b"", b"x") + b"status\n")
        self.assertClosedSilently(transport)
        self.assertEqual(self.server.jobs, {})


class CommandTests(ServerTestMixin, SynchronousTestCase):
    """
    Packets every connection may send, and argument parsing in the protocol.
    """

    def test_echo(self) -> None:
        """
        ECHO_REQ returns the same bytes: NULs, emptiness and a megabyte.
        """
        protocol, transport = self.connect()
        big = bytes(range(256)) * 4096
        protocol.dataReceived(req(P.ECHO_REQ, b"a\0b\0") + req(P.ECHO_REQ, b"") + req(P.ECHO_REQ, big))
        self.assertEqual(
            transport.value(),
            encode(P.ECHO_RES, b"a\0b\0") + encode(P.ECHO_RES, b"") + encode(P.ECHO_RES, big),
        )

    def test_optionExceptions(self) -> None:
        """
        OPTION_REQ C{exceptions} in any case turns the option on and is
        answered with the name as sent, bytes after a NUL included.
        """
        for name in (b"exceptions", b"EXCEPTIONS", b"ExCePtIoNs", b"exceptions\0junk"):
            protocol, transport = self.connect()
            self.assertFalse(protocol.peer.exceptions)
            protocol.dataReceived(req(P.OPTION_REQ, name))
            self.assertEqual(transport.value(), encode(P.OPTION_RES, name))
            self.assertTrue(protocol.peer.exceptions)

    def test_optionUnknown(self) -> None:
        """
        Any other option, 64 bytes or more included, gets UNKNOWN_OPTION and
        changes nothing; the connection stays open.
        """
        for name in (b"other", b"", b"exceptionsx", b"exception", b" exceptions", b"x" * 64, b"exceptions" + b" " * 60):
            protocol, transport = self.connect()
            protocol.dataReceived(req(P.OPTION_REQ, name))
            self.assertEqual(self.replies(transport), [UNKNOWN_OPTION], name)
            self.assertFalse(protocol.peer.exceptions)
            self.assertOpen(protocol, transport)

    def test_serverExceptions(self) -> None:
        """
        With C{--exceptions} every connection starts with the option on.
        """
        factory = GearmanServerFactory(JobServer(self.clock, exceptions=True))
        protocol, _ = self.connect(factory)
        self.assertTrue(protocol.peer.exceptions)

    def test_clientId(self) -> None:
        """
        SET_CLIENT_ID is stored as sent up to 127 bytes, without a reply;
        the default is C{-}.
        """
        protocol, transport = self.connect()
        self.assertEqual(protocol.peer.clientId, b"-")
        protocol.dataReceived(req(P.SET_CLIENT_ID, b"my worker\0x"))
        self.assertEqual(protocol.peer.clientId, b"my worker\0x")
        protocol.dataReceived(req(P.SET_CLIENT_ID, b"i" * 127))
        self.assertEqual(protocol.peer.clientId, b"i" * 127)
        protocol.dataReceived(req(P.SET_CLIENT_ID, b"0123456789" * 20))
        self.assertEqual(protocol.peer.clientId, (b"0123456789" * 20)[:127])
        self.assertEqual(transport.value(), b"")

    def test_canDoTimeout(self) -> None:
        """
        CAN_DO_TIMEOUT is in milliseconds, read as C{strtol} reads: 1 to
        999 count as a second; 0, negative, empty or junk as no timeout;
        digits end at the first non-digit; up to 20 characters are read.
        """
        cases = [
            (b"1", 1.0),
            (b"250", 1.0),
            (b"999", 1.0),
            (b"1000", 1.0),
            (b"2500", 2.5),
            (b" 1500", 1.5),
            (b"+3000ms", 3.0),
            (b"4000\0junk", 4.0),
            (b"0" * 16 + b"5000", 5.0),
            (b"0", 0.0),
            (b"-5", 0.0),
            (b"", 0.0),
            (b"junk", 0.0),
            (b"9223372036854775806", 9223372036854775.806),
        ]
        protocol, transport = self.connect()
        for index, (value, _) in enumerate(cases):
            protocol.dataReceived(req(P.CAN_DO_TIMEOUT, b"f%d" % (index,), value))
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)
        self.assertEqual(
            [(function.name, timeout) for function, timeout in protocol.peer.abilities],
            [(b"f%d" % (index,), seconds) for index, (_, seconds) in enumerate(cases)],
        )

    def test_canDoTimeoutDrops(self) -> None:
        """
        A CAN_DO_TIMEOUT value of more than 20 characters, or one C{strtol}
        clamps, drops the connection without a reply or a registration.
        """
        for value in (b"1" * 21, b"0" * 21, b"9223372036854775807", b"-9223372036854775808", b"9" * 20):
            protocol, transport = self.connect()
            protocol.dataReceived(req(P.CAN_DO_TIMEOUT, b"f", value))
            self.assertClosedSilently(transport)
            self.assertEqual(protocol.peer.abilities, [], value)
        self.flushLoggedErrors()

    def test_canDoTimeoutClock(self) -> None:
        """
        A 250 ms CAN_DO_TIMEOUT requeues a job after one second.
        """
        worker, _ = self.connect()
        client, _ = self.connect()
        worker.dataReceived(req(P.CAN_DO_TIMEOUT, b"f", b"250"))
        client.dataReceived(req(P.SUBMIT_JOB, b"f", b"", b"x"))
        worker.dataReceived(req(P.GRAB_JOB))
        self.clock.advance(0.999)
        self.assertEqual(self.server.functions[b"f"].running, 1)
        self.clock.advance(0.002)
        self.assertEqual(self.server.functions[b"f"].running, 0)
        self.assertEqual(self.server.functions[b"f"].queued, [0, 1, 0])

    def submitEpoch(self, epoch: bytes) -> Tuple[GearmanServerProtocol, StringTransport]:
        """
        SUBMIT_JOB_EPOCH for C{f} at C{epoch} on a new connection.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.SUBMIT_JOB_EPOCH, b"f", b"", epoch, b"d"))
        return protocol, transport

    def test_epochNow(self) -> None:
        """
        SUBMIT_JOB_EPOCH with junk, 0, a negative or a past time makes a
        background NORMAL job that runs at once.
        """
        self.clock.advance(1000)
        for index, epoch in enumerate((b"junk", b"0", b"-5", b"999", b"1000", b"", b" 500x")):
            protocol, transport = self.submitEpoch(epoch)
            handle = b"H:%d" % (index + 1,)
            self.assertEqual(self.replies(transport), [(P.JOB_CREATED, [handle])], epoch)
            protocol.connectionLost(Failure(ConnectionDone()))
            job = self.server.lookup(handle)
            assert job is not None
            self.assertTrue(job.background)
            self.assertEqual(job.priority, NORMAL)
        worker, workerTransport = self.connect()
        worker.dataReceived(req(P.CAN_DO, b"f") + req(P.GRAB_JOB) * 7 + req(P.GRAB_JOB))
        self.clock.advance(0)
        self.assertEqual(
            [ptype for ptype, _ in self.replies(workerTransport)], [P.JOB_ASSIGN] * 7 + [P.NO_JOB]
        )

    def test_epochFuture(self) -> None:
        """
        A future epoch holds the job until then; the largest 64-bit number
        is accepted.
        """
        self.clock.advance(1000)
        self.submitEpoch(b"2000")
        self.submitEpoch(b"9223372036854775807")
        worker, workerTransport = self.connect()
        worker.dataReceived(req(P.CAN_DO, b"f") + req(P.GRAB_JOB))
        self.clock.advance(0)
        self.assertEqual(self.replies(workerTransport), [(P.NO_JOB, [])])
        self.clock.advance(1000)
        worker.dataReceived(req(P.GRAB_JOB) + req(P.GRAB_JOB))
        self.clock.advance(0)
        self.assertEqual(self.replies(workerTransport), [(P.JOB_ASSIGN, [b"H:1", b"f", b"d"]), (P.NO_JOB, [])])
        self.assertEqual(self.server.jobs[b"H:2"].when, 9223372036854775807)

    def test_epochOverflow(self) -> None:
        """
        An epoch that overflows a signed 64-bit integer drops the connection
        without a reply or a job.
        """
        for epoch in (b"9223372036854775808", b"-9223372036854775809", b"9" * 40):
            protocol, transport = self.submitEpoch(epoch)
            self.assertClosedSilently(transport)
        self.assertEqual(self.server.jobs, {})
        self.flushLoggedErrors()

    def test_submitTypes(self) -> None:
        """
        Each SUBMIT packet sets its priority and whether it is background.
        """
        protocol, transport = self.connect()
        cases = [
            (P.SUBMIT_JOB, NORMAL, False),
            (P.SUBMIT_JOB_BG, NORMAL, True),
            (P.SUBMIT_JOB_HIGH, HIGH, False),
            (P.SUBMIT_JOB_HIGH_BG, HIGH, True),
            (P.SUBMIT_JOB_LOW, LOW, False),
            (P.SUBMIT_JOB_LOW_BG, LOW, True),
        ]
        for index, (ptype, priority, background) in enumerate(cases):
            protocol.dataReceived(req(ptype, b"f", b"u%d" % (index,), b"d\0%d" % (index,)))
            job = self.server.jobs[b"H:%d" % (index + 1,)]
            self.assertEqual((job.priority, job.background, job.data), (priority, background, b"d\0%d" % (index,)))
        self.assertEqual(len(self.replies(transport)), 6)

    def test_reduce(self) -> None:
        """
        SUBMIT_REDUCE_JOB keeps the reducer and drops the aggregator; an
        empty reducer is none.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(
            req(P.SUBMIT_REDUCE_JOB, b"f", b"u", b"red", b"agg", b"d")
            + req(P.SUBMIT_REDUCE_JOB_BACKGROUND, b"f", b"v", b"", b"agg", b"e")
        )
        self.assertEqual(self.replies(transport), [(P.JOB_CREATED, [b"H:1"]), (P.JOB_CREATED, [b"H:2"])])
        self.assertEqual((self.server.jobs[b"H:1"].reducer, self.server.jobs[b"H:1"].background), (b"red", False))
        self.assertEqual((self.server.jobs[b"H:2"].reducer, self.server.jobs[b"H:2"].background), (None, True))

    def test_getStatus(self) -> None:
        """
        GET_STATUS answers known and unknown handles, reading the handle up
        to a NUL.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.SUBMIT_JOB_BG, b"f", b"", b"x"))
        transport.clear()
        protocol.dataReceived(
            req(P.GET_STATUS, b"H:1") + req(P.GET_STATUS, b"h" * 63) + req(P.GET_STATUS, b"h\0" + b"j" * 70)
        )
        self.assertEqual(
            self.replies(transport),
            [
                (P.STATUS_RES, [b"H:1", b"1", b"0", b"0", b"0"]),
                (P.STATUS_RES, [b"h" * 63, b"0", b"0", b"0", b"0"]),
                (P.STATUS_RES, [b"h", b"0", b"0", b"0", b"0"]),
            ],
        )

    def test_getStatusLongHandle(self) -> None:
        """
        GET_STATUS with a handle of 64 bytes or more gets no reply, and the
        connection closes, as in gearmand; earlier replies still go out.
        """
        for handle in (b"h" * 64, b"h" * 1000):
            protocol, transport = self.connect()
            protocol.dataReceived(req(P.GET_STATUS, b"h") + req(P.GET_STATUS, handle) + req(P.GET_STATUS, b"x"))
            self.assertEqual(self.replies(transport), [(P.STATUS_RES, [b"h", b"0", b"0", b"0", b"0"])])
            self.assertTrue(transport.disconnecting)
        self.flushLoggedErrors()

    def test_getStatusUnique(self) -> None:
        """
        GET_STATUS_UNIQUE answers for uniques up to 64 bytes; longer ones
        close the connection without a reply.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(req(P.SUBMIT_JOB, b"f", b"u" * 64, b"x"))
        transport.clear()
        protocol.dataReceived(req(P.GET_STATUS_UNIQUE, b"u" * 64) + req(P.GET_STATUS_UNIQUE, b"v"))
        self.assertEqual(
            self.replies(transport),
            [
                (P.STATUS_RES_UNIQUE, [b"u" * 64, b"1", b"0", b"0", b"0", b"1"]),
                (P.STATUS_RES_UNIQUE, [b"v", b"0", b"0", b"0", b"0", b"0"]),
            ],
        )
        protocol.dataReceived(req(P.GET_STATUS_UNIQUE, b"u" * 65))
        self.assertClosedSilently(transport)
        self.flushLoggedErrors()

    def test_workerPackets(self) -> None:
        """
        CAN_DO, GRAB_JOB_UNIQ, WORK_* and CANT_DO reach the job server, and
        work packets are forwarded to the client as sent.
        """
        client, clientTransport = self.connect()
        worker, workerTransport = self.connect()
        client.dataReceived(req(P.SUBMIT_JOB, b"f", b"u", b"x"))
        worker.dataReceived(req(P.CAN_DO, b"f") + req(P.GRAB_JOB_UNIQ))
        self.assertEqual(self.replies(workerTransport), [(P.JOB_ASSIGN_UNIQ, [b"H:1", b"f", b"u", b"x"])])
        worker.dataReceived(
            req(P.WORK_DATA, b"H:1", b"d\0")
            + req(P.WORK_WARNING, b"H:1", b"w")
            + req(P.WORK_STATUS, b"H:1", b"50%", b"100")
            + req(P.WORK_COMPLETE, b"H:1", b"")
        )
        self.assertEqual(
            self.replies(clientTransport),
            [
                (P.JOB_CREATED, [b"H:1"]),
                (P.WORK_DATA, [b"H:1", b"d\0"]),
                (P.WORK_WARNING, [b"H:1", b"w"]),
                (P.WORK_STATUS, [b"H:1", b"50%", b"100"]),
                (P.WORK_COMPLETE, [b"H:1", b""]),
            ],
        )
        worker.dataReceived(req(P.CANT_DO, b"f"))
        self.assertEqual(worker.peer.abilities, [])

    def test_workFailHandle(self) -> None:
        """
        WORK_FAIL reads its handle up to a NUL and forwards the payload as
        sent.
        """
        client, clientTransport = self.connect()
        worker, workerTransport = self.connect()
        client.dataReceived(req(P.SUBMIT_JOB, b"f", b"", b"x"))
        worker.dataReceived(req(P.CAN_DO, b"f") + req(P.GRAB_JOB) + req(P.WORK_FAIL, b"H:1\0extra"))
        self.assertEqual(self.replies(clientTransport)[-1], (P.WORK_FAIL, [b"H:1\0extra"]))
        self.assertEqual(self.server.jobs, {})

    def test_splitAnywhere(self) -> None:
        """
        Packets and admin lines trickling in a byte at a time are answered
        as if whole.
        """
        protocol, transport = self.connect()
        for byte in req(P.ECHO_REQ, b"abc") + b"version\r\n" + req(P.SUBMIT_JOB, b"f", b"", b"x"):
            protocol.dataReceived(bytes([byte]))
        value = transport.value()
        self.assertTrue(value.startswith(encode(P.ECHO_RES, b"abc") + b"OK 1.1.20"), value)
        self.assertTrue(value.endswith(b"\n" + encode(P.JOB_CREATED, b"H:1")), value)


def session() -> List[bytes]:
    """
    One connection's requests as a client, a worker and an admin.
    """
    return [
        req(P.SET_CLIENT_ID, b"me"),
        req(P.OPTION_REQ, b"exceptions"),
        req(P.SUBMIT_JOB, b"f", b"u", b"data\0with\0nuls"),
        req(P.SUBMIT_JOB_BG, b"g", b"", b""),
        req(P.CAN_DO, b"f"),
        b"status\r\n",
        req(P.GRAB_JOB_UNIQ),
        req(P.WORK_STATUS, b"H:1", b"1", b"2"),
        req(P.GET_STATUS, b"H:1"),
        b"workers\n",
        req(P.WORK_DATA, b"H:1", b"chunk"),
        req(P.WORK_EXCEPTION, b"H:1", b"oops"),
        req(P.ECHO_REQ, b""),
        req(P.PRE_SLEEP),
        req(P.GRAB_JOB),
        b"show jobs\n",
    ]


class EmptyGrabTests(ServerTestMixin, SynchronousTestCase):
    """
    A GRAB that finds nothing is answered once the reactor has handled the
    turn's other reads: a job submitted meanwhile goes to that worker at
    once, instead of a NO_JOB, PRE_SLEEP, NOOP and second GRAB.
    """

    def setUp(self) -> None:
        super().setUp()
        self.worker, self.workerTransport = self.connect()
        self.worker.dataReceived(req(P.CAN_DO, b"f"))

    def test_noJobAtTurnEnd(self) -> None:
        """
        With nothing submitted in the turn, NO_JOB comes at its end.
        """
        self.worker.dataReceived(req(P.GRAB_JOB_UNIQ))
        self.assertEqual(self.replies(self.workerTransport), [])
        self.clock.advance(0)
        self.assertEqual(self.replies(self.workerTransport), [(P.NO_JOB, [])])
        self.clock.advance(0)
        self.assertEqual(self.replies(self.workerTransport), [])

    def test_jobInSameTurn(self) -> None:
        """
        A job another connection submits in the same turn is the answer;
        no NO_JOB is sent, and the worker was not NOOPed.
        """
        client, clientTransport = self.connect()
        self.worker.dataReceived(req(P.GRAB_JOB_UNIQ))
        client.dataReceived(req(P.SUBMIT_JOB, b"f", b"u", b"data"))
        self.assertEqual(self.replies(clientTransport), [(P.JOB_CREATED, [b"H:1"])])
        self.clock.advance(0)
        self.assertEqual(self.replies(self.workerTransport), [(P.JOB_ASSIGN_UNIQ, [b"H:1", b"f", b"u", b"data"])])

    def test_orderKept(self) -> None:
        """
        Packets after the GRAB in the same read are answered after its
        NO_JOB; its form is kept (GRAB_JOB gets JOB_ASSIGN).
        """
        self.worker.dataReceived(req(P.GRAB_JOB) + req(P.ECHO_REQ, b"e"))
        self.assertEqual(self.replies(self.workerTransport), [(P.NO_JOB, []), (P.ECHO_RES, [b"e"])])
        client, _ = self.connect()
        self.worker.dataReceived(req(P.GRAB_JOB))
        client.dataReceived(req(P.SUBMIT_JOB, b"f", b"", b"d"))
        self.worker.dataReceived(req(P.ECHO_REQ, b"e"))
        self.assertEqual(
            self.replies(self.workerTransport), [(P.JOB_ASSIGN, [b"H:1", b"f", b"d"]), (P.ECHO_RES, [b"e"])]
        )
        self.clock.advance(0)
        self.assertEqual(self.replies(self.workerTransport), [])

    def test_lostMeanwhile(self) -> None:
        """
        A worker gone before the turn ends is answered nothing, and the job
        submitted meanwhile stays queued for another.
        """
        client, _ = self.connect()
        self.worker.dataReceived(req(P.GRAB_JOB_UNIQ))
        self.worker.connectionLost(Failure(ConnectionDone()))
        client.dataReceived(req(P.SUBMIT_JOB_BG, b"f", b"", b"d"))
        self.clock.advance(0)
        self.assertEqual(self.replies(self.workerTransport), [])
        self.assertEqual(self.server.functions[b"f"].queued, [0, 1, 0])

    def test_manyWorkersOneJob(self) -> None:
        """
        Of several workers whose GRABs found nothing, the first gets the job
        submitted in the turn and the others NO_JOB, each once.
        """
        others = [self.connect() for _ in range(3)]
        for worker, _ in others:
            worker.dataReceived(req(P.CAN_DO, b"f"))
        self.worker.dataReceived(req(P.GRAB_JOB_UNIQ))
        for worker, _ in others:
            worker.dataReceived(req(P.GRAB_JOB_UNIQ))
        client, _ = self.connect()
        client.dataReceived(req(P.SUBMIT_JOB_BG, b"f", b"", b"d"))
        self.clock.advance(0)
        self.assertEqual(self.replies(self.workerTransport), [(P.JOB_ASSIGN_UNIQ, [b"H:1", b"f", b"", b"d"])])
        self.assertEqual([self.replies(transport) for _, transport in others], [[(P.NO_JOB, [])]] * 3)


class SplitTests(ServerTestMixin, SynchronousTestCase):
    """
    However the bytes of a session are cut into reads, the server writes the
    same bytes.
    """

    def play(self, chunks: Sequence[bytes]) -> bytes:
        """
        Play C{chunks} on a connection to a new server; what it wrote.
        """
        self.setUp()
        protocol, transport = self.connect()
        for chunk in chunks:
            protocol.dataReceived(chunk)
        self.assertFalse(transport.disconnecting)
        return transport.value()

    def test_batchedReplies(self) -> None:
        """
        All the replies to one read go out in one write.
        """
        transport = RecordingTransport()
        protocol, _ = self.connect(transport=transport)
        protocol.dataReceived(b"".join(session()))
        self.assertEqual(transport.writes, 1)

    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.integers(0, 400), max_size=30))
    def test_anySplit(self, cuts: List[int]) -> None:
        """
        A session cut at arbitrary points gets the same replies as the
        whole session in one read.
        """
        data = b"".join(session())
        points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
        whole = self.play([data])
        self.assertIn(encode(P.WORK_EXCEPTION, b"H:1", b"oops"), whole)
        self.assertEqual(self.play([data[a:b] for a, b in zip(points, points[1:])]), whole)

    def test_byteByByte(self) -> None:
        """
        A session fed one byte at a time gets the same replies as the whole
        session.
        """
        data = b"".join(session())
        self.assertEqual(self.play([data[i : i + 1] for i in range(len(data))]), self.play([data]))


class ConnectionTests(ServerTestMixin, SynchronousTestCase):
    """
    Connection set-up and tear-down.
    """

    def test_noDelay(self) -> None:
        """
        TCP_NODELAY is turned on where the transport supports it; a
        transport without it is fine.
        """
        transport = RecordingTransport()
        self.connect(transport=transport)
        self.assertIs(transport.noDelay, True)
        protocol, _ = self.connect()
        self.assertIn(protocol.peer, self.server.peers)

    def test_peerIdentity(self) -> None:
        """
        Connections without a file descriptor are numbered in order; the
        host is the peer's address, or C{unix} for a UNIX socket.
        """
        first, _ = self.connect()
        second, _ = self.connect()
        self.assertEqual((first.peer.fd, second.peer.fd), (1, 2))
        self.assertEqual(first.peer.host, "127.0.0.1")
        unix, _ = self.connect(transport=StringTransport(peerAddress=UNIXAddress(None)))
        self.assertEqual(unix.peer.host, "unix")

    def test_connectionLost(self) -> None:
        """
        Closing a worker connection puts its job back, forgets the
        connection, and tells those waiting for no connections.
        """
        worker, _ = self.connect()
        client, _ = self.connect()
        worker.dataReceived(req(P.CAN_DO, b"f"))
        client.dataReceived(req(P.SUBMIT_JOB_BG, b"f", b"", b"x"))
        worker.dataReceived(req(P.GRAB_JOB))
        self.assertEqual(self.server.functions[b"f"].running, 1)
        called: List[bool] = []
        self.factory.whenNoConnections(lambda: called.append(True))
        worker.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.server.functions[b"f"].running, 0)
        self.assertEqual(self.server.functions[b"f"].queued, [0, 1, 0])
        self.assertEqual(self.server.functions[b"f"].workers, 0)
        self.assertEqual(called, [])
        client.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(called, [True])
        self.assertEqual(self.factory.connections, {})
        self.assertEqual(list(self.server.jobs), [b"H:1"])


class RawWorker(Protocol):
    """
    A scripted worker: registers C{f}, grabs, and records what it is sent.
    """

    def __init__(self) -> None:
        self.parser = PacketParser(magic=RES)
        self.received: List[Tuple[int, List[bytes]]] = []

    def connectionMade(self) -> None:
        self.send(P.CAN_DO, b"reverse")

    def send(self, ptype: int, *args: bytes) -> None:
        self.transport.write(req(ptype, *args))  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.received.extend((ptype, args) for ptype, args, _ in self.parser.feed(data))


class ClientServerTests(ServerTestMixin, SynchronousTestCase):
    """
    The real client protocol talking to the server over iosim.
    """

    def pair(self, client: Protocol) -> iosim.IOPump:
        """
        Connect C{client} to the server in memory.
        """
        _, server, pump = iosim.connectedServerAndClient(
            lambda: self.factory.buildProtocol(None), lambda: client, greet=False, clock=self.clock
        )
        pump.flush()
        self.assertIsInstance(server, GearmanServerProtocol)
        return pump

    def test_jobThroughServer(self) -> None:
        """
        A client submits, a worker runs the job with progress, and the
        client gets every event and the result; echo and status work.
        """
        client = GearmanClientProtocol(exceptions=True)
        clientPump = self.pair(client)
        worker = RawWorker()
        workerPump = self.pair(worker)
        chunks: List[bytes] = []
        statuses: List[Tuple[int, int]] = []
        task = Task(
            b"reverse", b"hello\0world", b"u", onData=chunks.append, onStatus=lambda n, d: statuses.append((n, d))
        )
        client.submit(task)
        echo = client.echo(b"ping")
        clientPump.flush()
        self.assertEqual(self.successResultOf(task.whenCreated()), b"H:1")
        self.assertEqual(self.successResultOf(echo), b"ping")
        worker.send(P.GRAB_JOB_UNIQ)
        workerPump.flush()
        self.assertEqual(worker.received, [(P.JOB_ASSIGN_UNIQ, [b"H:1", b"reverse", b"u", b"hello\0world"])])
        worker.send(P.WORK_DATA, b"H:1", b"dlrow")
        worker.send(P.WORK_STATUS, b"H:1", b"1", b"2")
        workerPump.flush()
        clientPump.flush()
        status = client.getStatus(b"H:1")
        clientPump.flush()
        self.assertEqual(self.successResultOf(status), (True, True, 1, 2))
        worker.send(P.WORK_COMPLETE, b"H:1", b"dlrow\0olleh")
        workerPump.flush()
        clientPump.flush()
        self.assertEqual(self.successResultOf(task.result), b"dlrow\0olleh")
        self.assertEqual((chunks, statuses), ([b"dlrow"], [(1, 2)]))
        status = client.getStatus(b"H:1")
        clientPump.flush()
        self.assertEqual(self.successResultOf(status), (False, False, 0, 0))

    def test_failureAndException(self) -> None:
        """
        WORK_FAIL and WORK_EXCEPTION reach the client as L{JobFailed} and
        (the exceptions option being on) L{JobException}.
        """
        client = GearmanClientProtocol(exceptions=True)
        clientPump = self.pair(client)
        worker = RawWorker()
        workerPump = self.pair(worker)
        first = Task(b"reverse", b"a")
        second = Task(b"reverse", b"b")
        client.submit(first)
        client.submit(second)
        clientPump.flush()
        worker.send(P.GRAB_JOB)
        worker.send(P.WORK_FAIL, b"H:1")
        worker.send(P.GRAB_JOB)
        worker.send(P.WORK_EXCEPTION, b"H:2", b"boom")
        workerPump.flush()
        clientPump.flush()
        self.assertEqual(self.failureResultOf(first.result, JobFailed).value.handle, b"H:1")
        self.assertEqual(self.failureResultOf(second.result, JobException).value.data, b"boom")

    def test_workerLost(self) -> None:
        """
        A worker that disconnects mid-job has its job requeued to the next
        worker; the client still gets the result.
        """
        client = GearmanClientProtocol(exceptions=False)
        clientPump = self.pair(client)
        first = RawWorker()
        firstPump = self.pair(first)
        task = Task(b"reverse", b"abc")
        client.submit(task)
        clientPump.flush()
        first.send(P.GRAB_JOB)
        firstPump.flush()
        self.assertEqual(first.received, [(P.JOB_ASSIGN, [b"H:1", b"reverse", b"abc"])])
        first.transport.loseConnection()  # type: ignore[union-attr]
        firstPump.flush()
        second = RawWorker()
        secondPump = self.pair(second)
        second.send(P.GRAB_JOB)
        secondPump.flush()
        self.assertEqual(second.received, [(P.JOB_ASSIGN, [b"H:1", b"reverse", b"abc"])])
        second.send(P.WORK_COMPLETE, b"H:1", b"cba")
        secondPump.flush()
        clientPump.flush()
        self.assertEqual(self.successResultOf(task.result), b"cba")


class ClosingTransport(StringTransport):
    """
    A transport that, like TLS, drops what is written after
    C{loseConnection}.
    """

    def write(self, data: bytes) -> None:
        if not self.disconnecting:
            super().write(data)


class DropTests(ServerTestMixin, SynchronousTestCase):
    """
    The ERROR sent before the server closes a connection reaches it before
    the close, whatever the transport.
    """

    def test_errorBeforeClose(self) -> None:
        """
        A packet with too few arguments gets ERROR INVALID_PACKET, then the
        connection is closed; the ERROR is written before loseConnection.
        """
        transport = ClosingTransport()
        protocol, _ = self.connect(transport=transport)
        protocol.dataReceived(encode(PacketType.ECHO_REQ, b"ok", magic=REQ) + header(PacketType.SUBMIT_JOB, 1) + b"x")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(
            [ptype for ptype, _ in self.replies(transport)], [PacketType.ECHO_RES, PacketType.ERROR]
        )


class HandlerErrorTests(ServerTestMixin, SynchronousTestCase):
    """
    A handler that raises does not make the parser hand out the same
    packets again.
    """

    def test_noReplay(self) -> None:
        """
        The packets handled before the error are used up: the next read
        goes on after the failing one.
        """
        protocol, transport = self.connect()
        calls: List[bytes] = []

        def canDo(peer: object, name: bytes, timeout: float = 0) -> None:
            calls.append(name)
            raise RuntimeError("a bug")

        self.patch(self.server, "canDo", canDo)
        submit = req(P.SUBMIT_JOB_BG, b"f", b"", b"x")
        with self.assertRaises(RuntimeError):
            protocol.dataReceived(submit + req(P.CAN_DO, b"g") + submit[:5])
        protocol.dataReceived(submit[5:])
        self.assertEqual((calls, self.server.jobCount()), ([b"g"], 2))


class HotPathTests(ServerTestMixin, SynchronousTestCase):
    """
    The hot path's rules (issue #7): no log event, no Deferred and one write
    per connection for a read full of jobs and their results.
    """

    def test_noLogsNoDeferreds(self) -> None:
        """
        A read of 200 background and 200 foreground submissions, a worker's
        read of 200 grabs with their completions: nothing is logged, no
        Deferred is made, and each connection gets one write per read.
        """
        from twisted.internet import defer
        from twisted.logger import globalLogPublisher

        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        made: List[object] = []
        realInit = defer.Deferred.__init__

        def countingInit(deferred, *args, **kwargs):
            made.append(deferred)
            realInit(deferred, *args, **kwargs)

        self.patch(defer.Deferred, "__init__", countingInit)
        clientTransport = RecordingTransport()
        client, _ = self.connect(transport=clientTransport)
        workerTransport = RecordingTransport()
        worker, _ = self.connect(transport=workerTransport)
        worker.dataReceived(encode(PacketType.CAN_DO, b"f", magic=REQ))
        submissions = [encode(PacketType.SUBMIT_JOB_BG, b"f", b"", b"%d" % n, magic=REQ) for n in range(200)]
        submissions += [encode(PacketType.SUBMIT_JOB, b"f", b"", b"%d" % n, magic=REQ) for n in range(200)]
        client.dataReceived(b"".join(submissions))
        self.assertEqual(clientTransport.writes, 1)
        worker.dataReceived(encode(PacketType.GRAB_JOB, magic=REQ) * 400)
        assigned = [args for ptype, args in self.replies(workerTransport)]
        self.assertEqual(len(assigned), 400)
        self.assertEqual(workerTransport.writes, 1)
        worker.dataReceived(
            b"".join(encode(PacketType.WORK_COMPLETE, args[0], b"done", magic=REQ) for args in assigned)
        )
        self.assertEqual(clientTransport.writes, 2)
        results = self.replies(clientTransport)
        self.assertEqual(len([1 for ptype, _ in results if ptype == PacketType.WORK_COMPLETE]), 200)
        self.assertEqual(made, [])
        self.assertEqual(list(events), [])
