# -*- test-case-name: tests.test_protocol -*-
"""
The Gearman wire format: packet types, an encoder and an incremental parser.

This module does no I/O and imports nothing from Twisted, so the server, the
client and the worker all share it.  A binary packet is::

    magic (4 bytes: b"\\0REQ" or b"\\0RES") | type (uint32 BE) | size (uint32 BE)
    | payload (size bytes: NUL-separated arguments, then the opaque data)

A chunk whose first byte is not NUL is a line of the text admin protocol.
"""

from __future__ import annotations

import struct
from enum import Enum, IntEnum
from typing import Generator, List, Optional, Sequence, Tuple

from gearman_tw.errors import ProtocolError

REQ = b"\0REQ"
RES = b"\0RES"

HEADER = struct.Struct(">4sII")
HEADER_SIZE = HEADER.size

#: gearmand reads into an 8192-byte buffer and drops the connection when a
#: text line with its newline, a NUL-ended argument with its NUL, or the
#: last argument of a type without data does not fit in it.
RECEIVE_BUFFER_SIZE = 8192

#: The longest admin line accepted, its newline included.
MAX_TEXT_LINE = RECEIVE_BUFFER_SIZE

#: The longest binary argument accepted: a NUL-ended one may hold one byte
#: less, to leave room for its NUL.  The opaque data has no such limit.
MAX_ARGUMENT_SIZE = RECEIVE_BUFFER_SIZE

#: Our default bound on one packet's declared payload size (gearmand has none).
DEFAULT_MAX_PACKET_SIZE = 64 * 1024 * 1024

#: Pseudo packet type of a text admin line in the parser's output.
TEXT = 0


class Priority(str, Enum):
    """
    A job's priority, as a client asks for it; the plain strings
    C{"high"}, C{"normal"} and C{"low"} compare equal to the members.
    """

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class PacketType(IntEnum):
    """
    Every packet type of the Gearman binary protocol, numbered as on the wire.
    """

    CAN_DO = 1
    CANT_DO = 2
    RESET_ABILITIES = 3
    PRE_SLEEP = 4
    UNUSED = 5
    NOOP = 6
    SUBMIT_JOB = 7
    JOB_CREATED = 8
    GRAB_JOB = 9
    NO_JOB = 10
    JOB_ASSIGN = 11
    WORK_STATUS = 12
    WORK_COMPLETE = 13
    WORK_FAIL = 14
    GET_STATUS = 15
    ECHO_REQ = 16
    ECHO_RES = 17
    SUBMIT_JOB_BG = 18
    ERROR = 19
    STATUS_RES = 20
    SUBMIT_JOB_HIGH = 21
    SET_CLIENT_ID = 22
    CAN_DO_TIMEOUT = 23
    ALL_YOURS = 24
    WORK_EXCEPTION = 25
    OPTION_REQ = 26
    OPTION_RES = 27
    WORK_DATA = 28
    WORK_WARNING = 29
    GRAB_JOB_UNIQ = 30
    JOB_ASSIGN_UNIQ = 31
    SUBMIT_JOB_HIGH_BG = 32
    SUBMIT_JOB_LOW = 33
    SUBMIT_JOB_LOW_BG = 34
    SUBMIT_JOB_SCHED = 35
    SUBMIT_JOB_EPOCH = 36
    SUBMIT_REDUCE_JOB = 37
    SUBMIT_REDUCE_JOB_BACKGROUND = 38
    GRAB_JOB_ALL = 39
    JOB_ASSIGN_ALL = 40
    GET_STATUS_UNIQUE = 41
    STATUS_RES_UNIQUE = 42


#: The highest packet type number gearmand 1.1 knows.
MAX_PACKET_TYPE = max(PacketType)

#: (argument count, has opaque data) for each packet type, indexed by number.
ARGUMENTS: Tuple[Tuple[int, bool], ...] = (
    (0, False),  # 0: not a packet type
    (1, False),  # CAN_DO: function
    (1, False),  # CANT_DO: function
    (0, False),  # RESET_ABILITIES
    (0, False),  # PRE_SLEEP
    (0, False),  # 5: unused
    (0, False),  # NOOP
    (2, True),  # SUBMIT_JOB: function, unique, data
    (1, False),  # JOB_CREATED: handle
    (0, False),  # GRAB_JOB
    (0, False),  # NO_JOB
    (2, True),  # JOB_ASSIGN: handle, function, data
    (3, False),  # WORK_STATUS: handle, numerator, denominator
    (1, True),  # WORK_COMPLETE: handle, data
    (1, False),  # WORK_FAIL: handle
    (1, False),  # GET_STATUS: handle
    (0, True),  # ECHO_REQ: data
    (0, True),  # ECHO_RES: data
    (2, True),  # SUBMIT_JOB_BG
    (2, False),  # ERROR: code, text
    (5, False),  # STATUS_RES: handle, known, running, numerator, denominator
    (2, True),  # SUBMIT_JOB_HIGH
    (1, False),  # SET_CLIENT_ID: id
    (2, False),  # CAN_DO_TIMEOUT: function, milliseconds
    (0, False),  # ALL_YOURS
    (1, True),  # WORK_EXCEPTION: handle, data
    (1, False),  # OPTION_REQ: name
    (1, False),  # OPTION_RES: name
    (1, True),  # WORK_DATA: handle, data
    (1, True),  # WORK_WARNING: handle, data
    (0, False),  # GRAB_JOB_UNIQ
    (3, True),  # JOB_ASSIGN_UNIQ: handle, function, unique, data
    (2, True),  # SUBMIT_JOB_HIGH_BG
    (2, True),  # SUBMIT_JOB_LOW
    (2, True),  # SUBMIT_JOB_LOW_BG
    (7, True),  # SUBMIT_JOB_SCHED: function, unique, min, hour, mday, month, wday, data
    (3, True),  # SUBMIT_JOB_EPOCH: function, unique, epoch, data
    (4, True),  # SUBMIT_REDUCE_JOB: function, unique, reducer, aggregator, data
    (4, True),  # SUBMIT_REDUCE_JOB_BACKGROUND
    (0, False),  # GRAB_JOB_ALL
    (4, True),  # JOB_ASSIGN_ALL: handle, function, unique, reducer, data
    (1, False),  # GET_STATUS_UNIQUE: unique
    (6, False),  # STATUS_RES_UNIQUE: unique, known, running, num, den, clients
)

# How many NUL separators each type's payload must hold, or -1 for "ignore
# the payload" (argument-less types without data).
_SEPARATORS: Tuple[int, ...] = tuple(
    argc if hasData else (argc - 1 if argc else -1) for argc, hasData in ARGUMENTS
)

#: Packets that carry a job's data (or a result of it) after its handle and
#: other arguments: they may exceed the largest accepted payload by
#: L{MAX_ARGUMENT_SIZE}, so that a job as large as a submission may be is
#: assigned, and its result as large again is delivered.
RESULT_TYPES = frozenset(
    (
        PacketType.JOB_ASSIGN,
        PacketType.JOB_ASSIGN_UNIQ,
        PacketType.JOB_ASSIGN_ALL,
        PacketType.WORK_DATA,
        PacketType.WORK_WARNING,
        PacketType.WORK_COMPLETE,
        PacketType.WORK_EXCEPTION,
    )
)

#: A parsed packet: (type, arguments, raw payload).  For a text line the type
#: is L{TEXT}, the arguments are empty and the payload is the line without its
#: line ending.
Packet = Tuple[int, List[bytes], bytes]


def encode(ptype: int, *args: bytes, magic: bytes = RES) -> bytes:
    """
    Encode one binary packet.

    @param ptype: the packet type number.
    @param args: the arguments, the opaque data (if the type has any) last;
        they are joined with NUL bytes.
    @param magic: L{RES} (server to peer, the default) or L{REQ}.
    """
    payload = b"\0".join(args)
    return HEADER.pack(magic, ptype, len(payload)) + payload


def encodeRaw(ptype: int, payload: bytes, magic: bytes = RES) -> bytes:
    """
    Encode one binary packet from an already joined payload.
    """
    return HEADER.pack(magic, ptype, len(payload)) + payload


def splitArguments(ptype: int, payload: bytes) -> List[bytes]:
    """
    Split C{payload} into the arguments of packet type C{ptype}.

    @return: the arguments, with the opaque data last for types that have
        data; an empty list for argument-less types without data.
    @raise ProtocolError: the payload holds fewer NUL separators than the
        type needs.
    """
    if not 0 <= ptype <= MAX_PACKET_TYPE:
        raise ProtocolError(None, b"Unknown packet type")
    separators = _SEPARATORS[ptype]
    if separators < 0:
        return []
    args = payload.split(b"\0", separators)
    if len(args) <= separators:
        raise ProtocolError(
            b"INVALID_PACKET",
            b"Packet has too few arguments",
        )
    return args


def _oversized(ptype: int, args: List[bytes]) -> bool:
    """
    Whether one of a packet's arguments would not fit gearmand's receive
    buffer (see L{MAX_ARGUMENT_SIZE}).
    """
    last = len(args) - 1
    for index in range(last):
        if len(args[index]) >= MAX_ARGUMENT_SIZE:
            return True
    return not ARGUMENTS[ptype][1] and len(args[last]) > MAX_ARGUMENT_SIZE


class PacketParser:
    """
    An incremental parser of a Gearman byte stream.

    Feed it bytes as they arrive, split anywhere; L{feed} returns the packets
    (and text lines) completed so far.  After malformed input it stops and
    sets L{failure}; the connection should then be closed.

    @ivar failure: the L{ProtocolError} that stopped parsing, or C{None}.
    """

    __slots__ = ("_chunks", "_have", "_need", "_magic", "_maxSize", "failure")

    def __init__(
        self, magic: bytes = REQ, maxPacketSize: int = DEFAULT_MAX_PACKET_SIZE
    ) -> None:
        """
        @param magic: the magic this side expects: L{REQ} for a server,
            L{RES} for a client or worker.  Packets with the other magic are
            reported with a negative type (see L{feed}).
        @param maxPacketSize: the largest payload size accepted
            (L{MAX_ARGUMENT_SIZE} more for the L{RESULT_TYPES}).
        """
        self._chunks: List[bytes] = []
        self._have = 0
        self._need = 1
        self._magic = magic
        self._maxSize = maxPacketSize
        self.failure: Optional[ProtocolError] = None

    @property
    def pending(self) -> int:
        """
        Bytes held for the next input: an unfinished packet or line (and
        any complete packets a consumer of L{packets} stopped before).
        """
        return self._have

    @property
    def needed(self) -> int:
        """
        Bytes the unfinished packet or line needs in all, header included,
        as far as they are known (0 when nothing is unfinished): a packet's
        size once its header is in.
        """
        return self._need if self._have else 0

    def feed(self, data: bytes) -> List[Packet]:
        """
        Take more bytes from the stream.

        @return: the packets completed by C{data}, as L{packets} gives them.
        """
        return list(self.packets(data))

    def packets(self, data: bytes) -> Generator[Packet, None, None]:
        """
        Take more bytes from the stream, parsing one packet per step: a
        read of many packets never holds them all (nor gives CPython's
        collector a pile of live containers to walk).  A consumer that stops
        early must close the generator (as C{for} does not): the packets
        not yet given are then kept for the next input.

        @return: the packets completed by C{data}, in order, as
            C{(type, arguments, payload)}.  A packet that carries the other
            side's magic is returned with its type negated (and no
            arguments); a text line as C{(TEXT, [], line)}, without its
            newline and at most one carriage return before it.  Whatever
            the chunking, the same stream gives the same packets and the
            same failure.
        """
        if self.failure is not None:
            return
        chunks = self._chunks
        chunks.append(data)
        self._have += len(data)
        if self._have < self._need:
            return
        buf = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        end = len(buf)
        pos = 0
        need = 1
        args: List[bytes]
        unpack = HEADER.unpack_from
        separators = _SEPARATORS
        try:
            while pos < end:
                if buf[pos]:
                    # A text admin line, which must fit in MAX_TEXT_LINE bytes
                    # with its newline.
                    limit = pos + MAX_TEXT_LINE
                    nl = buf.find(b"\n", pos, limit)
                    if nl < 0:
                        if end >= limit:
                            self.failure = ProtocolError(None, b"Admin line too long")
                            break
                        need = end - pos + 1
                        break
                    line = buf[pos:nl]
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    pos = nl + 1
                    yield (TEXT, [], line)
                    continue
                if end - pos < HEADER_SIZE:
                    need = HEADER_SIZE
                    break
                magic, ptype, size = unpack(buf, pos)
                if magic != REQ and magic != RES:
                    self.failure = ProtocolError(None, b"Bad magic")
                    break
                if ptype == 0 or ptype > MAX_PACKET_TYPE:
                    self.failure = ProtocolError(None, b"Unknown packet type")
                    break
                if size > self._maxSize and (
                    size > self._maxSize + MAX_ARGUMENT_SIZE or ptype not in RESULT_TYPES
                ):
                    self.failure = ProtocolError(
                        b"ARGUMENT_TOO_LARGE", b"Packet larger than the server accepts"
                    )
                    break
                stop = pos + HEADER_SIZE + size
                if stop > end:
                    need = HEADER_SIZE + size
                    break
                payload = buf[pos + HEADER_SIZE : stop]
                pos = stop
                nsep = separators[ptype]
                if nsep < 0:
                    args = []
                else:
                    args = payload.split(b"\0", nsep)
                    if len(args) <= nsep:
                        self.failure = ProtocolError(
                            b"INVALID_PACKET", b"Packet has too few arguments"
                        )
                        break
                    if size > MAX_ARGUMENT_SIZE and _oversized(ptype, args):
                        self.failure = ProtocolError(None, b"Packet argument too large")
                        break
                if magic != self._magic:
                    yield (-ptype, [], payload)
                else:
                    yield (ptype, args, payload)
        finally:
            # Also when the consumer stops early: what was given is used up.
            if self.failure is not None:
                self._chunks = []
                self._have = 0
            elif pos < end:
                rest = buf[pos:] if pos else buf
                self._chunks = [rest]
                self._have = end - pos
                self._need = need
            else:
                self._chunks = []
                self._have = 0
                self._need = 1


def parseAll(
    data: bytes, magic: bytes = REQ, maxPacketSize: int = DEFAULT_MAX_PACKET_SIZE
) -> List[Packet]:
    """
    Parse a complete byte string.

    @raise ProtocolError: C{data} is malformed or ends inside a packet.
    """
    parser = PacketParser(magic, maxPacketSize)
    packets = parser.feed(data)
    if parser.failure is not None:
        raise parser.failure
    if parser._have:
        raise ProtocolError(None, b"Truncated packet")
    return packets


def encodeMany(packets: Sequence[Tuple[int, Sequence[bytes]]], magic: bytes = REQ) -> bytes:
    """
    Encode a sequence of C{(type, arguments)} packets into one byte string.
    """
    return b"".join(encode(ptype, *args, magic=magic) for ptype, args in packets)

