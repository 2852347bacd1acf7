"""
Pairwise differential tests: each test starts a fresh C gearmand 1.1.20 and a
fresh C{twistd gearman}, runs one scripted exchange against each, and
requires the two transcripts to be equal.

A script is a function of a L{Run}; it opens named connections with
L{Run.conn} and drives them with L{Conn} methods.  Every method that reads
(C{sync}, C{admin}, C{quiet}, C{closed}) appends one event to that
connection's transcript; reads are bounded.  C{sync} is an ECHO barrier, so
the packets it records are exactly those that arrived before the echo.

Only four things are normalised (L{normaliseAdmin}): fd numbers in
C{workers}, the pid of C{getpid}, the C{version} string, and the line
ending of C{maxqueue}'s C{OK} (ours is C{OK\n} on purpose, reference 4.2).  Where the
reference (C{/work/shared/reference/protocol.md}) gives the exact answer a
read method takes C{expect=}; a mismatch is reported per server, so a test
also fails (and says so) when gearmand and the reference disagree.

Tests whose name ends in C{Ours} cover deliberate differences from gearmand
and run against our server only.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import RawConnection, ServerProcess, packet, startGearmand, startOurs

# Packet types (reference section 2).
CAN_DO, CANT_DO, RESET_ABILITIES, PRE_SLEEP, UNUSED, NOOP = 1, 2, 3, 4, 5, 6
SUBMIT_JOB, JOB_CREATED, GRAB_JOB, NO_JOB, JOB_ASSIGN = 7, 8, 9, 10, 11
WORK_STATUS, WORK_COMPLETE, WORK_FAIL, GET_STATUS, ECHO_REQ, ECHO_RES = 12, 13, 14, 15, 16, 17
SUBMIT_JOB_BG, ERROR, STATUS_RES, SUBMIT_JOB_HIGH, SET_CLIENT_ID = 18, 19, 20, 21, 22
CAN_DO_TIMEOUT, ALL_YOURS, WORK_EXCEPTION, OPTION_REQ, OPTION_RES = 23, 24, 25, 26, 27
WORK_DATA, WORK_WARNING, GRAB_JOB_UNIQ, JOB_ASSIGN_UNIQ = 28, 29, 30, 31
SUBMIT_JOB_HIGH_BG, SUBMIT_JOB_LOW, SUBMIT_JOB_LOW_BG, SUBMIT_JOB_SCHED = 32, 33, 34, 35
SUBMIT_JOB_EPOCH, SUBMIT_REDUCE_JOB, SUBMIT_REDUCE_JOB_BACKGROUND = 36, 37, 38
GRAB_JOB_ALL, JOB_ASSIGN_ALL, GET_STATUS_UNIQUE, STATUS_RES_UNIQUE = 39, 40, 41, 42

READ_TIMEOUT = 3.0
QUIET = 0.2


def err(code: bytes, text: bytes) -> Tuple[int, bytes]:
    """An ERROR packet as recorded (reference 1.4)."""
    return (ERROR, code + b"\0" + text)


INVALID_COMMAND = err(b"INVALID_COMMAND", b"Command not expected")
NOT_FOUND_DATA = err(b"JOB_NOT_FOUND", b"Job does not exist on server")
NOT_FOUND_RESULT = err(b"JOB_NOT_FOUND", b"Job given in work result not found")
NOT_FOUND_EXCEPTION = err(b"JOB_NOT_FOUND", b"An exception was received for a job that does not exist")
QUEUE_FULL = err(b"QUEUE_ERROR", b"Job queue is full")
N = (NOOP, b"")
NJ = (NO_JOB, b"")
MAXQUEUE_OK = b"OK\n"
OK = b"OK\r\n"


def created(n: int) -> Tuple[int, bytes]:
    return (JOB_CREATED, b"T:%d" % n)


def statusRes(handle: bytes, *numbers: int) -> Tuple[int, bytes]:
    return (STATUS_RES, b"\0".join([handle] + [b"%d" % n for n in numbers]))


def incomplete(word: bytes) -> bytes:
    return b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+" + word + b"\r\n"


def unknownCommand(word: bytes) -> bytes:
    return b"ERR UNKNOWN_COMMAND Unknown+server+command" + word + b"\r\n"


def normaliseAdmin(line: bytes, reply: bytes) -> bytes:
    """
    Hide what must differ: fds in C{workers}, the pid, the version, the
    line ending of C{maxqueue}'s C{OK}.
    """
    words = line.strip().split()
    command = words[0].lower() if words else b""
    if command == b"workers":
        return re.sub(rb"(?m)^\d+ ", b"FD ", reply)
    if command == b"getpid":
        return re.sub(rb"^OK \d+\n$", b"OK PID\n", reply)
    if command == b"version":
        return re.sub(rb"^OK [^\n]*\n$", b"OK VERSION\n", reply)
    if command == b"maxqueue" and reply == b"OK\r\n":
        # gearmand's; pygearman refuses it, so ours is OK\n.
        return b"OK\n"
    return reply


class Conn:
    """
    One named connection of a L{Run}, recording what it receives.
    """

    def __init__(self, run: "Run", name: str) -> None:
        self.run = run
        self.name = name
        self.raw = RawConnection(run.server.port, timeout=READ_TIMEOUT)
        self.dead = False

    def _record(self, event: Any, expect: Any = None, check: bool = False) -> Any:
        self.run.transcript.setdefault(self.name, []).append(event)
        if check and event != expect:
            self.run.specErrors.append("%s: %r != reference %r" % (self.name, event, expect))
        return event

    def send(self, data: bytes) -> "Conn":
        if not self.dead:
            try:
                self.raw.send(data)
            except OSError:
                self.dead = True
        return self

    def pkt(self, ptype: int, *args: bytes) -> "Conn":
        return self.send(packet(ptype, *args))

    def _sync(self) -> Tuple[List[Tuple[int, bytes]], Optional[str]]:
        if self.dead:
            return [], "CLOSED"
        self.run.tokens += 1
        token = b"sync-%d" % self.run.tokens
        self.send(packet(ECHO_REQ, token))
        packets: List[Tuple[int, bytes]] = []
        try:
            while True:
                ptype, payload = self.raw.readPacket()
                if ptype == ECHO_RES and payload == token:
                    return packets, None
                packets.append((ptype, payload))
        except (EOFError, ConnectionError):
            self.dead = True
            return packets, "CLOSED"
        except TimeoutError:
            return packets, "TIMEOUT"

    def sync(self, expect: Optional[List[Tuple[int, bytes]]] = None) -> List[Tuple[int, bytes]]:
        """
        ECHO barrier; record the packets that came before the echo.
        """
        packets, problem = self._sync()
        event = ("sync", packets) if problem is None else ("sync", packets, problem)
        self._record(event, None if expect is None else ("sync", expect), expect is not None)
        return packets

    def unchecked(self, label: str) -> List[Tuple[int, bytes]]:
        """
        An ECHO barrier whose packets are kept out of the comparison, in
        C{run.unchecked[label]}.
        """
        packets, problem = self._sync()
        self.run.unchecked[label] = packets
        self._record(("unchecked", label, problem))
        return packets

    def admin(self, line: bytes, expect: Optional[bytes] = None) -> bytes:
        """
        One admin line; record its reply (normalised).
        """
        self.send(line)
        try:
            reply = self.raw.admin(b"")
        except (EOFError, ConnectionError):
            self.dead = True
            reply = b"<CLOSED>"
        except TimeoutError:
            reply = b"<TIMEOUT>"
        reply = normaliseAdmin(line, reply)
        self._record(("admin", line, reply), ("admin", line, expect), expect is not None)
        return reply

    def quiet(self, wait: float = QUIET, expect: Optional[bytes] = None) -> bytes:
        """
        Record whatever arrives within C{wait} seconds.
        """
        data = self.raw.buffer
        self.raw.buffer = b""
        deadline = time.monotonic() + wait
        try:
            while self.raw._fill(deadline):
                data += self.raw.buffer
                self.raw.buffer = b""
        except (EOFError, ConnectionError):
            self.dead = True
        self._record(("quiet", data), None if expect is None else ("quiet", expect), expect is not None)
        return data

    def closed(self, wait: float = 2.0, expect: Optional[bool] = None) -> bool:
        """
        Record whether the server closes this connection within C{wait}
        seconds, and what it sent first.
        """
        data = self.raw.buffer
        self.raw.buffer = b""
        deadline = time.monotonic() + wait
        isClosed = self.dead
        try:
            while not isClosed and self.raw._fill(deadline):
                data += self.raw.buffer
                self.raw.buffer = b""
        except (EOFError, ConnectionError):
            isClosed = True
        self.dead = self.dead or isClosed
        self._record(("closed", isClosed, data), None if expect is None else ("closed", expect, b""), expect is not None)
        return isClosed

    def close(self, settle: float = 0.15) -> None:
        """
        Close from this side and give the server time to notice.
        """
        self.raw.close()
        self.dead = True
        time.sleep(settle)


class Run:
    """
    One script's execution against one server.
    """

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.transcript: Dict[str, List[Any]] = {}
        self.unchecked: Dict[str, Any] = {}
        self.specErrors: List[str] = []
        self.conns: Dict[str, Conn] = {}
        self.tokens = 0

    def conn(self, name: str) -> Conn:
        if name not in self.conns:
            self.conns[name] = Conn(self, name)
        return self.conns[name]

    def closeAll(self) -> None:
        for c in self.conns.values():
            c.raw.close()


Script = Callable[[Run], None]


class DifferentialCase(SynchronousTestCase):
    """
    Runs scripts against both servers.
    """

    def both(self, script: Script, *args: str) -> Tuple[Run, Run]:
        """
        Run C{script} on a fresh gearmand and a fresh gearman_tw started with
        C{args}; fail on reference mismatches or differing transcripts.
        Returns C{(ours, theirs)}.
        """
        runs = []
        for start in (startGearmand, startOurs):
            server = start(self, *args)
            run = Run(server)
            try:
                script(run)
            except self.failureException as e:
                run.specErrors.append("script stopped: %s" % (e,))
            finally:
                run.closeAll()
            runs.append(run)
        theirs, ours = runs
        problems = []
        for label, run in (("gearmand", theirs), ("gearman_tw", ours)):
            problems.extend("%s vs reference: %s" % (label, e) for e in run.specErrors)
        if theirs.transcript != ours.transcript:
            for name in sorted(set(theirs.transcript) | set(ours.transcript)):
                a, b = theirs.transcript.get(name, []), ours.transcript.get(name, [])
                for i in range(max(len(a), len(b))):
                    ea = a[i] if i < len(a) else None
                    eb = b[i] if i < len(b) else None
                    if ea != eb:
                        problems.append(
                            "transcripts differ, connection %s event %d:\n  gearmand:   %r\n  gearman_tw: %r"
                            % (name, i, ea, eb)
                        )
        if problems:
            self.fail("\n".join(problems))
        return ours, theirs

    def ours(self, script: Script, *args: str) -> Run:
        """
        Run C{script} on our server only (deliberate differences).
        """
        run = Run(startOurs(self, *args))
        try:
            script(run)
        finally:
            run.closeAll()
        if run.specErrors:
            self.fail("\n".join(run.specErrors))
        return run


def worker(run: Run, name: str, *functions: bytes) -> Conn:
    """A connection that sent CAN_DO for each of C{functions}, synced."""
    w = run.conn(name)
    for f in functions:
        w.pkt(CAN_DO, f)
    w.sync(expect=[])
    return w


def submit(c: Conn, ptype: int, func: bytes, uniq: bytes, data: bytes, expect: Any = None) -> None:
    """Submit one job and sync, expecting C{expect} (a packet list) if given."""
    c.pkt(ptype, func, uniq, data)
    c.sync(expect=expect)


# ---------------------------------------------------------------- 1.3 framing


class BadInputTests(DifferentialCase):
    """
    Reference 1.3: bad magic, types and commands.
    """

    def test_badMagic(self) -> None:
        """
        A magic that is neither \\0REQ nor \\0RES (but starts with \\0, so
        not an admin line): closed, nothing sent.
        """

        def script(run: Run) -> None:
            run.conn("c").send(packet(CAN_DO, b"f", magic=b"\0REX")).closed(expect=True)
            run.conn("d").send(packet(CAN_DO, b"f", magic=b"\0\0\0\0")).closed(expect=True)

        self.both(script)

    def test_responseMagic(self) -> None:
        """
        \\0RES magic: ERROR INVALID_MAGIC and the connection stays open.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            c.send(packet(CAN_DO, b"f", magic=b"\0RES"))
            c.sync(expect=[err(b"INVALID_MAGIC", b"Request magic expected")])
            c.sync(expect=[])

        self.both(script)

    def test_typeZero(self) -> None:
        """
        Type 0: closed, nothing sent.
        """

        def script(run: Run) -> None:
            run.conn("c").pkt(0).closed(expect=True)

        self.both(script)

    def test_type43(self) -> None:
        """
        Type 43 (one past the last): closed, nothing sent.
        """

        def script(run: Run) -> None:
            run.conn("c").pkt(43).closed(expect=True)

        self.both(script)

    def test_invalidCommands(self) -> None:
        """
        Type 5, NOOP, JOB_CREATED, ALL_YOURS and SUBMIT_JOB_SCHED each get
        ERROR INVALID_COMMAND and the connection stays open.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            for ptype, args in [
                (UNUSED, ()),
                (NOOP, ()),
                (JOB_CREATED, (b"T:1",)),
                (ALL_YOURS, ()),
                (SUBMIT_JOB_SCHED, (b"f", b"u", b"1", b"2", b"3", b"4", b"5", b"data")),
            ]:
                c.pkt(ptype, *args)
                c.sync(expect=[INVALID_COMMAND])
            c.admin(b"status\n")

        self.both(script)

    def test_tooFewNulsOurs(self) -> None:
        """
        Fewer NULs than the type's argc needs: we send an ERROR and close
        (deliberate, reference 1.3; gearmand reads into the next packet).
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            c.pkt(SUBMIT_JOB, b"f")
            c.quiet(0.5)
            self.assertTrue(c.closed())

        run = self.ours(script)
        events = run.transcript["c"]
        self.assertEqual(events[0][1][:12][4:8], b"\0\0\0\x13", events)

    def test_shortReduceOurs(self) -> None:
        """
        SUBMIT_REDUCE_JOB with three arguments: ERROR and close from us
        (deliberate, reference 1.3; gearmand waits for a fourth NUL).
        """

        def script(run: Run) -> None:
            d = run.conn("d")
            d.send(packet(SUBMIT_REDUCE_JOB, b"f", b"", b"red", b"x"))
            self.assertTrue(d.closed())

        run = self.ours(script)
        (event,) = run.transcript["d"]
        self.assertEqual(event[2][4:8], b"\0\0\0\x13", event)


# ---------------------------------------------------------------- 1.4 errors


class ErrorTests(DifferentialCase):
    """
    Reference 1.4: ERROR packets.
    """

    def test_jobNotFound(self) -> None:
        """
        WORK_* for a job held by another connection: the three JOB_NOT_FOUND
        texts, by packet type.
        """

        def script(run: Run) -> None:
            w = worker(run, "w", b"f")
            other = worker(run, "other", b"f")
            c = run.conn("c")
            submit(c, SUBMIT_JOB, b"f", b"", b"x", [created(1)])
            w.pkt(GRAB_JOB)
            w.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0x")])
            for ptype, args, expect in [
                (WORK_DATA, (b"T:1", b"d"), NOT_FOUND_DATA),
                (WORK_WARNING, (b"T:1", b"d"), NOT_FOUND_DATA),
                (WORK_STATUS, (b"T:1", b"1", b"2"), NOT_FOUND_RESULT),
                (WORK_COMPLETE, (b"T:1", b"d"), NOT_FOUND_RESULT),
                (WORK_FAIL, (b"T:1",), NOT_FOUND_RESULT),
                (WORK_EXCEPTION, (b"T:1", b"d"), NOT_FOUND_EXCEPTION),
                (WORK_COMPLETE, (b"T:99", b"d"), NOT_FOUND_RESULT),
            ]:
                other.pkt(ptype, *args)
                other.sync(expect=[expect])
            c.sync(expect=[])
            w.pkt(WORK_COMPLETE, b"T:1", b"ok")
            w.sync(expect=[])
            c.sync(expect=[(WORK_COMPLETE, b"T:1\0ok")])

        self.both(script)

    def test_options(self) -> None:
        """
        OPTION_REQ: unknown names get UNKNOWN_OPTION, "exceptions" in any
        case is echoed as sent.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            c.pkt(OPTION_REQ, b"foo")
            c.sync(expect=[err(b"UNKNOWN_OPTION", b"Server does not recognize given option")])
            c.pkt(OPTION_REQ, b"ExCePtIoNs")
            c.sync(expect=[(OPTION_RES, b"ExCePtIoNs")])
            c.pkt(OPTION_REQ, b"x" * 64)
            c.sync(expect=[err(b"UNKNOWN_OPTION", b"Server does not recognize given option")])

        self.both(script)

    def test_uniqueTooLarge(self) -> None:
        """
        A 65-byte unique: ERROR ARGUMENT_TOO_LARGE, no job; 64 is accepted.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            submit(c, SUBMIT_JOB, b"f", b"u" * 65, b"x", [err(b"ARGUMENT_TOO_LARGE", b"Unique value too large")])
            submit(c, SUBMIT_JOB_BG, b"f", b"v" * 65, b"x", [err(b"ARGUMENT_TOO_LARGE", b"Unique value too large")])
            submit(c, SUBMIT_JOB, b"f", b"u" * 64, b"x", [created(1)])
            c.admin(b"status\n", expect=b"f\t1\t0\t0\n.\n")

        self.both(script)

    def test_uniqueSixtyFourKeptOurs(self) -> None:
        """
        A 64-byte unique is kept whole and coalesces (deliberate, reference
        1.2: gearmand truncates it to 63 and never coalesces).
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            d = run.conn("d")
            submit(c, SUBMIT_JOB, b"f", b"u" * 64, b"x", [created(1)])
            submit(d, SUBMIT_JOB, b"f", b"u" * 64, b"x", [created(1)])
            c.admin(b"show unique jobs\n", expect=b"u" * 64 + b"\n.\n")
            d.pkt(GET_STATUS_UNIQUE, b"u" * 64)
            d.sync(expect=[(STATUS_RES_UNIQUE, b"u" * 64 + b"\x001\x000\x000\x000\x002")])

        self.ours(script)


# ---------------------------------------------------------------- submit and assign


class SubmitAssignTests(DifferentialCase):
    """
    Every submit type and every assign type (reference 2, 3.13).
    """

    def test_everySubmitType(self) -> None:
        """
        Each submit type creates a job with the next handle, at the priority
        its name says; the queue counts show where each went.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            submit(c, SUBMIT_JOB, b"f", b"", b"n", [created(1)])
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"nb", [created(2)])
            submit(c, SUBMIT_JOB_HIGH, b"f", b"", b"h", [created(3)])
            submit(c, SUBMIT_JOB_HIGH_BG, b"f", b"", b"hb", [created(4)])
            submit(c, SUBMIT_JOB_LOW, b"f", b"", b"l", [created(5)])
            submit(c, SUBMIT_JOB_LOW_BG, b"f", b"", b"lb", [created(6)])
            c.pkt(SUBMIT_JOB_EPOCH, b"f", b"", b"1", b"e")
            c.sync(expect=[created(7)])
            c.pkt(SUBMIT_REDUCE_JOB, b"f", b"", b"red", b"agg", b"r")
            c.sync(expect=[created(8)])
            c.pkt(SUBMIT_REDUCE_JOB_BACKGROUND, b"f", b"", b"red", b"agg", b"rb")
            c.sync(expect=[created(9)])
            c.admin(b"status\n", expect=b"f\t9\t0\t0\n.\n")
            c.admin(b"prioritystatus\n", expect=b"f\t2\t5\t2\t0\n.\n")
            c.admin(b"show jobs\n")
            w = worker(run, "w", b"f")
            order = []
            for _ in range(9):
                w.pkt(GRAB_JOB)
                got = w.sync()
                order.append(got[0][1].split(b"\0")[-1] if got else None)
            self.assertEqual(order, [b"h", b"hb", b"n", b"nb", b"e", b"r", b"rb", b"l", b"lb"])
            w.pkt(GRAB_JOB)
            w.sync(expect=[NJ])
            c.admin(b"status\n", expect=b"f\t9\t9\t1\n.\n")

        self.both(script)

    def test_assignTypes(self) -> None:
        """
        GRAB_JOB, GRAB_JOB_UNIQ and GRAB_JOB_ALL with and without a reducer,
        and the reducer hidden from GRAB_JOB and GRAB_JOB_UNIQ.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            w = worker(run, "w", b"f")
            submit(c, SUBMIT_JOB, b"f", b"u1", b"d1", [created(1)])
            submit(c, SUBMIT_JOB, b"f", b"u2", b"d2", [created(2)])
            submit(c, SUBMIT_JOB, b"f", b"u3", b"d3", [created(3)])
            c.pkt(SUBMIT_REDUCE_JOB, b"f", b"u4", b"red", b"agg", b"d4")
            c.sync(expect=[created(4)])
            c.pkt(SUBMIT_REDUCE_JOB, b"f", b"u5", b"red", b"agg", b"d5")
            c.sync(expect=[created(5)])
            c.pkt(SUBMIT_REDUCE_JOB, b"f", b"u6", b"red", b"agg", b"d6")
            c.sync(expect=[created(6)])
            submit(c, SUBMIT_JOB, b"f", b"", b"d7", [created(7)])
            w.pkt(GRAB_JOB, b"junk")
            w.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0d1")])
            w.pkt(GRAB_JOB_UNIQ)
            w.sync(expect=[(JOB_ASSIGN_UNIQ, b"T:2\0f\0u2\0d2")])
            w.pkt(GRAB_JOB_ALL)
            w.sync(expect=[(JOB_ASSIGN_UNIQ, b"T:3\0f\0u3\0d3")])
            w.pkt(GRAB_JOB_ALL)
            w.sync(expect=[(JOB_ASSIGN_ALL, b"T:4\0f\0u4\0red\0d4")])
            w.pkt(GRAB_JOB)
            w.sync(expect=[(JOB_ASSIGN, b"T:5\0f\0d5")])
            w.pkt(GRAB_JOB_UNIQ)
            w.sync(expect=[(JOB_ASSIGN_UNIQ, b"T:6\0f\0u6\0d6")])
            w.pkt(GRAB_JOB_UNIQ)
            w.sync(expect=[(JOB_ASSIGN_UNIQ, b"T:7\0f\0\0d7")])
            for grab in (GRAB_JOB, GRAB_JOB_UNIQ, GRAB_JOB_ALL):
                w.pkt(grab)
                w.sync(expect=[NJ])

        self.both(script)

    def test_echoAndClientId(self) -> None:
        """
        ECHO_REQ echoes; SET_CLIENT_ID shows in workers, silently.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            c.pkt(ECHO_REQ, b"a\0b")
            c.sync(expect=[(ECHO_RES, b"a\0b")])
            c.pkt(SET_CLIENT_ID, b"my id")
            c.pkt(CAN_DO, b"f")
            c.pkt(CAN_DO, b"g")
            c.sync(expect=[])
            c.admin(b"workers\n", expect=b"FD 127.0.0.1 my id : g f\n.\n")

        self.both(script)


# ---------------------------------------------------------------- 3.3 coalescing


class CoalescingTests(DifferentialCase):
    """
    Reference 3.3.
    """

    def test_namedUnique(self) -> None:
        """
        Same function and unique: one job, the existing handle, both clients
        get the result; another function with that unique is separate.
        """

        def script(run: Run) -> None:
            a, b, other = run.conn("a"), run.conn("b"), run.conn("other")
            submit(a, SUBMIT_JOB, b"f", b"u", b"first", [created(1)])
            submit(b, SUBMIT_JOB_HIGH, b"f", b"u", b"second", [created(1)])
            submit(other, SUBMIT_JOB, b"g", b"u", b"third", [created(2)])
            a.admin(b"prioritystatus\n")
            w = worker(run, "w", b"f")
            w.pkt(GRAB_JOB)
            w.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0first")])
            submit(b, SUBMIT_JOB, b"f", b"u", b"late", [created(1)])
            w.pkt(WORK_COMPLETE, b"T:1", b"r")
            w.sync(expect=[])
            a.sync(expect=[(WORK_COMPLETE, b"T:1\0r")])
            b.sync(expect=[(WORK_COMPLETE, b"T:1\0r"), (WORK_COMPLETE, b"T:1\0r")])
            other.sync(expect=[])

        self.both(script)

    def test_dashAndEmpty(self) -> None:
        """
        "-" coalesces on equal data only, and never with empty data; an
        empty unique never coalesces.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            submit(c, SUBMIT_JOB, b"f", b"-", b"x", [created(1)])
            submit(c, SUBMIT_JOB, b"f", b"-", b"x", [created(1)])
            submit(c, SUBMIT_JOB, b"f", b"-", b"y", [created(2)])
            submit(c, SUBMIT_JOB, b"g", b"-", b"x", [created(3)])
            submit(c, SUBMIT_JOB, b"f", b"-", b"", [created(4)])
            submit(c, SUBMIT_JOB, b"f", b"-", b"", [created(5)])
            submit(c, SUBMIT_JOB, b"f", b"", b"x", [created(6)])
            submit(c, SUBMIT_JOB, b"f", b"", b"x", [created(7)])
            c.admin(b"show unique jobs\n")

        self.both(script)

    def test_sameConnectionTwice(self) -> None:
        """
        One connection submitting twice gets every packet twice.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            w = worker(run, "w", b"f")
            submit(c, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            submit(c, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            w.pkt(GRAB_JOB)
            w.sync()
            w.pkt(WORK_DATA, b"T:1", b"d")
            w.pkt(WORK_STATUS, b"T:1", b"1", b"2")
            w.pkt(WORK_FAIL, b"T:1")
            w.sync(expect=[])
            c.sync(
                expect=[(WORK_DATA, b"T:1\0d")] * 2
                + [(WORK_STATUS, b"T:1\x001\x002")] * 2
                + [(WORK_FAIL, b"T:1")] * 2
            )

        self.both(script)

    def test_backgroundOntoForeground(self) -> None:
        """
        A background submit coalescing onto a foreground job attaches
        nothing: the background submitter gets no results.
        """

        def script(run: Run) -> None:
            fg, bg = run.conn("fg"), run.conn("bg")
            w = worker(run, "w", b"f")
            submit(fg, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            submit(bg, SUBMIT_JOB_BG, b"f", b"u", b"x", [created(1)])
            w.pkt(GRAB_JOB)
            w.sync()
            w.pkt(WORK_COMPLETE, b"T:1", b"r")
            w.sync(expect=[])
            fg.sync(expect=[(WORK_COMPLETE, b"T:1\0r")])
            bg.sync(expect=[])

        self.both(script)


# ---------------------------------------------------------------- 3.4 order


def grabAll(w: Conn, count: int, grab: int = GRAB_JOB) -> List[bytes]:
    """Grab C{count} times; the data of each job (None for NO_JOB)."""
    out = []
    for _ in range(count):
        w.pkt(grab)
        got = w.sync()
        out.append(got[0][1].split(b"\0")[-1] if got and got[0][0] != NO_JOB else None)
    return out


class QueueOrderTests(DifferentialCase):
    """
    Reference 3.4.
    """

    def test_fifoAndPriority(self) -> None:
        """
        FIFO inside a priority, HIGH > NORMAL > LOW.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            for ptype, data in [
                (SUBMIT_JOB_LOW, b"l1"),
                (SUBMIT_JOB, b"n1"),
                (SUBMIT_JOB_HIGH, b"h1"),
                (SUBMIT_JOB_LOW_BG, b"l2"),
                (SUBMIT_JOB_BG, b"n2"),
                (SUBMIT_JOB_HIGH_BG, b"h2"),
            ]:
                submit(c, ptype, b"f", b"", data)
            w = worker(run, "w", b"f")
            self.assertEqual(grabAll(w, 7), [b"h1", b"h2", b"n1", b"n2", b"l1", b"l2", None])

        self.both(script)

    def test_newestFunctionFirst(self) -> None:
        """
        GRAB walks functions newest CAN_DO first; a LOW job of the newer
        function beats a HIGH job of the older one.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            submit(c, SUBMIT_JOB_HIGH, b"old", b"", b"oldhigh")
            submit(c, SUBMIT_JOB, b"old", b"", b"oldnormal")
            submit(c, SUBMIT_JOB_LOW, b"new", b"", b"newlow")
            submit(c, SUBMIT_JOB_LOW, b"new", b"", b"newlow2")
            w = worker(run, "w", b"old", b"new")
            w.admin(b"workers\n")
            self.assertEqual(grabAll(w, 5), [b"newlow", b"newlow2", b"oldhigh", b"oldnormal", None])

        self.both(script)

    def test_roundRobin(self) -> None:
        """
        --round-robin: the served function moves to the end of the list.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            for i in range(2):
                for f in (b"fa", b"fb", b"fc"):
                    submit(c, SUBMIT_JOB, f, b"", f + b"%d" % i)
            w = worker(run, "w", b"fa", b"fb", b"fc")
            self.assertEqual(grabAll(w, 7), [b"fc0", b"fb0", b"fa0", b"fc1", b"fb1", b"fa1", None])

        self.both(script, "--round-robin")

    def test_withoutRoundRobin(self) -> None:
        """
        Without --round-robin the newest function is drained first.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            for i in range(2):
                for f in (b"fa", b"fb"):
                    submit(c, SUBMIT_JOB, f, b"", f + b"%d" % i)
            w = worker(run, "w", b"fa", b"fb")
            self.assertEqual(grabAll(w, 5), [b"fb0", b"fb1", b"fa0", b"fa1", None])

        self.both(script)


# ---------------------------------------------------------------- 3.7 requeue


class RequeueTests(DifferentialCase):
    """
    Reference 3.4 and 3.7: requeue to the tail, retries.
    """

    def _requeue(self, lose: Callable[[Conn], None]) -> Script:
        def script(run: Run) -> None:
            c = run.conn("c")
            submit(c, SUBMIT_JOB, b"f", b"", b"a", [created(1)])
            submit(c, SUBMIT_JOB, b"f", b"", b"b", [created(2)])
            w1 = worker(run, "w1", b"f")
            w1.pkt(GRAB_JOB)
            w1.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0a")])
            w1.pkt(WORK_STATUS, b"T:1", b"1", b"2")
            w1.sync(expect=[])
            c.sync(expect=[(WORK_STATUS, b"T:1\x001\x002")])
            sleeper = worker(run, "sleeper", b"f")
            sleeper.pkt(PRE_SLEEP)
            sleeper.sync(expect=[N])
            lose(w1)
            sleeper.sync()
            c.pkt(GET_STATUS, b"T:1")
            c.sync(expect=[statusRes(b"T:1", 1, 0, 0, 0)])
            w2 = worker(run, "w2", b"f")
            self.assertEqual(grabAll(w2, 3), [b"b", b"a", None])
            if not w1.dead:
                w1.pkt(WORK_COMPLETE, b"T:1", b"late")
                w1.sync(expect=[NOT_FOUND_RESULT])
            w2.pkt(WORK_COMPLETE, b"T:1", b"r")
            w2.sync(expect=[])
            c.sync(expect=[(WORK_COMPLETE, b"T:1\0r")])

        return script

    def test_disconnect(self) -> None:
        """
        The holder disconnects: its job goes to the tail, unannounced.
        """
        self.both(self._requeue(lambda w: w.close()))

    def test_cantDo(self) -> None:
        """
        CANT_DO requeues the held job to the tail; the old holder's result
        gets JOB_NOT_FOUND.
        """
        self.both(self._requeue(lambda w: w.pkt(CANT_DO, b"f").sync(expect=[])))

    def test_resetAbilities(self) -> None:
        """
        RESET_ABILITIES requeues the held job to the tail.
        """
        self.both(self._requeue(lambda w: w.pkt(RESET_ABILITIES).sync(expect=[])))

    def test_jobRetries(self) -> None:
        """
        --job-retries 2: requeued after the first loss, WORK_FAIL (bare
        handle) to the client after the second.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            submit(c, SUBMIT_JOB, b"f", b"", b"a", [created(1)])
            for i in range(2):
                w = worker(run, "w%d" % i, b"f")
                w.pkt(GRAB_JOB)
                w.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0a")])
                w.close()
                c.sync(expect=[] if i == 0 else [(WORK_FAIL, b"T:1")])
            c.admin(b"status\n", expect=b"f\t0\t0\t0\n.\n")
            c.pkt(GET_STATUS, b"T:1")
            c.sync(expect=[statusRes(b"T:1", 0, 0, 0, 0)])

        self.both(script, "--job-retries", "2")

    def test_canDoTimeout(self) -> None:
        """
        CAN_DO_TIMEOUT of 1 ms (clamped to 1 s): the job is requeued after
        the timeout; the worker is not told and its late result gets
        JOB_NOT_FOUND (reference 3.9).
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            w = run.conn("w")
            w.pkt(CAN_DO_TIMEOUT, b"f", b"1")
            w.sync(expect=[])
            submit(c, SUBMIT_JOB, b"f", b"", b"a", [created(1)])
            w.pkt(GRAB_JOB)
            w.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0a")])
            time.sleep(0.5)
            c.pkt(GET_STATUS, b"T:1")
            c.sync(expect=[statusRes(b"T:1", 1, 1, 0, 0)])
            time.sleep(1.0)
            c.pkt(GET_STATUS, b"T:1")
            c.sync(expect=[statusRes(b"T:1", 1, 0, 0, 0)])
            w.sync(expect=[])
            w.pkt(WORK_COMPLETE, b"T:1", b"late")
            w.sync(expect=[NOT_FOUND_RESULT])
            w2 = worker(run, "w2", b"f")
            w2.pkt(GRAB_JOB)
            w2.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0a")])
            w.admin(b"workers\n")

        self.both(script)


# ---------------------------------------------------------------- 3.5 NOOP


class NoopTests(DifferentialCase):
    """
    Reference 3.5.
    """

    def test_sleepAndWake(self) -> None:
        """
        A sleeper of the function gets one NOOP per GRAB; awake workers and
        sleepers of other functions get nothing.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            s = worker(run, "s", b"f")
            awake = worker(run, "awake", b"f")
            other = worker(run, "other", b"g")
            s.pkt(PRE_SLEEP)
            other.pkt(PRE_SLEEP)
            s.sync(expect=[])
            other.sync(expect=[])
            submit(c, SUBMIT_JOB, b"f", b"", b"1", [created(1)])
            s.sync(expect=[N])
            awake.sync(expect=[])
            other.sync(expect=[])
            submit(c, SUBMIT_JOB, b"f", b"", b"2", [created(2)])
            s.sync(expect=[])
            s.pkt(GRAB_JOB)
            s.sync(expect=[(JOB_ASSIGN, b"T:1\0f\x001")])
            s.pkt(PRE_SLEEP)
            s.sync(expect=[N])  # job 2 is still queued
            s.pkt(GRAB_JOB)
            s.sync(expect=[(JOB_ASSIGN, b"T:2\0f\x002")])
            submit(c, SUBMIT_JOB, b"f", b"", b"3", [created(3)])
            s.sync(expect=[])  # awake after GRAB
            s.pkt(PRE_SLEEP)
            s.sync(expect=[N])

        self.both(script)

    def test_workerWakeupOne(self) -> None:
        """
        --worker-wakeup 1: each job NOOPs one sleeper, rotating.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            ws = [worker(run, name, b"f") for name in ("a", "b", "c3")]
            for w in ws:
                w.pkt(PRE_SLEEP)
                w.sync(expect=[])
            woken = []
            for i in range(3):
                submit(c, SUBMIT_JOB_BG, b"f", b"", b"%d" % i, [created(i + 1)])
                woken.append([w.name for w in ws if w.sync()])
            # Reference 3.5: jobs 1, 2, 3 woke A, B, C.
            self.assertEqual(woken, [["a"], ["b"], ["c3"]])

        self.both(script, "--worker-wakeup", "1")

    def test_preSleepTwiceOurs(self) -> None:
        """
        PRE_SLEEP again after a NOOP without a GRAB: we still wake the
        worker (deliberate, reference 3.5 trap).
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            s = worker(run, "s", b"f")
            s.pkt(PRE_SLEEP)
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"1", [created(1)])
            s.sync(expect=[N])
            worker(run, "thief", b"f").pkt(GRAB_JOB).sync(expect=[(JOB_ASSIGN, b"T:1\0f\x001")])
            s.pkt(PRE_SLEEP)
            s.sync(expect=[])
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"2", [created(2)])
            s.sync(expect=[N])

        self.ours(script)


# ---------------------------------------------------------------- 3.6, 3.11 status and exceptions


class StatusTests(DifferentialCase):
    """
    Reference 3.6 and 3.11.
    """

    def test_workStatus(self) -> None:
        """
        WORK_STATUS is forwarded raw; GET_STATUS reports atoi of each part.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            w = worker(run, "w", b"f")
            submit(c, SUBMIT_JOB, b"f", b"", b"x", [created(1)])
            c.pkt(GET_STATUS, b"T:1")
            c.sync(expect=[statusRes(b"T:1", 1, 0, 0, 0)])
            w.pkt(GRAB_JOB)
            w.sync()
            c.pkt(GET_STATUS, b"T:1")
            c.sync(expect=[statusRes(b"T:1", 1, 1, 0, 0)])
            w.pkt(WORK_STATUS, b"T:1", b"50%", b"100x")
            w.pkt(WORK_DATA, b"T:1", b"d\0d")
            w.pkt(WORK_WARNING, b"T:1", b"warn")
            w.sync(expect=[])
            c.sync(expect=[(WORK_STATUS, b"T:1\x0050%\x00100x"), (WORK_DATA, b"T:1\0d\0d"), (WORK_WARNING, b"T:1\0warn")])
            c.pkt(GET_STATUS, b"T:1")
            c.pkt(GET_STATUS, b"T:nope")
            c.sync(expect=[statusRes(b"T:1", 1, 1, 50, 100), statusRes(b"T:nope", 0, 0, 0, 0)])
            w.pkt(WORK_COMPLETE, b"T:1", b"")
            w.sync(expect=[])
            c.sync(expect=[(WORK_COMPLETE, b"T:1\0")])
            c.pkt(GET_STATUS, b"T:1")
            c.sync(expect=[statusRes(b"T:1", 0, 0, 0, 0)])

        self.both(script)

    def test_getStatusUnique(self) -> None:
        """
        GET_STATUS_UNIQUE: status plus the number of attached clients;
        unknown and empty uniques give zeros.
        """

        def script(run: Run) -> None:
            a, b = run.conn("a"), run.conn("b")
            w = worker(run, "w", b"f")
            submit(a, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            submit(b, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            submit(b, SUBMIT_JOB_BG, b"f", b"u", b"x", [created(1)])
            submit(b, SUBMIT_JOB_BG, b"f", b"bg", b"x", [created(2)])
            w.pkt(GRAB_JOB)
            w.sync()
            w.pkt(WORK_STATUS, b"T:1", b"3", b"4")
            w.sync()
            for uniq, expect in [
                (b"u", b"u\x001\x001\x003\x004\x002"),
                (b"bg", b"bg\x001\x000\x000\x000\x000"),
                (b"zz", b"zz\x000\x000\x000\x000\x000"),
                (b"", b"\x000\x000\x000\x000\x000"),
            ]:
                a.sync()
                a.pkt(GET_STATUS_UNIQUE, uniq)
                a.sync(expect=[(STATUS_RES_UNIQUE, expect)])

        self.both(script)

    def test_exceptionClients(self) -> None:
        """
        WORK_EXCEPTION: a client with the exceptions option gets it as is; a
        plain client gets WORK_FAIL (gearmand adds a stray NUL, we send the
        bare handle: not compared, reference 3.6); the job ends.
        """

        def script(run: Run) -> None:
            exc, plain = run.conn("exc"), run.conn("plain")
            exc.pkt(OPTION_REQ, b"exceptions")
            exc.sync(expect=[(OPTION_RES, b"exceptions")])
            w = worker(run, "w", b"f")
            submit(exc, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            submit(plain, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            w.pkt(GRAB_JOB)
            w.sync()
            w.pkt(WORK_EXCEPTION, b"T:1", b"boom\0!")
            w.sync(expect=[])
            exc.sync(expect=[(WORK_EXCEPTION, b"T:1\0boom\0!")])
            plain.unchecked("plain")
            exc.admin(b"status\n", expect=b"f\t0\t0\t1\n.\n")

        ours, theirs = self.both(script)
        self.assertEqual(ours.unchecked["plain"], [(WORK_FAIL, b"T:1")])
        self.assertEqual(theirs.unchecked["plain"], [(WORK_FAIL, b"T:1\0")])

    def test_serverExceptions(self) -> None:
        """
        --exceptions: every client gets WORK_EXCEPTION as is.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            w = worker(run, "w", b"f")
            submit(c, SUBMIT_JOB, b"f", b"", b"x", [created(1)])
            w.pkt(GRAB_JOB)
            w.sync()
            w.pkt(WORK_EXCEPTION, b"T:1", b"boom")
            w.sync(expect=[])
            c.sync(expect=[(WORK_EXCEPTION, b"T:1\0boom")])

        self.both(script, "--exceptions")


# ---------------------------------------------------------------- 3.10 maxqueue


class MaxQueueTests(DifferentialCase):
    """
    Reference 3.10 and the maxqueue forms of 4.2.
    """

    def test_oneLimit(self) -> None:
        """
        "maxqueue f 2": queued plus running counts; coalescing is not
        checked; other functions are not limited; none resets.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            w = worker(run, "w", b"f")
            c.admin(b"maxqueue f 2\r\n", expect=MAXQUEUE_OK)
            submit(c, SUBMIT_JOB, b"f", b"u", b"1", [created(1)])
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"2", [created(2)])
            submit(c, SUBMIT_JOB_HIGH, b"f", b"", b"3", [QUEUE_FULL])
            submit(c, SUBMIT_JOB, b"f", b"u", b"1", [created(1)])
            w.pkt(GRAB_JOB)
            w.sync()
            submit(c, SUBMIT_JOB_LOW_BG, b"f", b"", b"4", [QUEUE_FULL])
            w.pkt(WORK_COMPLETE, b"T:1", b"r")
            w.sync()
            submit(c, SUBMIT_JOB_LOW, b"f", b"", b"5", [(WORK_COMPLETE, b"T:1\0r"), (WORK_COMPLETE, b"T:1\0r"), created(3)])
            c.admin(b"maxqueue F 0\r\n", expect=MAXQUEUE_OK)
            c.admin(b"maxqueue nosuch 1\r\n", expect=MAXQUEUE_OK)
            submit(c, SUBMIT_JOB, b"f", b"", b"6", [QUEUE_FULL])
            c.admin(b"maxqueue f\r\n", expect=MAXQUEUE_OK)
            submit(c, SUBMIT_JOB, b"f", b"", b"7", [created(4)])
            c.admin(b"status\n")

        self.both(script)

    def test_twoAndThreeLimits(self) -> None:
        """
        "maxqueue f h n" limits HIGH and NORMAL, LOW unlimited;
        "maxqueue f h n l" limits all three; junk means 0.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            c.admin(b"create function f\r\n", expect=OK)
            c.admin(b"maxqueue f 1 2\r\n", expect=MAXQUEUE_OK)
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"1", [created(1)])
            submit(c, SUBMIT_JOB_HIGH_BG, b"f", b"", b"2", [QUEUE_FULL])
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"3", [created(2)])
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"4", [QUEUE_FULL])
            submit(c, SUBMIT_JOB_LOW_BG, b"f", b"", b"5", [created(3)])
            submit(c, SUBMIT_JOB_LOW_BG, b"f", b"", b"6", [created(4)])
            c.admin(b"maxqueue f 9 9 4\r\n", expect=MAXQUEUE_OK)
            submit(c, SUBMIT_JOB_LOW_BG, b"f", b"", b"7", [QUEUE_FULL])
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"8", [created(5)])
            c.admin(b"maxqueue f junk -3 9\r\n", expect=MAXQUEUE_OK)
            submit(c, SUBMIT_JOB_HIGH_BG, b"f", b"", b"9", [created(6)])
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"10", [created(7)])
            c.admin(b"prioritystatus\n")

        self.both(script)


# ---------------------------------------------------------------- 3.8 client disconnect


class ClientDisconnectTests(DifferentialCase):
    """
    Reference 3.8.
    """

    def test_queuedJobAbandoned(self) -> None:
        """
        A queued foreground job whose only client left never runs: still
        counted, then NO_JOB at the next GRAB.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            submit(c, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            c.close()
            a = run.conn("admin")
            a.admin(b"status\n")
            a.admin(b"show jobs\n")
            w = worker(run, "w", b"f")
            w.pkt(GRAB_JOB)
            w.sync(expect=[NJ])
            a.admin(b"status\n", expect=b"f\t0\t0\t1\n.\n")

        self.both(script)

    def test_runningJobAbandoned(self) -> None:
        """
        A running job whose client left finishes; the worker's WORK_* are
        accepted silently.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            w = worker(run, "w", b"f")
            submit(c, SUBMIT_JOB, b"f", b"", b"x", [created(1)])
            w.pkt(GRAB_JOB)
            w.sync()
            c.close()
            w.pkt(WORK_DATA, b"T:1", b"d")
            w.pkt(WORK_STATUS, b"T:1", b"1", b"2")
            w.pkt(WORK_COMPLETE, b"T:1", b"r")
            w.sync(expect=[])
            w.admin(b"status\n", expect=b"f\t0\t0\t1\n.\n")

        self.both(script)

    def test_otherClientKeepsJob(self) -> None:
        """
        With two clients attached, one leaving keeps the job alive.
        """

        def script(run: Run) -> None:
            a, b = run.conn("a"), run.conn("b")
            submit(a, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            submit(b, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            a.close()
            w = worker(run, "w", b"f")
            w.pkt(GRAB_JOB)
            w.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0x")])
            w.pkt(WORK_COMPLETE, b"T:1", b"r")
            w.sync()
            b.sync(expect=[(WORK_COMPLETE, b"T:1\0r")])

        self.both(script)

    def test_coalescedBackgroundSurvivesOurs(self) -> None:
        """
        A background submit coalesced onto a foreground job keeps the job
        alive when the foreground client leaves (deliberate, reference 3.8).
        """

        def script(run: Run) -> None:
            fg, bg = run.conn("fg"), run.conn("bg")
            submit(fg, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            submit(bg, SUBMIT_JOB_BG, b"f", b"u", b"x", [created(1)])
            fg.close()
            w = worker(run, "w", b"f")
            w.pkt(GRAB_JOB)
            w.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0x")])

        self.ours(script)


# ---------------------------------------------------------------- 3.12 epoch


class EpochTests(DifferentialCase):
    """
    Reference 3.12.
    """

    def test_pastAndFuture(self) -> None:
        """
        A past epoch runs now; a future one is held (counted, not grabbed).
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            c.pkt(SUBMIT_JOB_EPOCH, b"f", b"", b"junk", b"now")
            c.sync(expect=[created(1)])
            c.pkt(SUBMIT_JOB_EPOCH, b"f", b"", b"%d" % (time.time() + 3600), b"later")
            c.sync(expect=[created(2)])
            c.admin(b"prioritystatus\n", expect=b"f\t0\t2\t0\t0\n.\n")
            w = worker(run, "w", b"f")
            self.assertEqual(grabAll(w, 2), [b"now", None])

        self.both(script)

    def test_runnableWhenDueOurs(self) -> None:
        """
        A future epoch job becomes runnable when due and NOOPs sleepers
        (deliberate, reference 3.12: gearmand has no timer).
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            s = worker(run, "s", b"f")
            c.pkt(SUBMIT_JOB_EPOCH, b"f", b"", b"%d" % (int(time.time()) + 2), b"soon")
            c.sync(expect=[created(1)])
            s.pkt(GRAB_JOB)
            s.sync(expect=[NJ])
            s.pkt(PRE_SLEEP)
            s.quiet(0.1)
            time.sleep(2.2)
            s.sync(expect=[N])
            s.pkt(GRAB_JOB)
            s.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0soon")])

        self.ours(script)


# ---------------------------------------------------------------- 4 admin


class AdminTests(DifferentialCase):
    """
    Reference 4.
    """

    def test_lists(self) -> None:
        """
        status, prioritystatus, workers, show jobs, show unique jobs on a
        server with a job running, one queued and a worker.
        """

        def script(run: Run) -> None:
            a = run.conn("admin")
            a.admin(b"status\n", expect=b".\n")
            a.admin(b"workers\n", expect=b"FD 127.0.0.1 - :\n.\n")
            a.admin(b"show jobs\n", expect=b".\n")
            a.admin(b"show unique jobs\n", expect=b".\n")
            c = run.conn("c")
            w = worker(run, "w", b"f", b"f")
            submit(c, SUBMIT_JOB, b"f", b"u", b"x", [created(1)])
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"y", [created(2)])
            w.pkt(GRAB_JOB)
            w.sync()
            a.admin(b"status\n", expect=b"f\t2\t1\t2\n.\n")
            a.admin(b"prioritystatus\n", expect=b"f\t0\t1\t0\t2\n.\n")
            a.admin(b"show jobs\n", expect=b"T:1\t0\t0\t0\nT:2\t0\t0\t1\n.\n")
            a.admin(b"show unique jobs\n")
            a.admin(b"workers\r\n")

        self.both(script)

    def test_simpleReplies(self) -> None:
        """
        getpid, version, verbose, shutdown, show, unknown words, an empty
        line and a leading space.
        """

        def script(run: Run) -> None:
            a = run.conn("admin")
            a.admin(b"getpid\n")
            a.admin(b"version\r\n")
            a.admin(b"verbose\n")
            a.admin(b"shutdown\r\n", expect=unknownCommand(b"shutdown"))
            a.admin(b"shutdown graceful\n", expect=unknownCommand(b"shutdown"))
            a.admin(b"show\n", expect=unknownCommand(b"show"))
            a.admin(b"show x\n", expect=b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n")
            a.admin(b"bogus\n", expect=unknownCommand(b"bogus"))
            a.admin(b"\n", expect=unknownCommand(b""))
            a.admin(b" status\n", expect=unknownCommand(b""))
            a.admin(b"maxqueue\n", expect=incomplete(b"maxqueue"))
            self.assertEqual(a.sync(), [])

        self.both(script)

    def test_caseAndWords(self) -> None:
        """
        Commands are case-insensitive, extra words after no-argument commands
        are ignored, runs of spaces collapse, and more than five words closes
        the connection without a reply.
        """

        def script(run: Run) -> None:
            a = run.conn("admin")
            a.admin(b"create function f\r\n", expect=OK)
            a.admin(b"STATUS\n", expect=b"f\t0\t0\t0\n.\n")
            a.admin(b"Status foo bar\n", expect=b"f\t0\t0\t0\n.\n")
            a.admin(b"PrioRityStatus  x\n", expect=b"f\t0\t0\t0\t0\n.\n")
            a.admin(b"SHOW JOBS\n", expect=b".\n")
            a.admin(b"Show Unique Jobs\n", expect=b".\n")
            a.admin(b"status a b c d\n", expect=b"f\t0\t0\t0\n.\n")
            a.send(b"status a b c d e\n").closed(expect=True)
            b = run.conn("b")
            b.send(b"x" * 9000).closed()

        self.both(script)

    def test_cancelJob(self) -> None:
        """
        cancel job: OK and a bare WORK_FAIL to attached clients, the queued
        job reaped at the next GRAB; unknown handle and word counts.
        """

        def script(run: Run) -> None:
            a = run.conn("admin")
            c = run.conn("c")
            submit(c, SUBMIT_JOB, b"f", b"", b"x", [created(1)])
            submit(c, SUBMIT_JOB, b"f", b"", b"y", [created(2)])
            a.admin(b"cancel job t:1\r\n", expect=b"ERR UNKNOWN_JOB\r\n")
            a.admin(b"cancel job T:1\r\n", expect=OK)
            c.sync(expect=[(WORK_FAIL, b"T:1")])
            a.admin(b"status\n", expect=b"f\t2\t0\t0\n.\n")
            a.admin(b"cancel job\n", expect=unknownCommand(b"cancel"))
            a.admin(b"cancel x y\n", expect=b"ERR UNKNOWN_ERROR\r\n")
            a.admin(b"cancel job T:2 extra\n", expect=b"ERR UNKNOWN_ERROR\r\n")
            a.admin(b"CANCEL JOB T:9\n", expect=b"ERR UNKNOWN_JOB\r\n")
            w = worker(run, "w", b"f")
            self.assertEqual(grabAll(w, 2), [b"y", None])
            a.admin(b"status\n", expect=b"f\t1\t1\t1\n.\n")

        self.both(script)

    def test_cancelTwiceOurs(self) -> None:
        """
        A second cancel of the same job sends no second WORK_FAIL: cancel
        detaches the clients (deliberate, reference 4.2).
        """

        def script(run: Run) -> None:
            a = run.conn("admin")
            c = run.conn("c")
            submit(c, SUBMIT_JOB, b"f", b"", b"x", [created(1)])
            a.admin(b"cancel job T:1\r\n", expect=OK)
            c.sync(expect=[(WORK_FAIL, b"T:1")])
            a.admin(b"cancel job T:1\r\n")
            c.sync(expect=[])

        self.ours(script)

    def test_createAndDropFunction(self) -> None:
        """
        create function / drop function replies, including the word-count
        errors, a function with a worker, and an unknown one.
        """

        def script(run: Run) -> None:
            a = run.conn("admin")
            a.admin(b"create function one\r\n", expect=OK)
            a.admin(b"create function\r\n", expect=incomplete(b"create"))
            a.admin(b"create function a b\r\n", expect=incomplete(b"create"))
            a.admin(b"status\n", expect=b"one\t0\t0\t0\n.\n")
            a.admin(b"drop function\r\n", expect=incomplete(b"drop"))
            a.admin(b"drop function nosuch\r\n", expect=b"ERR function not found\r\n")
            w = worker(run, "w", b"two")
            a.admin(b"drop function two\r\n", expect=b"ERR there are still connected workers or executing clients\r\n")
            w.close()
            a.admin(b"DROP FUNCTION two\r\n", expect=OK)
            a.admin(b"drop function one\r\n", expect=OK)
            a.admin(b"status\n", expect=b".\n")

        self.both(script)

    def test_createFunctionBareNewlineOurs(self) -> None:
        """
        "create function f" ended by a bare \\n keeps the whole name
        (deliberate, reference 4.2: gearmand drops the last character).
        """

        def script(run: Run) -> None:
            a = run.conn("admin")
            a.admin(b"create function abc\n", expect=OK)
            a.admin(b"status\n", expect=b"abc\t0\t0\t0\n.\n")

        self.ours(script)

    def test_dropFunctionWithQueuedJobsOurs(self) -> None:
        """
        drop function is refused while jobs are queued (deliberate,
        reference 4.2: gearmand orphans them).
        """

        def script(run: Run) -> None:
            a = run.conn("admin")
            submit(a, SUBMIT_JOB_BG, b"f", b"", b"x", [created(1)])
            reply = a.admin(b"drop function f\r\n")
            self.assertTrue(reply.startswith(b"ERR"), reply)
            a.admin(b"status\n", expect=b"f\t1\t0\t0\n.\n")

        self.ours(script)

    def test_versionOurs(self) -> None:
        """
        Our version string is our own (deliberate): "OK <something>\\n".
        """
        run = Run(startOurs(self))
        c = run.conn("admin")
        c.send(b"version\n")
        reply = c.raw.admin(b"")
        run.closeAll()
        self.assertRegex(reply, rb"^OK \S+\n$")


# ---------------------------------------------------------------- odds and ends


class EdgeTests(DifferentialCase):
    """
    Framing, limits and listings beyond the main list (reference 1, 2, 4).
    """

    def test_trickleAndPipeline(self) -> None:
        """
        A packet sent one byte at a time, and several packets plus an admin
        line in one write, are answered in order.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            for byte in packet(SUBMIT_JOB, b"f", b"u", b"x"):
                c.send(bytes([byte]))
                time.sleep(0.005)
            c.sync(expect=[created(1)])
            c.send(
                packet(SUBMIT_JOB_BG, b"f", b"", b"y")
                + packet(GET_STATUS, b"T:1")
                + b"status\n"
                + packet(ECHO_REQ, b"e")
            )
            c.quiet(0.5)

        self.both(script)

    def test_canDoDuplicatesAndEmptyName(self) -> None:
        """
        CAN_DO twice is listed twice and counted twice; an empty function
        name is accepted and listed.
        """

        def script(run: Run) -> None:
            w = worker(run, "w", b"f", b"f", b"")
            w.admin(b"status\n")
            w.admin(b"workers\n")
            c = run.conn("c")
            submit(c, SUBMIT_JOB_BG, b"", b"", b"x", [created(1)])
            w.pkt(GRAB_JOB)
            w.sync(expect=[(JOB_ASSIGN, b"T:1\0\0x")])

        self.both(script)

    def test_longArguments(self) -> None:
        """
        An 8000-byte function name works; 8200 closes the connection;
        SET_CLIENT_ID is cut to 127.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            submit(c, SUBMIT_JOB_BG, b"f" * 8000, b"", b"x", [created(1)])
            c.pkt(SET_CLIENT_ID, b"i" * 200)
            c.sync(expect=[])
            c.admin(b"workers\n", expect=b"FD 127.0.0.1 " + b"i" * 127 + b" :\n.\n")
            d = run.conn("d")
            d.pkt(SUBMIT_JOB_BG, b"g" * 8200, b"", b"x")
            d.closed(expect=True)

        self.both(script)

    def test_longHandles(self) -> None:
        """
        GET_STATUS with a 64-byte handle gets no reply; WORK_FAIL with one
        gets ARGUMENT_TOO_LARGE; 63 bytes are answered normally.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            c.pkt(GET_STATUS, b"h" * 63)
            c.sync(expect=[statusRes(b"h" * 63, 0, 0, 0, 0)])
            c.pkt(GET_STATUS, b"h" * 64)
            c.quiet(0.3)
            c.pkt(GET_STATUS_UNIQUE, b"h" * 64)
            c.quiet(0.3)
            d = run.conn("d")
            d.pkt(WORK_FAIL, b"h" * 64)
            d.sync(
                expect=[
                    err(
                        b"ARGUMENT_TOO_LARGE",
                        b"Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf",
                    )
                ]
            )

        self.both(script)

    def test_epochOverflow(self) -> None:
        """
        An EPOCH number that overflows gets no reply (reference 3.12).
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            c.pkt(SUBMIT_JOB_EPOCH, b"f", b"", b"9" * 30, b"x")
            c.closed(1.0)
            run.conn("admin").admin(b"status\n")

        self.both(script)

    def test_requeueNewestGrabbedFirstAndWakes(self) -> None:
        """
        A worker holding two jobs disconnects: they are requeued newest
        grabbed first, and a sleeper is NOOPed.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            w = worker(run, "w", b"f")
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"a", [created(1)])
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"b", [created(2)])
            self.assertEqual(grabAll(w, 2), [b"a", b"b"])
            s = worker(run, "s", b"f")
            s.pkt(PRE_SLEEP)
            s.sync(expect=[])
            w.close()
            s.sync(expect=[N])
            self.assertEqual(grabAll(s, 3), [b"b", b"a", None])

        self.both(script)

    def test_jobRetriesCantDo(self) -> None:
        """
        --job-retries 2 counts CANT_DO losses too; the job fails on the
        second.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            w = worker(run, "w", b"f")
            submit(c, SUBMIT_JOB, b"f", b"", b"a", [created(1)])
            for i in range(2):
                w.pkt(GRAB_JOB)
                w.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0a")])
                w.pkt(CANT_DO, b"f")
                w.pkt(CAN_DO, b"f")
                w.sync(expect=[])
                c.sync(expect=[] if i == 0 else [(WORK_FAIL, b"T:1")])
            w.pkt(GRAB_JOB)
            w.sync(expect=[NJ])

        self.both(script, "--job-retries", "2")

    def test_cancelRunning(self) -> None:
        """
        cancel job on a running job: OK, WORK_FAIL to the client, and the
        worker's later results.
        """

        def script(run: Run) -> None:
            a, c = run.conn("admin"), run.conn("c")
            w = worker(run, "w", b"f")
            submit(c, SUBMIT_JOB, b"f", b"", b"x", [created(1)])
            w.pkt(GRAB_JOB)
            w.sync()
            a.admin(b"cancel job T:1\n", expect=OK)
            c.sync(expect=[(WORK_FAIL, b"T:1")])
            a.admin(b"show jobs\n")
            w.pkt(WORK_DATA, b"T:1", b"d")
            w.pkt(WORK_COMPLETE, b"T:1", b"r")
            w.sync(expect=[])
            # gearmand keeps the client attached and forwards these; we
            # detach clients on cancel (deliberate, reference 4.2).
            c.unchecked("after")
            a.admin(b"status\n")

        ours, theirs = self.both(script)
        self.assertEqual(ours.unchecked["after"], [])
        self.assertEqual(theirs.unchecked["after"], [(WORK_DATA, b"T:1\0d"), (WORK_COMPLETE, b"T:1\0r")])

    def test_clientAndWorkerOneConnection(self) -> None:
        """
        One connection may be client and worker at once and hold many jobs.
        """

        def script(run: Run) -> None:
            c = worker(run, "c", b"f")
            submit(c, SUBMIT_JOB, b"f", b"", b"1", [created(1)])
            submit(c, SUBMIT_JOB, b"f", b"", b"2", [created(2)])
            self.assertEqual(grabAll(c, 2), [b"1", b"2"])
            c.pkt(WORK_COMPLETE, b"T:2", b"r2")
            c.pkt(WORK_COMPLETE, b"T:1", b"r1")
            c.sync(expect=[(WORK_COMPLETE, b"T:2\0r2"), (WORK_COMPLETE, b"T:1\0r1")])

        self.both(script)

    def test_listingOrder(self) -> None:
        """
        status, prioritystatus, workers and show jobs with several functions
        and connections list in the same order on both servers.
        """

        def script(run: Run) -> None:
            a = run.conn("admin")
            c = run.conn("c")
            for f in (b"alpha", b"beta", b"gamma", b"delta", b"x", b"reverse"):
                submit(c, SUBMIT_JOB_BG, f, f, b"d", None)
            for name in ("w1", "w2", "w3"):
                worker(run, name, b"beta", b"x")
            a.admin(b"status\n")
            a.admin(b"prioritystatus\n")
            a.admin(b"workers\n")
            a.admin(b"show jobs\n")
            a.admin(b"show unique jobs\n")

        self.both(script)


class MoreAdminTests(DifferentialCase):
    """
    Word counts, spacing and extra words of section 4.1 and 4.2.
    """

    def test_wordCounts(self) -> None:
        """
        Trailing and repeated spaces, extra words on every command, and the
        replies they give.
        """

        def script(run: Run) -> None:
            a = run.conn("admin")
            c = run.conn("c")
            submit(c, SUBMIT_JOB, b"f", b"", b"x", [created(1)])
            for line in [
                b"status  \n",
                b"getpid x y\n",
                b"version x\n",
                b"verbose x y z\n",
                b"workers x\n",
                b"show jobs x\n",
                b"show unique jobs x\n",
                b"show unique\n",
                b"show  jobs\n",
                b"create function g \r\n",
                b"create  function  h\r\n",
                b"create function i j k\r\n",
                b"drop function g x\r\n",
                b"drop function nosuch \r\n",
                b"maxqueue f 1 2 3 \r\n",
                b"maxqueue f  5\r\n",
                b"cancel job T:1 \r\n",
                b"cancel  job  T:1\r\n",
                b"cancel job T:1\r\n",
                b"status\r\r\n",
                b"STATUS\r\n",
                b"ShOw JoBs\r\n",
                b"\r\n",
                b"  \n",
            ]:
                a.admin(line)
            c.sync()
            a.admin(b"status\n")

        self.both(script)

    def test_longLine(self) -> None:
        """
        About 8 KB without a newline closes the admin connection, no reply.
        """

        def script(run: Run) -> None:
            run.conn("a").send(b"x" * 9000).closed(expect=True)
            run.conn("b").send(b"status " + b"y" * 8000 + b"\n").closed()

        self.both(script)

    def test_getStatusCancelledAndOtherFunction(self) -> None:
        """
        A cancelled queued job is still known to GET_STATUS; GET_STATUS_UNIQUE
        finds a unique in any function.
        """

        def script(run: Run) -> None:
            a, c = run.conn("admin"), run.conn("c")
            submit(c, SUBMIT_JOB_BG, b"g", b"u", b"x", [created(1)])
            submit(c, SUBMIT_JOB, b"f", b"v", b"x", [created(2)])
            a.admin(b"cancel job T:2\n", expect=OK)
            c.sync(expect=[(WORK_FAIL, b"T:2")])
            c.pkt(GET_STATUS, b"T:2")
            c.pkt(GET_STATUS_UNIQUE, b"u")
            c.sync(expect=[statusRes(b"T:2", 1, 0, 0, 0), (STATUS_RES_UNIQUE, b"u\x001\x000\x000\x000\x000")])
            # Ours gives up a cancelled job's unique at once (docs/differences.rst,
            # "Cancelled and abandoned jobs give up their unique key").
            c.pkt(GET_STATUS_UNIQUE, b"v")
            c.unchecked("v")
            a.admin(b"show jobs\n")
            a.admin(b"show unique jobs\n")

        ours, theirs = self.both(script)
        self.assertEqual(theirs.unchecked["v"], [(STATUS_RES_UNIQUE, b"v\x001\x000\x000\x000\x001")])
        self.assertEqual(ours.unchecked["v"], [(STATUS_RES_UNIQUE, b"v\x000\x000\x000\x000\x000")])
        self.assertEqual(
            ours.transcript["admin"][-1], ("admin", b"show unique jobs\n", b"u\nv\n.\n")
        )

    def test_emptyReducerAndBackgroundReduce(self) -> None:
        """
        A reduce job with an empty reducer, and a background reduce job, as
        seen by GRAB_JOB_ALL.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            w = worker(run, "w", b"f")
            c.pkt(SUBMIT_REDUCE_JOB, b"f", b"u1", b"", b"", b"d1")
            c.sync(expect=[created(1)])
            c.pkt(SUBMIT_REDUCE_JOB_BACKGROUND, b"f", b"u2", b"r", b"a", b"d2")
            c.sync(expect=[created(2)])
            w.pkt(GRAB_JOB_ALL)
            w.sync()
            w.pkt(GRAB_JOB_ALL)
            w.sync(expect=[(JOB_ASSIGN_ALL, b"T:2\0f\0u2\0r\0d2")])
            c.admin(b"show jobs\n")

        self.both(script)

    def test_canDoTimeoutJunkAndExceptionToBackground(self) -> None:
        """
        CAN_DO_TIMEOUT with a junk number registers without a timeout;
        WORK_EXCEPTION for a background job goes nowhere and ends it.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            w = run.conn("w")
            w.pkt(CAN_DO_TIMEOUT, b"f", b"junk")
            w.sync(expect=[])
            w.admin(b"workers\n")
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"x", [created(1)])
            w.pkt(GRAB_JOB)
            w.sync(expect=[(JOB_ASSIGN, b"T:1\0f\0x")])
            w.pkt(WORK_STATUS, b"T:1", b"1", b"3")
            w.sync(expect=[])
            c.pkt(GET_STATUS, b"T:1")
            c.sync(expect=[statusRes(b"T:1", 1, 1, 1, 3)])
            w.pkt(WORK_EXCEPTION, b"T:1", b"e")
            w.sync(expect=[])
            c.sync(expect=[])
            c.admin(b"status\n", expect=b"f\t0\t0\t1\n.\n")

        self.both(script)

    def test_wakeupOneWithRequeue(self) -> None:
        """
        --worker-wakeup 1: a requeued job also NOOPs just one sleeper.
        """

        def script(run: Run) -> None:
            c = run.conn("c")
            holder = worker(run, "holder", b"f")
            submit(c, SUBMIT_JOB_BG, b"f", b"", b"x", [created(1)])
            holder.pkt(GRAB_JOB)
            holder.sync()
            ws = [worker(run, name, b"f") for name in ("a", "b")]
            for w in ws:
                w.pkt(PRE_SLEEP)
                w.sync(expect=[])
            holder.close()
            woken = [w.name for w in ws if w.sync()]
            self.assertEqual(len(woken), 1, woken)

        self.both(script, "--worker-wakeup", "1")

    def test_clientIdAndBinaryPayloads(self) -> None:
        """
        A client id with a NUL shows up to the NUL; NULs in data and results
        are forwarded byte for byte.
        """

        def script(run: Run) -> None:
            w = run.conn("w")
            w.pkt(SET_CLIENT_ID, b"id with\0tail")
            w.pkt(CAN_DO, b"f")
            w.sync(expect=[])
            w.admin(b"workers\n", expect=b"FD 127.0.0.1 id with : f\n.\n")
            c = run.conn("c")
            submit(c, SUBMIT_JOB, b"f", b"u\0x", b"\0d\0", None)
            w.pkt(GRAB_JOB_UNIQ)
            w.sync()
            w.pkt(WORK_COMPLETE, b"T:1", b"\0r\0")
            w.sync()
            c.sync()
            c.admin(b"status\n")

        self.both(script)
