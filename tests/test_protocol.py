"""
Tests for L{gearman_tw.protocol}: the packet table, the encoder and the
incremental parser (reference sections 1 and 2).
"""

import struct
from typing import List, Optional, Sequence, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.errors import ProtocolError
from gearman_tw.protocol import (
    ARGUMENTS,
    DEFAULT_MAX_PACKET_SIZE,
    HEADER_SIZE,
    MAX_ARGUMENT_SIZE,
    MAX_PACKET_TYPE,
    MAX_TEXT_LINE,
    REQ,
    RES,
    TEXT,
    Packet,
    PacketParser,
    PacketType,
    encode,
    encodeMany,
    encodeRaw,
    parseAll,
    splitArguments,
)

# Section 2 of the reference: (number, name, argc, has data).  Type 5 is
# unused; it parses as a type without arguments or data.
REFERENCE: Sequence[Tuple[int, str, int, bool]] = (
    (1, "CAN_DO", 1, False),
    (2, "CANT_DO", 1, False),
    (3, "RESET_ABILITIES", 0, False),
    (4, "PRE_SLEEP", 0, False),
    (5, "UNUSED", 0, False),
    (6, "NOOP", 0, False),
    (7, "SUBMIT_JOB", 2, True),
    (8, "JOB_CREATED", 1, False),
    (9, "GRAB_JOB", 0, False),
    (10, "NO_JOB", 0, False),
    (11, "JOB_ASSIGN", 2, True),
    (12, "WORK_STATUS", 3, False),
    (13, "WORK_COMPLETE", 1, True),
    (14, "WORK_FAIL", 1, False),
    (15, "GET_STATUS", 1, False),
    (16, "ECHO_REQ", 0, True),
    (17, "ECHO_RES", 0, True),
    (18, "SUBMIT_JOB_BG", 2, True),
    (19, "ERROR", 2, False),
    (20, "STATUS_RES", 5, False),
    (21, "SUBMIT_JOB_HIGH", 2, True),
    (22, "SET_CLIENT_ID", 1, False),
    (23, "CAN_DO_TIMEOUT", 2, False),
    (24, "ALL_YOURS", 0, False),
    (25, "WORK_EXCEPTION", 1, True),
    (26, "OPTION_REQ", 1, False),
    (27, "OPTION_RES", 1, False),
    (28, "WORK_DATA", 1, True),
    (29, "WORK_WARNING", 1, True),
    (30, "GRAB_JOB_UNIQ", 0, False),
    (31, "JOB_ASSIGN_UNIQ", 3, True),
    (32, "SUBMIT_JOB_HIGH_BG", 2, True),
    (33, "SUBMIT_JOB_LOW", 2, True),
    (34, "SUBMIT_JOB_LOW_BG", 2, True),
    (35, "SUBMIT_JOB_SCHED", 7, True),
    (36, "SUBMIT_JOB_EPOCH", 3, True),
    (37, "SUBMIT_REDUCE_JOB", 4, True),
    (38, "SUBMIT_REDUCE_JOB_BACKGROUND", 4, True),
    (39, "GRAB_JOB_ALL", 0, False),
    (40, "JOB_ASSIGN_ALL", 4, True),
    (41, "GET_STATUS_UNIQUE", 1, False),
    (42, "STATUS_RES_UNIQUE", 6, False),
)

P = PacketType


def header(ptype: int, size: int, magic: bytes = REQ) -> bytes:
    """
    A packet header, for payloads the encoder would not build.
    """
    return magic + struct.pack(">II", ptype, size)


def req(ptype: int, *args: bytes) -> bytes:
    """
    A request packet, as clients and workers send.
    """
    return encode(ptype, *args, magic=REQ)


def sampleArguments(ptype: int) -> List[bytes]:
    """
    Well-formed arguments for C{ptype}: NUL-free NUL-ended arguments, then
    data (or a last argument) holding NULs.
    """
    argc, hasData = ARGUMENTS[ptype]
    args = [b"arg%d" % (index,) for index in range(argc)]
    if hasData:
        args.append(b"da\0ta\0")
    elif argc:
        args[-1] = b"last\0with\0nuls"
    return args


def feedInPieces(data: bytes, size: int, **kwargs: object) -> Tuple[List[Packet], PacketParser]:
    """
    Feed C{data} to a new parser C{size} bytes at a time.
    """
    parser = PacketParser(**kwargs)  # type: ignore[arg-type]
    out: List[Packet] = []
    for offset in range(0, len(data), size):
        out.extend(parser.feed(data[offset : offset + size]))
    return out, parser


def failureOf(parser: PacketParser) -> ProtocolError:
    """
    The L{ProtocolError} that stopped C{parser}.

    @raise AssertionError: none did (trial reports the test as failed).
    """
    if parser.failure is None:
        raise AssertionError("the parser has not stopped")
    return parser.failure


class TableTests(SynchronousTestCase):
    """
    The packet type enumeration and argument table match section 2.
    """

    def test_numbers(self) -> None:
        """
        Every packet type has the number section 2 gives it, and there are
        no others.
        """
        self.assertEqual({(t.name, int(t)) for t in PacketType}, {(name, n) for n, name, _, _ in REFERENCE})
        self.assertEqual(MAX_PACKET_TYPE, 42)

    def test_arguments(self) -> None:
        """
        Every packet type has the argument count and data flag of section 2,
        and the table has exactly one entry per number 0..42.
        """
        self.assertEqual(len(ARGUMENTS), MAX_PACKET_TYPE + 1)
        for number, name, argc, hasData in REFERENCE:
            self.assertEqual(ARGUMENTS[PacketType[name]], (argc, hasData), name)
            self.assertEqual(ARGUMENTS[number], (argc, hasData), name)


class EncodeTests(SynchronousTestCase):
    """
    Tests for L{encode}, L{encodeRaw} and L{encodeMany}.
    """

    def test_encode(self) -> None:
        """
        Arguments are joined with NUL behind a big-endian header of magic,
        type and payload size; responses are the default.
        """
        self.assertEqual(
            encode(P.SUBMIT_JOB, b"f", b"u", b"data", magic=REQ),
            b"\0REQ\0\0\0\x07\0\0\0\x08f\0u\0data",
        )
        self.assertEqual(encode(P.NOOP), b"\0RES\0\0\0\x06\0\0\0\0")
        self.assertEqual(encode(P.JOB_CREATED, b"H:x:1"), b"\0RES\0\0\0\x08\0\0\0\x05H:x:1")

    def test_encodeEmptyData(self) -> None:
        """
        Empty data still leaves the NUL after the last argument.
        """
        self.assertEqual(encode(P.WORK_COMPLETE, b"H:1", b""), b"\0RES\0\0\0\x0d\0\0\0\x04H:1\0")

    def test_encodeLargeSize(self) -> None:
        """
        The size field is four big-endian bytes, also above 16 bits.
        """
        packet = encode(P.ECHO_RES, b"x" * 70000)
        self.assertEqual(packet[8:12], b"\0\x01\x11\x70")
        self.assertEqual(len(packet), HEADER_SIZE + 70000)

    def test_encodeRaw(self) -> None:
        """
        encodeRaw takes an already joined payload.
        """
        self.assertEqual(encodeRaw(P.ECHO_RES, b"a\0b"), b"\0RES\0\0\0\x11\0\0\0\x03a\0b")
        self.assertEqual(encodeRaw(P.ECHO_REQ, b"", magic=REQ), b"\0REQ\0\0\0\x10\0\0\0\0")

    def test_encodeMany(self) -> None:
        """
        encodeMany concatenates request packets.
        """
        self.assertEqual(
            encodeMany([(P.CAN_DO, [b"f"]), (P.GRAB_JOB, [])]),
            req(P.CAN_DO, b"f") + req(P.GRAB_JOB),
        )


class RoundTripTests(SynchronousTestCase):
    """
    What L{encode} builds, the parser reads back.
    """

    def test_everyType(self) -> None:
        """
        Every packet type round-trips with its arguments, NULs in the data
        or last argument included, with either magic as the expected one.
        """
        for ptype in range(1, MAX_PACKET_TYPE + 1):
            args = sampleArguments(ptype)
            for magic in (REQ, RES):
                [(parsedType, parsedArgs, payload)] = parseAll(encode(ptype, *args, magic=magic), magic=magic)
                self.assertEqual(parsedType, ptype)
                self.assertEqual(parsedArgs, args, ptype)
                self.assertEqual(payload, b"\0".join(args))

    def test_emptyEverything(self) -> None:
        """
        Every type parses with empty arguments and empty data.
        """
        for ptype in range(1, MAX_PACKET_TYPE + 1):
            argc, hasData = ARGUMENTS[ptype]
            args = [b""] * (argc + hasData)
            [(_, parsedArgs, _)] = parseAll(req(ptype, *args))
            self.assertEqual(parsedArgs, args, ptype)

    def test_dataWithNULs(self) -> None:
        """
        The data part keeps its NULs; the last argument of a type without
        data takes the rest of the payload, NULs and all.
        """
        [(ptype, args, payload)] = parseAll(req(P.SUBMIT_JOB, b"f", b"", b"a\0\0b"))
        self.assertEqual((ptype, args, payload), (7, [b"f", b"", b"a\0\0b"], b"f\0\0a\0\0b"))
        [(_, args, _)] = parseAll(req(P.CAN_DO, b"with\0nul"))
        self.assertEqual(args, [b"with\0nul"])
        [(_, args, _)] = parseAll(header(P.WORK_STATUS, 7) + b"h\0a\0b\0c")
        self.assertEqual(args, [b"h", b"a", b"b\0c"])
        [(_, args, _)] = parseAll(req(P.ECHO_REQ, b"\0\0\0"))
        self.assertEqual(args, [b"\0\0\0"])

    def test_emptyData(self) -> None:
        """
        Empty data and empty arguments are fine; an empty ECHO_REQ is one
        empty argument.
        """
        [(_, args, _)] = parseAll(req(P.SUBMIT_JOB, b"", b"", b""))
        self.assertEqual(args, [b"", b"", b""])
        self.assertEqual(parseAll(req(P.ECHO_REQ, b"")), [(P.ECHO_REQ, [b""], b"")])
        self.assertEqual(parseAll(req(P.WORK_COMPLETE, b"H:1", b"")), [(P.WORK_COMPLETE, [b"H:1", b""], b"H:1\0")])

    def test_payloadIgnored(self) -> None:
        """
        Types without arguments or data ignore any payload (GRAB_JOB with
        junk still counts as GRAB_JOB), however long.
        """
        [(ptype, args, payload)] = parseAll(header(P.GRAB_JOB, 3) + b"xyz")
        self.assertEqual((ptype, args, payload), (9, [], b"xyz"))
        [(ptype, args, _)] = parseAll(header(P.PRE_SLEEP, 20000) + b"\0" * 20000)
        self.assertEqual((ptype, args), (4, []))

    def test_pipelined(self) -> None:
        """
        Several packets in one chunk come out in order.
        """
        data = req(P.CAN_DO, b"f") + req(P.GRAB_JOB) + req(P.ECHO_REQ, b"e")
        self.assertEqual(
            parseAll(data),
            [(P.CAN_DO, [b"f"], b"f"), (P.GRAB_JOB, [], b""), (P.ECHO_REQ, [b"e"], b"e")],
        )

    def test_largePayloadInPieces(self) -> None:
        """
        A large payload arriving in many chunks parses once, whole.
        """
        data = req(P.ECHO_REQ, b"z" * 1000000)
        out, parser = feedInPieces(data, 65536)
        self.assertEqual(out, [(16, [b"z" * 1000000], b"z" * 1000000)])
        self.assertIsNone(parser.failure)

    def test_splitArguments(self) -> None:
        """
        splitArguments splits by the table and refuses too few NULs and
        types that do not exist.
        """
        self.assertEqual(splitArguments(P.JOB_ASSIGN_UNIQ, b"h\0f\0u\0d\0d"), [b"h", b"f", b"u", b"d\0d"])
        self.assertEqual(splitArguments(P.ERROR, b"CODE\0text\0more"), [b"CODE", b"text\0more"])
        self.assertEqual(splitArguments(P.NOOP, b"junk"), [])
        for ptype in range(1, MAX_PACKET_TYPE + 1):
            args = sampleArguments(ptype)
            if ARGUMENTS[ptype] != (0, False):
                self.assertEqual(splitArguments(ptype, b"\0".join(args)), args, ptype)
        self.assertRaises(ProtocolError, splitArguments, P.ERROR, b"nonul")
        self.assertRaises(ProtocolError, splitArguments, -16, b"x")
        self.assertRaises(ProtocolError, splitArguments, 43, b"x")


class TextTests(SynchronousTestCase):
    """
    A chunk whose first byte is not NUL is an admin text line.
    """

    def test_lineEndings(self) -> None:
        """
        Lines end at LF; one CR before it is dropped, no more, and a CR
        inside the line stays.
        """
        data = b"status\r\nworkers\nversion\r\r\nshow\rjobs\n"
        self.assertEqual(
            [payload for _, _, payload in parseAll(data)],
            [b"status", b"workers", b"version\r", b"show\rjobs"],
        )

    def test_emptyLines(self) -> None:
        """
        An empty line (LF or CR LF) is an empty text packet.
        """
        self.assertEqual(parseAll(b"\n\r\n"), [(TEXT, [], b""), (TEXT, [], b"")])

    def test_mixed(self) -> None:
        """
        Text lines and binary packets mix on one stream; each chunk is
        classified by its first byte.
        """
        data = b"status\r\n" + req(P.ECHO_REQ, b"x\n") + b"workers\n" + req(P.GRAB_JOB) + b"version\n"
        self.assertEqual(
            [(ptype, payload) for ptype, _, payload in parseAll(data)],
            [(TEXT, b"status"), (16, b"x\n"), (TEXT, b"workers"), (9, b""), (TEXT, b"version")],
        )

    def test_lineSwallowsNULs(self) -> None:
        """
        Until its newline a text line takes every byte, binary-looking ones
        included.
        """
        self.assertEqual(parseAll(b"st" + req(P.NOOP) + b"\n"), [(TEXT, [], b"st" + req(P.NOOP))])

    def test_waitsForNewline(self) -> None:
        """
        A partial line waits for its newline.
        """
        parser = PacketParser()
        self.assertEqual(parser.feed(b"stat"), [])
        self.assertEqual(parser.feed(b"us\r"), [])
        self.assertEqual(parser.feed(b"\n"), [(TEXT, [], b"status")])
        self.assertIsNone(parser.failure)

    def test_longestLine(self) -> None:
        """
        A line fits if it and its newline fit gearmand's 8192-byte buffer:
        8191 bytes and LF, or 8190 bytes and CR LF; whole or in pieces.
        """
        self.assertEqual(MAX_TEXT_LINE, 8192)
        for line, ending in ((b"s" * 8191, b"\n"), (b"s" * 8190, b"\r\n")):
            for size in (len(line) + 2, 1000, 1):
                out, parser = feedInPieces(line + ending + b"version\n", size)
                self.assertIsNone(parser.failure)
                self.assertEqual(out, [(TEXT, [], line), (TEXT, [], b"version")])

    def test_lineTooLong(self) -> None:
        """
        A line of 8192 bytes or more before its newline stops the parser
        with nothing to send, whole or in pieces, also with CR LF.
        """
        for data in (b"s" * 8192 + b"\n", b"s" * 8191 + b"\r\n", b"s" * 20000 + b"\n"):
            for size in (len(data), 4096, 1):
                out, parser = feedInPieces(data, size)
                self.assertEqual(out, [])
                self.assertIsInstance(parser.failure, ProtocolError)
                self.assertIsNone(failureOf(parser).code)

    def test_lineWithoutNewline(self) -> None:
        """
        8191 bytes without a newline wait; the 8192nd stops the parser at
        once, before any newline comes.
        """
        parser = PacketParser()
        parser.feed(b"x" * 8000)
        parser.feed(b"x" * 191)
        self.assertIsNone(parser.failure)
        parser.feed(b"x")
        self.assertIsInstance(parser.failure, ProtocolError)
        self.assertIsNone(failureOf(parser).code)
        self.assertEqual(parser.feed(b"\n"), [])


class LimitTests(SynchronousTestCase):
    """
    Size limits (reference 1.2).
    """

    def assertAccepted(self, data: bytes, magic: bytes = REQ) -> List[Packet]:
        """
        C{data} parses without failure, whole and byte by byte alike.
        """
        whole, parser = feedInPieces(data, len(data), magic=magic)
        self.assertIsNone(parser.failure)
        pieces, parser = feedInPieces(data, 997, magic=magic)
        self.assertIsNone(parser.failure)
        self.assertEqual(whole, pieces)
        return whole

    def assertRefused(self, data: bytes, code: Optional[bytes] = None, magic: bytes = REQ) -> None:
        """
        C{data} stops the parser, with error code C{code} to send.
        """
        for size in (len(data), 997):
            out, parser = feedInPieces(data, size, magic=magic)
            self.assertEqual(out, [])
            self.assertIsInstance(parser.failure, ProtocolError)
            self.assertEqual(failureOf(parser).code, code)

    def test_functionName(self) -> None:
        """
        NUL-ended arguments must fit gearmand's 8192-byte buffer with their
        NUL: an 8000- or 8191-byte function name is fine, 8192 or 8200 is
        not; the data has no such limit.
        """
        self.assertEqual(MAX_ARGUMENT_SIZE, 8192)
        [(_, args, _)] = self.assertAccepted(req(P.SUBMIT_JOB, b"f" * 8000, b"", b"x" * 100000))
        self.assertEqual([len(arg) for arg in args], [8000, 0, 100000])
        self.assertAccepted(req(P.SUBMIT_JOB, b"f" * 8191, b"", b"x"))
        self.assertRefused(req(P.SUBMIT_JOB, b"f" * 8192, b"", b"x"))
        self.assertRefused(req(P.SUBMIT_JOB, b"f" * 8200, b"", b""))

    def test_eachArgumentOnItsOwn(self) -> None:
        """
        Each argument is checked on its own, as gearmand reads them one at a
        time: an 8150-byte function with a 60-byte unique is fine, an
        oversized later argument is not.
        """
        self.assertAccepted(req(P.SUBMIT_JOB, b"f" * 8150, b"u" * 60, b"x"))
        self.assertAccepted(req(P.SUBMIT_REDUCE_JOB, b"f" * 8000, b"u", b"r" * 8000, b"a" * 8000, b"d"))
        self.assertRefused(req(P.SUBMIT_JOB, b"f", b"u" * 8192, b"x"))
        self.assertRefused(req(P.SUBMIT_JOB_EPOCH, b"f", b"u", b"1" * 9000, b"x"))

    def test_lastArgument(self) -> None:
        """
        The unterminated last argument of a type without data may take the
        whole buffer: CAN_DO with 8192 bytes is fine, 8193 is not.
        """
        self.assertAccepted(req(P.CAN_DO, b"f" * 8192))
        self.assertRefused(req(P.CAN_DO, b"f" * 8193))
        self.assertAccepted(req(P.CAN_DO_TIMEOUT, b"f" * 8191, b"10"))
        self.assertAccepted(req(P.WORK_STATUS, b"h" * 8191, b"1" * 8191, b"2" * 8192))
        self.assertRefused(req(P.WORK_STATUS, b"h", b"1", b"2" * 8193))
        self.assertRefused(req(P.OPTION_REQ, b"o" * 20000))

    def test_otherMagicLimits(self) -> None:
        """
        Packets with the other side's magic are held to the same limits (a
        C{\\0RES} CAN_DO of 9000 bytes closes gearmand's connection).
        """
        self.assertRefused(encode(P.CAN_DO, b"f" * 9000, magic=RES))
        self.assertEqual(self.assertAccepted(encode(P.CAN_DO, b"f" * 8192, magic=RES)), [(-1, [], b"f" * 8192)])

    def test_dataUnlimited(self) -> None:
        """
        Data and the payload of argument-less types have no 8 KB limit.
        """
        self.assertAccepted(req(P.ECHO_REQ, b"e" * 200000))
        self.assertAccepted(req(P.WORK_COMPLETE, b"H:1", b"r" * 200000))
        self.assertAccepted(header(P.GRAB_JOB, 20000) + b"j" * 20000)

    def test_maxPacketSize(self) -> None:
        """
        A declared size over the maximum stops the parser as soon as the
        header is in, with ARGUMENT_TOO_LARGE to send; the maximum itself is
        fine.
        """
        parser = PacketParser(maxPacketSize=1024)
        self.assertEqual(parser.feed(header(P.ECHO_REQ, 1025)), [])
        self.assertEqual(failureOf(parser).code, b"ARGUMENT_TOO_LARGE")
        self.assertEqual(len(PacketParser(maxPacketSize=1024).feed(req(16, b"x" * 1024))), 1)
        parser = PacketParser()
        parser.feed(header(P.ECHO_REQ, DEFAULT_MAX_PACKET_SIZE + 1))
        self.assertEqual(failureOf(parser).code, b"ARGUMENT_TOO_LARGE")
        parser = PacketParser()
        parser.feed(header(P.ECHO_REQ, 0xFFFFFFFF))
        self.assertEqual(failureOf(parser).code, b"ARGUMENT_TOO_LARGE")

    def test_resultRoom(self) -> None:
        """
        A job's assignment and its results may exceed the maximum by
        L{MAX_ARGUMENT_SIZE} (the handle and other arguments in front of
        data as large as a submission may carry); submissions and other
        packets may not.
        """
        full = b"d" * 1024
        for ptype, args in [
            (P.WORK_COMPLETE, (b"H:123",)),
            (P.WORK_DATA, (b"H:123",)),
            (P.WORK_EXCEPTION, (b"H:123",)),
            (P.JOB_ASSIGN_UNIQ, (b"H:123", b"f", b"u")),
        ]:
            self.assertEqual(len(PacketParser(maxPacketSize=1024).feed(req(ptype, *args, full))), 1, ptype)
            parser = PacketParser(maxPacketSize=1024)
            parser.feed(header(ptype, 1024 + MAX_ARGUMENT_SIZE + 1))
            self.assertEqual(failureOf(parser).code, b"ARGUMENT_TOO_LARGE", ptype)
        for ptype in (P.SUBMIT_JOB, P.SUBMIT_JOB_BG, P.SUBMIT_JOB_EPOCH, P.ECHO_REQ):
            parser = PacketParser(maxPacketSize=1024)
            parser.feed(header(ptype, 1025))
            self.assertEqual(failureOf(parser).code, b"ARGUMENT_TOO_LARGE", ptype)


class StepTests(SynchronousTestCase):
    """
    L{PacketParser.packets} parses one packet per step.
    """

    def test_onePerStep(self) -> None:
        """
        A packet is given before the next one is parsed: a bad packet after
        it has not stopped the parser yet.
        """
        parser = PacketParser()
        steps = parser.packets(req(P.ECHO_REQ, b"a") + req(P.ECHO_REQ, b"b") + b"\0XYZ" + bytes(8))
        self.assertEqual(next(steps), (P.ECHO_REQ, [b"a"], b"a"))
        self.assertEqual(next(steps), (P.ECHO_REQ, [b"b"], b"b"))
        self.assertIsNone(parser.failure)
        self.assertEqual(list(steps), [])
        self.assertIsInstance(parser.failure, ProtocolError)

    def test_closedEarly(self) -> None:
        """
        A consumer that stops and closes the generator has used up what it
        was given; the rest is parsed with the next input.
        """
        parser = PacketParser()
        steps = parser.packets(b"one\n" + req(P.ECHO_REQ, b"a") + req(P.ECHO_REQ, b"b"))
        self.assertEqual(next(steps), (TEXT, [], b"one"))
        self.assertEqual(next(steps), (P.ECHO_REQ, [b"a"], b"a"))
        steps.close()
        self.assertEqual(list(parser.packets(b"two\n")), [(P.ECHO_REQ, [b"b"], b"b"), (TEXT, [], b"two")])

    def test_restKeptAtEnd(self) -> None:
        """
        The unfinished rest of the input is kept once the steps are taken
        to the end, and completed by the next input.
        """
        parser = PacketParser()
        data = req(P.ECHO_REQ, b"a") + req(P.ECHO_REQ, b"bc")
        self.assertEqual(list(parser.packets(data[:-1])), [(P.ECHO_REQ, [b"a"], b"a")])
        self.assertEqual(list(parser.packets(data[-1:])), [(P.ECHO_REQ, [b"bc"], b"bc")])


class BadInputTests(SynchronousTestCase):
    """
    Malformed binary input (reference 1.3).
    """

    def test_badMagic(self) -> None:
        """
        A magic that is neither C{\\0REQ} nor C{\\0RES} stops the parser with
        no ERROR to send.
        """
        for magic in (b"\0XYZ", b"\0req", b"\0RE\0", b"\0\0\0\0"):
            parser = PacketParser()
            self.assertEqual(parser.feed(magic + struct.pack(">II", 16, 0)), [], magic)
            self.assertIsInstance(parser.failure, ProtocolError)
            self.assertIsNone(failureOf(parser).code)

    def test_otherMagic(self) -> None:
        """
        A packet with the other side's magic is reported with its type
        negated, with its payload and no arguments, and parsing goes on.
        """
        data = encode(P.ECHO_REQ, b"x", magic=RES) + req(P.ECHO_REQ, b"y")
        self.assertEqual(parseAll(data), [(-16, [], b"x"), (16, [b"y"], b"y")])
        data = encode(P.NOOP, magic=REQ) + encode(P.NOOP, magic=RES)
        self.assertEqual(parseAll(data, magic=RES), [(-6, [], b""), (6, [], b"")])

    def test_badTypes(self) -> None:
        """
        Type 0 and types above 42 stop the parser with nothing to send,
        whatever the magic; 5 and 42 are fine.
        """
        for magic in (REQ, RES):
            for ptype in (0, 43, 44, 0x80000000, 0xFFFFFFFF):
                parser = PacketParser()
                self.assertEqual(parser.feed(header(ptype, 0, magic)), [])
                self.assertIsInstance(parser.failure, ProtocolError, ptype)
                self.assertIsNone(failureOf(parser).code)
        self.assertEqual(parseAll(header(5, 0) + header(42, 10) + b"u\0" * 5)[0], (5, [], b""))

    def test_tooFewArguments(self) -> None:
        """
        A payload with fewer NULs than the type needs stops the parser with
        INVALID_PACKET to send (gearmand reads on into the next packet),
        for every type with separators, whatever the magic.
        """
        for ptype in range(1, MAX_PACKET_TYPE + 1):
            argc, hasData = ARGUMENTS[ptype]
            separators = argc if hasData else argc - 1
            if separators <= 0:
                continue
            payload = b"\0".join([b"a"] * separators)
            for magic in (REQ, RES):
                parser = PacketParser()
                self.assertEqual(parser.feed(header(ptype, len(payload), magic) + payload + req(P.NOOP)), [])
                self.assertEqual(failureOf(parser).code, b"INVALID_PACKET", ptype)
                self.assertEqual(failureOf(parser).text, b"Packet has too few arguments")

    def test_stopsAfterFailure(self) -> None:
        """
        Packets before the failure are returned; nothing after it, then or
        later.
        """
        parser = PacketParser()
        packets = parser.feed(req(16, b"a") + b"ok\n" + header(0, 0) + req(16, b"b"))
        self.assertEqual(packets, [(16, [b"a"], b"a"), (TEXT, [], b"ok")])
        failure = parser.failure
        self.assertIsNotNone(failure)
        self.assertEqual(parser.feed(req(16, b"c")), [])
        self.assertEqual(parser.feed(b"status\n"), [])
        self.assertIs(parser.failure, failure)

    def test_truncatedHeader(self) -> None:
        """
        A partial header waits without failing, even with a bad magic, until
        all twelve bytes are in.
        """
        parser = PacketParser()
        self.assertEqual(parser.feed(b"\0XY"), [])
        self.assertIsNone(parser.failure)
        parser.feed(b"Z" + b"\0" * 7)
        self.assertIsNone(parser.failure)
        parser.feed(b"\0")
        self.assertIsNotNone(parser.failure)

    def test_parseAll(self) -> None:
        """
        parseAll raises the parser's failure, and refuses a stream that ends
        inside a packet or a line.
        """
        self.assertRaises(ProtocolError, parseAll, req(16, b"abc")[:-1])
        self.assertRaises(ProtocolError, parseAll, req(16, b"abc")[:5])
        self.assertRaises(ProtocolError, parseAll, b"status")
        error = self.assertRaises(ProtocolError, parseAll, header(P.SUBMIT_JOB, 1) + b"f")
        self.assertEqual(error.code, b"INVALID_PACKET")
        self.assertEqual(parseAll(b""), [])


# Hypothesis: streams of random valid packets and text lines.

_argument = st.binary(max_size=12).map(lambda b: b.replace(b"\0", b"."))


@st.composite
def packets(draw, magics: Sequence[bytes] = (REQ,)) -> Tuple[bytes, Packet]:
    """
    One valid item of a stream: its bytes on the wire and what the parser
    should make of it.  A text line (ending LF or CR LF, with CRs inside),
    or a binary packet of any type with random arguments and data (NULs in
    the data and in the last argument of types without data), with any of
    C{magics}; the parser expects the first.
    """
    if draw(st.integers(0, 4)) == 0:
        body = draw(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"\r")))
        if body[:1] == b"\0":
            body = b"x" + body
        ending = draw(st.sampled_from([b"\n", b"\r\n"]))
        wire = body + ending
        line = wire[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        return wire, (TEXT, [], line)
    ptype = draw(st.integers(1, MAX_PACKET_TYPE))
    magic = draw(st.sampled_from(magics))
    argc, hasData = ARGUMENTS[ptype]
    args = [draw(_argument) for _ in range(argc)]
    if hasData:
        args.append(draw(st.binary(max_size=40)))
    elif argc:
        args[-1] = draw(st.binary(max_size=20))
    if argc == 0 and not hasData:
        payload = draw(st.binary(max_size=10))
        args = []
    else:
        payload = b"\0".join(args)
    wire = header(ptype, len(payload), magic) + payload
    if magic != magics[0]:
        return wire, (-ptype, [], payload)
    return wire, (ptype, args, payload)


def cut(data: bytes, cuts: Sequence[int]) -> List[bytes]:
    """
    C{data} cut at the given offsets (taken modulo its length).
    """
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[start:end] for start, end in zip(points, points[1:])]


def parseChunks(chunks: Sequence[bytes], **kwargs: object) -> Tuple[List[Packet], PacketParser]:
    """
    Feed C{chunks} in turn to a new parser.
    """
    parser = PacketParser(**kwargs)  # type: ignore[arg-type]
    out: List[Packet] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out, parser


@st.composite
def garbage(draw) -> bytes:
    """
    Bytes that are mostly not Gearman: random runs, headers with random
    fields, well-formed packets and text lines, in any order.
    """
    parts = draw(
        st.lists(
            st.one_of(
                st.binary(max_size=40),
                st.tuples(
                    st.sampled_from([REQ, RES, b"\0REX", b"\0\0\0\0"]),
                    st.one_of(st.integers(0, 45), st.integers(0, 0xFFFFFFFF)),
                    st.one_of(st.integers(0, 40), st.integers(0, 0xFFFFFFFF)),
                ).map(lambda t: header(t[1], t[2], t[0])),
                packets(magics=(REQ, RES)).map(lambda item: item[0]),
            ),
            max_size=10,
        )
    )
    return b"".join(parts)


class PropertyTests(SynchronousTestCase):
    """
    Properties of the parser over generated streams.
    """

    @settings(max_examples=200, deadline=None)
    @given(st.lists(packets(magics=(REQ, RES)), max_size=12), st.lists(st.integers(0, 5000), max_size=12))
    def test_anySplit(self, items, cuts) -> None:
        """
        Fed in pieces cut at arbitrary points, a stream of packets of every
        type and text lines parses to exactly what was encoded, and nothing
        is left over.
        """
        data = b"".join(wire for wire, _ in items)
        out, parser = parseChunks(cut(data, cuts))
        self.assertIsNone(parser.failure)
        self.assertEqual(out, [expected for _, expected in items])
        self.assertEqual(parser.feed(b""), [])
        self.assertEqual(parseAll(data), out)

    @settings(max_examples=100, deadline=None)
    @given(st.lists(packets(magics=(RES, REQ)), max_size=8))
    def test_byteByByte(self, items) -> None:
        """
        Feeding one byte at a time equals feeding everything at once, with
        the client side's magic too.
        """
        data = b"".join(wire for wire, _ in items)
        out, parser = parseChunks([data[index : index + 1] for index in range(len(data))], magic=RES)
        self.assertIsNone(parser.failure)
        self.assertEqual(out, parseAll(data, magic=RES))
        self.assertEqual(out, [expected for _, expected in items])

    @settings(max_examples=200, deadline=None)
    @given(garbage(), st.lists(st.integers(0, 1000), max_size=20))
    def test_garbage(self, data, cuts) -> None:
        """
        Garbage never raises: it yields packets or sets a L{ProtocolError}
        failure; however it is cut, it parses as when fed at once; and a
        stopped parser stays stopped.
        """
        whole, wholeParser = parseChunks([data], maxPacketSize=1000)
        pieces, parser = parseChunks(cut(data, cuts), maxPacketSize=1000)
        self.assertEqual(pieces, whole)
        for ptype, args, payload in pieces:
            self.assertIsInstance(ptype, int)
            self.assertIsInstance(args, list)
            self.assertIsInstance(payload, bytes)
        failure = parser.failure
        if failure is None:
            self.assertIsNone(wholeParser.failure)
        else:
            self.assertIsInstance(failure, ProtocolError)
            self.assertEqual(failure.code, failureOf(wholeParser).code)
            self.assertEqual(parser.feed(req(P.NOOP)), [])
            self.assertIs(parser.failure, failure)

    @settings(max_examples=200, deadline=None)
    @given(st.integers(1, MAX_PACKET_TYPE), st.lists(_argument, max_size=8), st.binary(max_size=30))
    def test_splitArguments(self, ptype, args, last) -> None:
        """
        For any type, splitArguments of an encoded payload gives back the
        arguments, as the parser does.
        """
        argc, hasData = ARGUMENTS[ptype]
        if argc == 0 and not hasData:
            return
        args = (args + [b""] * argc)[:argc] + [last]
        if not hasData:
            args = args[:argc]
            args[-1] = last
        payload = b"\0".join(args)
        self.assertEqual(splitArguments(ptype, payload), args)
        self.assertEqual(parseAll(req(ptype, *args)), [(ptype, args, payload)])
