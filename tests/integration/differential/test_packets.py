# -*- test-case-name: tests.integration.differential.test_packets -*-
"""
Differential tests of the reference's section 2: each request packet type,
what it answers and what it forwards.
"""

from __future__ import annotations

from tests.integration.differential.harness import (
    CAN_DO,
    CANT_DO,
    ECHO_REQ,
    ECHO_RES,
    GET_STATUS,
    GET_STATUS_UNIQUE,
    GRAB_JOB,
    GRAB_JOB_ALL,
    GRAB_JOB_UNIQ,
    JOB_ASSIGN,
    JOB_ASSIGN_ALL,
    JOB_ASSIGN_UNIQ,
    NO_JOB_,
    NOT_FOUND_RESULT,
    OPTION_REQ,
    OPTION_RES,
    RESET_ABILITIES,
    SET_CLIENT_ID,
    SUBMIT_JOB,
    SUBMIT_JOB_BG,
    SUBMIT_JOB_EPOCH,
    SUBMIT_JOB_HIGH,
    SUBMIT_JOB_HIGH_BG,
    SUBMIT_JOB_LOW,
    SUBMIT_JOB_LOW_BG,
    SUBMIT_REDUCE_JOB,
    SUBMIT_REDUCE_JOB_BACKGROUND,
    WORK_COMPLETE,
    WORK_DATA,
    WORK_EXCEPTION,
    WORK_FAIL,
    WORK_STATUS,
    WORK_WARNING,
    DifferentialTestCase,
    Script,
    created,
    pkt,
    status,
    statusUnique,
)


def _submitPlain(s: Script) -> None:
    """
    Client C{c} submits one job to C{f} with each of the six plain submit
    types, foreground then background at NORMAL, HIGH and LOW: jobs T:1 to
    T:6 with data C{n}, C{nb}, C{h}, C{hb}, C{l} and C{lb}.
    """
    s.do("c", SUBMIT_JOB, b"f", b"", b"n", expect=created(b"T:1"))
    s.do("c", SUBMIT_JOB_BG, b"f", b"", b"nb", expect=created(b"T:2"))
    s.do("c", SUBMIT_JOB_HIGH, b"f", b"", b"h", expect=created(b"T:3"))
    s.do("c", SUBMIT_JOB_HIGH_BG, b"f", b"", b"hb", expect=created(b"T:4"))
    s.do("c", SUBMIT_JOB_LOW, b"f", b"", b"l", expect=created(b"T:5"))
    s.do("c", SUBMIT_JOB_LOW_BG, b"f", b"", b"lb", expect=created(b"T:6"))


class PacketTests(DifferentialTestCase):
    """
    Reference section 2: each request packet type.
    """

    def test_canDoDuplicates(self) -> None:
        """
        CAN_DO is not deduplicated: twice gives C{f f} in C{workers} and
        2 workers in C{status} (2).
        """
        s = Script()
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("w", CAN_DO, b"g", expect=[])
        s.admin("w", b"workers\n", expect=b"FD 127.0.0.1 - : g f f\n.\n")
        s.admin("w", b"status\n", expect=b"f\t0\t0\t2\ng\t0\t0\t1\n.\n")
        s.do("w", CANT_DO, b"f", expect=[])
        s.admin("w", b"workers\n", expect=b"FD 127.0.0.1 - : g\n.\n")
        s.admin("w", b"status\n", expect=b"f\t0\t0\t0\ng\t0\t0\t1\n.\n")
        s.do("w", CANT_DO, b"nothing", expect=[])
        s.do("w", CAN_DO, b"f")
        s.do("w", RESET_ABILITIES, expect=[])
        s.admin("w", b"workers\n", expect=b"FD 127.0.0.1 - :\n.\n")
        s.admin("w", b"status\n", expect=b"f\t0\t0\t0\ng\t0\t0\t0\n.\n")
        self.compare(s)

    def test_canDoDuplicatesAndEmptyName(self) -> None:
        """
        CAN_DO twice is listed and counted twice next to an empty function
        name, whose job the worker then gets (1.2, 2).
        """
        s = Script()
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("w", CAN_DO, b"", expect=[])
        s.admin("w", b"status\n")
        s.admin("w", b"workers\n")
        s.do("c", SUBMIT_JOB_BG, b"", b"", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0\0x"))
        self.compare(s)

    def test_cantDoRequeues(self) -> None:
        """
        CANT_DO requeues the jobs of that function the worker holds (a
        retry), at the tail; jobs of its other functions stay held (2, 3.4).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("w", CAN_DO, b"g")
        s.do("c", SUBMIT_JOB, b"f", b"", b"1", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"g", b"", b"2", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"3", expect=created(b"T:3"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0g\x002"))
        s.do("w", CANT_DO, b"g")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("w", CANT_DO, b"f", expect=[])
        s.admin("a", b"status\n", expect=b"f\t2\t0\t0\ng\t1\t0\t0\n.\n")
        s.do("w2", CAN_DO, b"f")
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:3\0f\x003"))
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("w2", WORK_COMPLETE, b"T:3", b"r", c=(WORK_COMPLETE, b"T:3\0r"))
        s.admin("a", b"show jobs\n", expect=b"T:1\t1\t0\t0\nT:2\t1\t0\t0\n.\n")
        s.do("w", WORK_COMPLETE, b"T:1", b"", expect=NOT_FOUND_RESULT)
        s.do("w2", WORK_COMPLETE, b"T:1", b"r", expect=[], c=(WORK_COMPLETE, b"T:1\0r"))
        self.compare(s)

    def test_resetAbilitiesRequeues(self) -> None:
        """
        RESET_ABILITIES drops every function and requeues every held job,
        newest grabbed first (2, 3.4).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("w", CAN_DO, b"g")
        for number, name in enumerate((b"f", b"g", b"f", b"f"), 1):
            s.do("c", SUBMIT_JOB_BG, name, b"", b"%d" % (number,), expect=created(b"T:%d" % (number,)))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0g\x002"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:3\0f\x003"))
        s.do("w", RESET_ABILITIES, expect=[])
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        s.do("w2", CAN_DO, b"f")
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:4\0f\x004"))
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:3\0f\x003"))
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("w2", GRAB_JOB, expect=NO_JOB_)
        s.admin("a", b"status\n", expect=b"f\t3\t3\t1\ng\t1\t0\t0\n.\n")
        self.compare(s)

    def test_submitPriorities(self) -> None:
        """
        The six plain submit packets: handles from 1, foreground and
        background, HIGH before NORMAL before LOW (2, 3.2, 3.4).
        """
        s = Script()
        _submitPlain(s)
        s.admin("a", b"prioritystatus\n", expect=b"f\t2\t2\t2\t0\n.\n")
        s.admin("a", b"status\n", expect=b"f\t6\t0\t0\n.\n")
        s.do("w", CAN_DO, b"f")
        order = [(b"T:3", b"h"), (b"T:4", b"hb"), (b"T:1", b"n"), (b"T:2", b"nb"), (b"T:5", b"l"), (b"T:6", b"lb")]
        for handle, data in order:
            s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, handle + b"\0f\0" + data))
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        s.admin("a", b"prioritystatus\n", expect=b"f\t0\t0\t0\t1\n.\n")
        s.admin("a", b"status\n", expect=b"f\t6\t6\t1\n.\n")
        for handle in (b"T:1", b"T:2", b"T:3", b"T:4", b"T:5", b"T:6"):
            s.do("w", WORK_COMPLETE, handle, b"ok")
        s.admin("a", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s)

    def test_assignFormats(self) -> None:
        """
        JOB_ASSIGN, JOB_ASSIGN_UNIQ (empty unique too) and GRAB_JOB_ALL
        without a reducer giving JOB_ASSIGN_UNIQ; data keeps NULs (2).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"u1", b"a\0b\0", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB, b"f", b"u3", b"x", expect=created(b"T:3"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"\0", expect=created(b"T:4"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0a\0b\0"))
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:2\0f\0\0"))
        s.do("w", GRAB_JOB_ALL, expect=(JOB_ASSIGN_UNIQ, b"T:3\0f\0u3\0x"))
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:4\0f\0\0\0"))
        s.do("w", GRAB_JOB_ALL, expect=NO_JOB_)
        s.do("w", GRAB_JOB_UNIQ, expect=NO_JOB_)
        s.do("n", GRAB_JOB, expect=NO_JOB_)
        s.do("n", GRAB_JOB_ALL, expect=NO_JOB_)
        self.compare(s)

    def test_workStatus(self) -> None:
        """
        WORK_STATUS is forwarded raw, in order with WORK_DATA and
        WORK_WARNING, and stored as C{atoi} of each number; GET_STATUS
        reports it, and zeros for an unknown handle (2, 3.11).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 0, 0, 0))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 1, 0, 0))
        s.send(
            "w",
            pkt(WORK_STATUS, b"T:1", b"50%", b"100x")
            + pkt(WORK_DATA, b"T:1", b"d\0d")
            + pkt(WORK_WARNING, b"T:1", b"warn"),
            expect=[],
            c=[
                (WORK_STATUS, b"T:1\x0050%\x00100x"),
                (WORK_DATA, b"T:1\0d\0d"),
                (WORK_WARNING, b"T:1\0warn"),
            ],
        )
        s.send(
            "c",
            pkt(GET_STATUS, b"T:1") + pkt(GET_STATUS, b"T:nope"),
            expect=[status(b"T:1", 1, 1, 50, 100), status(b"T:nope", 0, 0, 0, 0)],
        )
        s.do("w", WORK_STATUS, b"T:1", b" 7", b"8\0x", c=(WORK_STATUS, b"T:1\0 7\x008\0x"))
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 1, 7, 8))
        s.do("w", WORK_STATUS, b"T:1", b"junk", b"", c=(WORK_STATUS, b"T:1\0junk\0"))
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 1, 0, 0))
        s.do("w", WORK_STATUS, b"T:1", b"-1", b"4294967297", c=(WORK_STATUS, b"T:1\x00-1\x004294967297"))
        s.do("c", GET_STATUS, b"T:1")
        s.do("c", GET_STATUS_UNIQUE, b"")
        s.do("w", WORK_COMPLETE, b"T:1", b"", expect=[], c=(WORK_COMPLETE, b"T:1\0"))
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 0, 0, 0, 0))
        self.compare(s)

    def test_workDataWarning(self) -> None:
        """
        WORK_DATA and WORK_WARNING are forwarded byte for byte, NULs and
        empty data included, and do not end the job (2).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_DATA, b"T:1", b"d\0\0d", expect=[], c=(WORK_DATA, b"T:1\0d\0\0d"))
        s.do("w", WORK_WARNING, b"T:1", b"", expect=[], c=(WORK_WARNING, b"T:1\0"))
        s.do("w", WORK_DATA, b"T:1", b"", c=(WORK_DATA, b"T:1\0"))
        s.do("w", WORK_WARNING, b"T:1", b"w\0", c=(WORK_WARNING, b"T:1\0w\0"))
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 1, 0, 0))
        s.do("w", WORK_COMPLETE, b"T:1", b"r\0", c=(WORK_COMPLETE, b"T:1\0r\0"))
        self.compare(s)

    def test_workFail(self) -> None:
        """
        WORK_FAIL is forwarded as the bare handle and ends the job; the
        function record stays (2, 3.1).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_FAIL, b"T:1", expect=[], c=(WORK_FAIL, b"T:1"))
        s.do("w", WORK_FAIL, b"T:1", expect=NOT_FOUND_RESULT, c=[])
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 0, 0, 0, 0, 0))
        s.do("w", RESET_ABILITIES)
        s.admin("a", b"status\n", expect=b"f\t0\t0\t0\n.\n")
        s.admin("a", b"show jobs\n", expect=b".\n")
        s.do("c", SUBMIT_JOB, b"f", b"u", b"y", expect=created(b"T:2"))
        self.compare(s)

    def test_optionExceptions(self) -> None:
        """
        A client with the C{exceptions} option gets WORK_EXCEPTION as sent,
        and the job ends (2, 3.6).  (gearmand answers a WORK_FAIL right after
        with JOB_NOT_FOUND; we accept it: see test_exceptionToFailOurs.)
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", OPTION_REQ, b"exceptions", expect=(OPTION_RES, b"exceptions"))
        s.do("c", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("c2", OPTION_REQ, b"EXCEPTIONS", expect=(OPTION_RES, b"EXCEPTIONS"))
        s.do("c2", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do(
            "w",
            WORK_EXCEPTION,
            b"T:1",
            b"boom\0!",
            expect=[],
            c=(WORK_EXCEPTION, b"T:1\0boom\0!"),
            c2=(WORK_EXCEPTION, b"T:1\0boom\0!"),
        )
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 0, 0, 0, 0))
        s.admin("a", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s)

    def test_serverExceptionsOption(self) -> None:
        """
        C{--exceptions} turns the option on for every connection (3.6).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_EXCEPTION, b"T:1", b"", expect=[], c=(WORK_EXCEPTION, b"T:1\0"))
        s.do("c", OPTION_REQ, b"exceptions", expect=(OPTION_RES, b"exceptions"))
        self.compare(s, "--exceptions")

    def test_exceptionToFailOurs(self) -> None:
        """
        Clients without C{exceptions} get WORK_FAIL with the bare handle for
        a WORK_EXCEPTION (gearmand adds a stray NUL, 3.6).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("e", OPTION_REQ, b"exceptions", expect=(OPTION_RES, b"exceptions"))
        s.do("e", SUBMIT_JOB, b"f", b"u", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do(
            "w",
            WORK_EXCEPTION,
            b"T:1",
            b"boom",
            expect=[],
            c=(WORK_FAIL, b"T:1"),
            e=(WORK_EXCEPTION, b"T:1\0boom"),
        )
        # The WORK_FAIL Perl's worker sends after WORK_EXCEPTION is accepted
        # quietly (gearmand's JOB_NOT_FOUND makes that worker die); another
        # one is not found.
        s.do("w", WORK_FAIL, b"T:1", expect=[])
        s.do("w", WORK_FAIL, b"T:1", expect=NOT_FOUND_RESULT)
        self.ours(s)

    def test_exceptionToFailType(self) -> None:
        """
        Without C{exceptions} a WORK_EXCEPTION reaches the client as a
        WORK_FAIL packet; the payload differs by gearmand's stray NUL, so
        each server's is checked on its own (3.6).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w", WORK_EXCEPTION, b"T:1", b"boom", expect=[])
        s.differs("c", gearmand=(WORK_FAIL, b"T:1\0"), ours=(WORK_FAIL, b"T:1"))
        self.compare(s)

    def test_reduceJobs(self) -> None:
        """
        SUBMIT_REDUCE_JOB takes four arguments; only GRAB_JOB_ALL shows the
        reducer (JOB_ASSIGN_ALL); the aggregator is dropped (2, 3.13).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_REDUCE_JOB, b"f", b"u1", b"red", b"agg", b"d1", expect=created(b"T:1"))
        s.do("c", SUBMIT_REDUCE_JOB_BACKGROUND, b"f", b"u2", b"red2", b"", b"d2", expect=created(b"T:2"))
        # An empty reducer is no reducer: GRAB_JOB_ALL gives JOB_ASSIGN_UNIQ.
        s.do("c", SUBMIT_REDUCE_JOB, b"f", b"", b"", b"", b"d3", expect=created(b"T:3"))
        s.do("c", SUBMIT_REDUCE_JOB, b"f", b"u4", b"r4", b"a4", b"d4", expect=created(b"T:4"))
        s.do("c", SUBMIT_REDUCE_JOB, b"f", b"u1", b"other", b"agg", b"zz", expect=created(b"T:1"))
        s.do("w", GRAB_JOB_ALL, expect=(JOB_ASSIGN_ALL, b"T:1\0f\0u1\0red\0d1"))
        s.do("w", GRAB_JOB_ALL, expect=(JOB_ASSIGN_ALL, b"T:2\0f\0u2\0red2\0d2"))
        s.do("w", GRAB_JOB_ALL, expect=(JOB_ASSIGN_UNIQ, b"T:3\0f\0\0d3"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:4\0f\0d4"))
        s.do("w", WORK_COMPLETE, b"T:1", b"r", c=[(WORK_COMPLETE, b"T:1\0r")] * 2)
        s.do("w", WORK_COMPLETE, b"T:2", b"r", c=[])
        s.do("c2", SUBMIT_REDUCE_JOB, b"f", b"u5", b"r5", b"a5", b"d5", expect=created(b"T:5"))
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:5\0f\0u5\0d5"))
        self.compare(s)

    def test_emptyReducerAndBackgroundReduce(self) -> None:
        """
        A reduce job with an empty reducer and aggregator, and a background
        reduce job, as GRAB_JOB_ALL hands them out (2, 3.13).
        """
        s = Script()
        s.open("c")
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("c", SUBMIT_REDUCE_JOB, b"f", b"u1", b"", b"", b"d1", expect=created(b"T:1"))
        s.do("c", SUBMIT_REDUCE_JOB_BACKGROUND, b"f", b"u2", b"r", b"a", b"d2", expect=created(b"T:2"))
        s.do("w", GRAB_JOB_ALL)
        s.do("w", GRAB_JOB_ALL, expect=(JOB_ASSIGN_ALL, b"T:2\0f\0u2\0r\0d2"))
        s.admin("c", b"show jobs\n")
        self.compare(s)

    def test_clientAndWorker(self) -> None:
        """
        One connection may be client and worker at once and hold several
        jobs (3.1).
        """
        s = Script()
        s.do("x", CAN_DO, b"f")
        s.do("x", SUBMIT_JOB, b"f", b"", b"1", expect=created(b"T:1"))
        s.do("x", SUBMIT_JOB, b"f", b"", b"2", expect=created(b"T:2"))
        s.do("x", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("x", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\x002"))
        s.admin("a", b"status\n", expect=b"f\t2\t2\t1\n.\n")
        s.do("x", WORK_COMPLETE, b"T:2", b"two", expect=(WORK_COMPLETE, b"T:2\0two"))
        s.do("x", WORK_DATA, b"T:1", b"one", expect=(WORK_DATA, b"T:1\0one"))
        s.do("x", WORK_COMPLETE, b"T:1", b"one", expect=(WORK_COMPLETE, b"T:1\0one"))
        s.admin("a", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s)

    def test_clientAndWorkerOneConnection(self) -> None:
        """
        A connection that is client and worker grabs its own two jobs and
        gets both results, in the order it sent them (3.1).
        """
        s = Script()
        s.do("c", CAN_DO, b"f", expect=[])
        s.do("c", SUBMIT_JOB, b"f", b"", b"1", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"2", expect=created(b"T:2"))
        s.do("c", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.do("c", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\x002"))
        s.send(
            "c",
            pkt(WORK_COMPLETE, b"T:2", b"r2") + pkt(WORK_COMPLETE, b"T:1", b"r1"),
            expect=[(WORK_COMPLETE, b"T:2\0r2"), (WORK_COMPLETE, b"T:1\0r1")],
        )
        self.compare(s)

    def test_clientIdAndBinaryPayloads(self) -> None:
        """
        A client id with a NUL shows up to the NUL; NULs in the unique, data
        and result are forwarded byte for byte (1.2, 2).
        """
        s = Script()
        s.send("w", pkt(SET_CLIENT_ID, b"id with\0tail") + pkt(CAN_DO, b"f"), expect=[])
        s.admin("w", b"workers\n", expect=b"FD 127.0.0.1 id with : f\n.\n")
        s.do("c", SUBMIT_JOB, b"f", b"u\0x", b"\0d\0")
        s.do("w", GRAB_JOB_UNIQ)
        s.do("w", WORK_COMPLETE, b"T:1", b"\0r\0")
        s.admin("c", b"status\n")
        self.compare(s)


class SubmitAssignTests(DifferentialTestCase):
    """
    Every submit type and every assign type, seen together (2, 3.13).
    """

    def test_everySubmitType(self) -> None:
        """
        Each of the nine submit types creates a job with the next handle, at
        the priority its name says (EPOCH and REDUCE are NORMAL); the queue
        counts show where each went, and GRAB follows them (2, 3.4).
        """
        s = Script()
        _submitPlain(s)
        s.do("c", SUBMIT_JOB_EPOCH, b"f", b"", b"1", b"e", expect=created(b"T:7"))
        s.do("c", SUBMIT_REDUCE_JOB, b"f", b"", b"red", b"agg", b"r", expect=created(b"T:8"))
        s.do("c", SUBMIT_REDUCE_JOB_BACKGROUND, b"f", b"", b"red", b"agg", b"rb", expect=created(b"T:9"))
        s.admin("c", b"status\n", expect=b"f\t9\t0\t0\n.\n")
        s.admin("c", b"prioritystatus\n", expect=b"f\t2\t5\t2\t0\n.\n")
        s.admin("c", b"show jobs\n")
        s.do("w", CAN_DO, b"f", expect=[])
        order = [(3, b"h"), (4, b"hb"), (1, b"n"), (2, b"nb"), (7, b"e"), (8, b"r"), (9, b"rb"), (5, b"l"), (6, b"lb")]
        for number, data in order:
            s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:%d\0f\0%s" % (number, data)))
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        s.admin("c", b"status\n", expect=b"f\t9\t9\t1\n.\n")
        self.compare(s)

    def test_assignTypes(self) -> None:
        """
        GRAB_JOB (junk payload ignored), GRAB_JOB_UNIQ and GRAB_JOB_ALL on
        plain and reduce jobs: only GRAB_JOB_ALL shows a reducer; all three
        get NO_JOB when the queue is empty (2, 3.13).
        """
        s = Script()
        s.open("c")
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("c", SUBMIT_JOB, b"f", b"u1", b"d1", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"u2", b"d2", expect=created(b"T:2"))
        s.do("c", SUBMIT_JOB, b"f", b"u3", b"d3", expect=created(b"T:3"))
        s.do("c", SUBMIT_REDUCE_JOB, b"f", b"u4", b"red", b"agg", b"d4", expect=created(b"T:4"))
        s.do("c", SUBMIT_REDUCE_JOB, b"f", b"u5", b"red", b"agg", b"d5", expect=created(b"T:5"))
        s.do("c", SUBMIT_REDUCE_JOB, b"f", b"u6", b"red", b"agg", b"d6", expect=created(b"T:6"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"d7", expect=created(b"T:7"))
        s.do("w", GRAB_JOB, b"junk", expect=(JOB_ASSIGN, b"T:1\0f\0d1"))
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:2\0f\0u2\0d2"))
        s.do("w", GRAB_JOB_ALL, expect=(JOB_ASSIGN_UNIQ, b"T:3\0f\0u3\0d3"))
        s.do("w", GRAB_JOB_ALL, expect=(JOB_ASSIGN_ALL, b"T:4\0f\0u4\0red\0d4"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:5\0f\0d5"))
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:6\0f\0u6\0d6"))
        s.do("w", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:7\0f\0\0d7"))
        for grab in (GRAB_JOB, GRAB_JOB_UNIQ, GRAB_JOB_ALL):
            s.do("w", grab, expect=NO_JOB_)
        self.compare(s)

    def test_echoAndClientId(self) -> None:
        """
        ECHO_REQ echoes, NULs included; SET_CLIENT_ID shows in C{workers},
        with no reply (2).
        """
        s = Script()
        s.do("c", ECHO_REQ, b"a\0b", expect=(ECHO_RES, b"a\0b"))
        s.send("c", pkt(SET_CLIENT_ID, b"my id") + pkt(CAN_DO, b"f") + pkt(CAN_DO, b"g"), expect=[])
        s.admin("c", b"workers\n", expect=b"FD 127.0.0.1 my id : g f\n.\n")
        self.compare(s)
