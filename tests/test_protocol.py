"""
Tests for L{gearman_tw.protocol}: the packet table, encoder and parser.
"""

import struct
from typing import List

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.errors import ProtocolError
from gearman_tw.protocol import (
    ARGUMENTS,
    MAX_PACKET_TYPE,
    REQ,
    RES,
    TEXT,
    PacketParser,
    PacketType,
    encode,
    encodeRaw,
    parseAll,
    splitArguments,
)

# (argument count, has data) from the reference's section 2 table.
REFERENCE = {
    "CAN_DO": (1, False), "CANT_DO": (1, False), "RESET_ABILITIES": (0, False),
    "PRE_SLEEP": (0, False), "NOOP": (0, False), "SUBMIT_JOB": (2, True),
    "JOB_CREATED": (1, False), "GRAB_JOB": (0, False), "NO_JOB": (0, False),
    "JOB_ASSIGN": (2, True), "WORK_STATUS": (3, False), "WORK_COMPLETE": (1, True),
    "WORK_FAIL": (1, False), "GET_STATUS": (1, False), "ECHO_REQ": (0, True),
    "ECHO_RES": (0, True), "SUBMIT_JOB_BG": (2, True), "ERROR": (2, False),
    "STATUS_RES": (5, False), "SUBMIT_JOB_HIGH": (2, True), "SET_CLIENT_ID": (1, False),
    "CAN_DO_TIMEOUT": (2, False), "ALL_YOURS": (0, False), "WORK_EXCEPTION": (1, True),
    "OPTION_REQ": (1, False), "OPTION_RES": (1, False), "WORK_DATA": (1, True),
    "WORK_WARNING": (1, True), "GRAB_JOB_UNIQ": (0, False), "JOB_ASSIGN_UNIQ": (3, True),
    "SUBMIT_JOB_HIGH_BG": (2, True), "SUBMIT_JOB_LOW": (2, True), "SUBMIT_JOB_LOW_BG": (2, True),
    "SUBMIT_JOB_SCHED": (7, True), "SUBMIT_JOB_EPOCH": (3, True), "SUBMIT_REDUCE_JOB": (4, True),
    "SUBMIT_REDUCE_JOB_BACKGROUND": (4, True), "GRAB_JOB_ALL": (0, False),
    "JOB_ASSIGN_ALL": (4, True), "GET_STATUS_UNIQUE": (1, False), "STATUS_RES_UNIQUE": (6, False),
}


def header(ptype: int, size: int, magic: bytes = REQ) -> bytes:
    return magic + struct.pack(">II", ptype, size)


class TableTests(SynchronousTestCase):
    """
    The packet table matches the reference.
    """

    def test_arguments(self) -> None:
        """
        Every packet type has the argument count and data flag of section 2.
        """
        self.assertEqual(MAX_PACKET_TYPE, 42)
        for name, expected in REFERENCE.items():
            self.assertEqual(ARGUMENTS[PacketType[name]], expected, name)


class EncodeTests(SynchronousTestCase):
    """
    Tests for L{encode} and L{encodeRaw}.
    """

    def test_encode(self) -> None:
        """
        Arguments are joined with NUL behind a big-endian header.
        """
        self.assertEqual(
            encode(PacketType.SUBMIT_JOB, b"f", b"u", b"data", magic=REQ),
            b"\0REQ\0\0\0\x07\0\0\0\x08f\0u\0data",
        )
        self.assertEqual(encode(PacketType.NOOP), b"\0RES\0\0\0\x06\0\0\0\0")
        self.assertEqual(encodeRaw(PacketType.ECHO_RES, b"a\0b"), b"\0RES\0\0\0\x11\0\0\0\x03a\0b")


class ParserTests(SynchronousTestCase):
    """
    Tests for L{PacketParser}.
    """

    def test_dataWithNULs(self) -> None:
        """
        The data part keeps its NULs; the last argument of a type without
        data takes the rest of the payload.
        """
        [(ptype, args, payload)] = parseAll(encode(PacketType.SUBMIT_JOB, b"f", b"", b"a\0\0b", magic=REQ))
        self.assertEqual((ptype, args, payload), (7, [b"f", b"", b"a\0\0b"], b"f\0\0a\0\0b"))
        [(_, args, _)] = parseAll(encode(PacketType.CAN_DO, b"with\0nul", magic=REQ))
        self.assertEqual(args, [b"with\0nul"])
        [(_, args, _)] = parseAll(header(PacketType.WORK_STATUS, 7) + b"h\0a\0b\0c")
        self.assertEqual(args, [b"h", b"a", b"b\0c"])

    def test_emptyData(self) -> None:
        """
        Empty data and empty arguments are fine.
        """
        [(_, args, _)] = parseAll(encode(PacketType.SUBMIT_JOB, b"", b"", b"", magic=REQ))
        self.assertEqual(args, [b"", b"", b""])

    def test_payloadIgnored(self) -> None:
        """
        Types without arguments or data ignore any payload.
        """
        [(ptype, args, _)] = parseAll(header(PacketType.GRAB_JOB, 3) + b"xyz")
        self.assertEqual((ptype, args), (9, []))

    def test_text(self) -> None:
        """
        A line not starting with NUL is text; one CR before the LF is dropped,
        and text and packets mix on one stream.
        """
        data = b"status\r\n" + encode(PacketType.ECHO_REQ, b"x", magic=REQ) + b"workers\nversion\r\r\n"
        self.assertEqual(
            [(ptype, payload) for ptype, _, payload in parseAll(data)],
            [(TEXT, b"status"), (16, b"x"), (TEXT, b"workers"), (TEXT, b"version\r")],
        )

    def test_textWaitsForNewline(self) -> None:
        """
        A partial line waits for its newline.
        """
        parser = PacketParser()
        self.assertEqual(parser.feed(b"stat"), [])
        self.assertEqual(parser.feed(b"us\n"), [(TEXT, [], b"status")])

    def test_longLine(self) -> None:
        """
        More than 8192 bytes without a newline stops the parser.
        """
        parser = PacketParser()
        parser.feed(b"x" * 8000)
        self.assertIsNone(parser.failure)
        parser.feed(b"x" * 200)
        self.assertIsInstance(parser.failure, ProtocolError)
        self.assertIsNone(parser.failure.code)

    def test_badMagic(self) -> None:
        """
        A magic that is neither REQ nor RES stops the parser with no ERROR
        to send.
        """
        parser = PacketParser()
        self.assertEqual(parser.feed(b"\0XYZ" + b"\0" * 8), [])
        self.assertIsNone(parser.failure.code)
        self.assertEqual(parser.feed(encode(PacketType.ECHO_REQ, b"x", magic=REQ)), [])

    def test_otherMagic(self) -> None:
        """
        A packet with the other side's magic is reported with a negative type.
        """
        packets = parseAll(encode(PacketType.ECHO_REQ, b"x", magic=RES))
        self.assertEqual(packets, [(-16, [], b"x")])

    def test_badTypes(self) -> None:
        """
        Type 0 and types above 42 stop the parser.
        """
        for ptype in (0, 43, 0xFFFFFFFF):
            parser = PacketParser()
            parser.feed(header(ptype, 0))
            self.assertIsNotNone(parser.failure, ptype)

    def test_tooFewArguments(self) -> None:
        """
        A payload with fewer NULs than the type needs stops the parser with
        an ERROR to send (gearmand reads on into the next packet instead).
        """
        parser = PacketParser()
        parser.feed(header(PacketType.SUBMIT_JOB, 3) + b"f\0x")
        self.assertEqual(parser.failure.code, b"INVALID_PACKET")

    def test_argumentLimit(self) -> None:
        """
        NUL-ended arguments must fit gearmand's 8192-byte buffer with the
        header: an 8000-byte function name is fine, 8200 is not.
        """
        self.assertEqual(len(parseAll(encode(PacketType.SUBMIT_JOB, b"f" * 8000, b"", b"x" * 100000, magic=REQ))), 1)
        parser = PacketParser()
        parser.feed(encode(PacketType.SUBMIT_JOB, b"f" * 8200, b"", b"", magic=REQ))
        self.assertIsNotNone(parser.failure)
        parser = PacketParser()
        parser.feed(encode(PacketType.CAN_DO, b"f" * 8200, magic=REQ))
        self.assertIsNotNone(parser.failure)

    def test_maxPacketSize(self) -> None:
        """
        A declared size over the maximum stops the parser at the header,
        with ARGUMENT_TOO_LARGE to send.
        """
        parser = PacketParser(maxPacketSize=1024)
        parser.feed(header(PacketType.ECHO_REQ, 1025))
        self.assertEqual(parser.failure.code, b"ARGUMENT_TOO_LARGE")
        self.assertEqual(len(PacketParser(maxPacketSize=1024).feed(encode(16, b"x" * 1024, magic=REQ))), 1)

    def test_stopsAfterFailure(self) -> None:
        """
        Packets before the failure are returned; nothing after it.
        """
        parser = PacketParser()
        packets = parser.feed(encode(16, b"a", magic=REQ) + header(0, 0) + encode(16, b"b", magic=REQ))
        self.assertEqual(packets, [(16, [b"a"], b"a")])
        self.assertEqual(parser.feed(encode(16, b"c", magic=REQ)), [])

    def test_largePayloadInPieces(self) -> None:
        """
        A large payload arriving in many chunks parses once, whole.
        """
        data = encode(PacketType.ECHO_REQ, b"z" * 1000000, magic=REQ)
        parser = PacketParser()
        out = []
        for offset in range(0, len(data), 65536):
            out.extend(parser.feed(data[offset : offset + 65536]))
        self.assertEqual(out, [(16, [b"z" * 1000000], b"z" * 1000000)])

    def test_splitArguments(self) -> None:
        """
        splitArguments splits by the table and refuses too few NULs.
        """
        self.assertEqual(splitArguments(PacketType.JOB_ASSIGN_UNIQ, b"h\0f\0u\0d\0d"), [b"h", b"f", b"u", b"d\0d"])
        self.assertEqual(splitArguments(PacketType.NOOP, b"junk"), [])
        self.assertRaises(ProtocolError, splitArguments, PacketType.ERROR, b"nonul")

    def test_parseAllTruncated(self) -> None:
        """
        parseAll refuses a stream that ends inside a packet.
        """
        self.assertRaises(ProtocolError, parseAll, encode(16, b"abc", magic=REQ)[:-1])


# Hypothesis: random valid packets and text lines.

_BINARY_TYPES = [t for t in range(1, MAX_PACKET_TYPE + 1) if t != 5]
_argument = st.binary(max_size=20).map(lambda b: b.replace(b"\0", b"."))


@st.composite
def packets(draw):
    """
    A valid request packet (type, args) or a text line.
    """
    if draw(st.integers(0, 5)) == 0:
        line = draw(st.binary(min_size=1, max_size=30).filter(lambda b: b[0] != 0))
        line = line.replace(b"\n", b" ").replace(b"\r", b" ")
        return (TEXT, [], line)
    ptype = draw(st.sampled_from(_BINARY_TYPES))
    argc, hasData = ARGUMENTS[ptype]
    args = [draw(_argument) for _ in range(argc)]
    if hasData:
        args.append(draw(st.binary(max_size=50)))
    elif argc:
        # The last argument of a type without data may hold NULs.
        args[-1] = draw(st.binary(max_size=20))
    if argc == 0 and not hasData:
        args = []
    return (ptype, args, b"\0".join(args))


def wire(items) -> bytes:
    return b"".join(
        payload + b"\n" if ptype == TEXT else header(ptype, len(payload)) + payload
        for ptype, args, payload in items
    )


class PropertyTests(SynchronousTestCase):
    """
    Any valid stream, split anywhere, parses back to the same packets.
    """

    @settings(max_examples=200, deadline=None)
    @given(st.lists(packets(), max_size=12), st.lists(st.integers(0, 2000), max_size=10))
    def test_anySplit(self, items, cuts) -> None:
        """
        Fed in pieces cut at arbitrary points, a stream of packets and text
        lines parses to exactly what was encoded.
        """
        data = wire(items)
        points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
        parser = PacketParser()
        out: List = []
        for start, end in zip(points, points[1:]):
            out.extend(parser.feed(data[start:end]))
        self.assertIsNone(parser.failure)
        self.assertEqual(out, items)

    @settings(max_examples=100, deadline=None)
    @given(st.lists(packets(), max_size=8))
    def test_byteByByte(self, items) -> None:
        """
        Feeding one byte at a time equals feeding everything at once.
        """
        data = wire(items)
        parser = PacketParser()
        out: List = []
        for index in range(len(data)):
            out.extend(parser.feed(data[index : index + 1]))
        self.assertEqual(out, parseAll(data))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300), st.integers(1, 50))
    def test_garbage(self, data, step) -> None:
        """
        Random bytes never raise: they yield packets or set failure.
        """
        parser = PacketParser()
        for index in range(0, len(data), step):
            result = parser.feed(data[index : index + step])
            self.assertIsInstance(result, list)
        self.assertTrue(parser.failure is None or isinstance(parser.failure, ProtocolError))
