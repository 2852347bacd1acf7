# -*- test-case-name: tests.integration.differential.test_framing -*-
"""
Differential tests of the reference's section 1: framing, bad input, size
limits and ERROR replies.
"""

from __future__ import annotations

from typing import Tuple

from tests.integration.differential.harness import (
    ALL_YOURS,
    CAN_DO,
    CAN_DO_TIMEOUT,
    CANT_DO,
    CLOSED,
    ECHO_REQ,
    ECHO_RES,
    ERROR,
    GET_STATUS,
    GET_STATUS_UNIQUE,
    GRAB_JOB,
    GRAB_JOB_ALL,
    GRAB_JOB_UNIQ,
    INVALID_COMMAND,
    JOB_ASSIGN,
    JOB_ASSIGN_ALL,
    JOB_ASSIGN_UNIQ,
    JOB_CREATED,
    NO_JOB,
    NO_JOB_,
    NOOP,
    NOOP_,
    NOT_FOUND_DATA,
    NOT_FOUND_EXCEPTION,
    NOT_FOUND_RESULT,
    OPTION_REQ,
    OPTION_RES,
    PRE_SLEEP,
    RES,
    RESET_ABILITIES,
    SET_CLIENT_ID,
    STATUS_RES,
    STATUS_RES_UNIQUE,
    SUBMIT_JOB,
    SUBMIT_JOB_BG,
    SUBMIT_JOB_EPOCH,
    SUBMIT_JOB_SCHED,
    SUBMIT_REDUCE_JOB,
    UNUSED,
    WORK_COMPLETE,
    WORK_DATA,
    WORK_EXCEPTION,
    WORK_FAIL,
    WORK_STATUS,
    WORK_WARNING,
    DifferentialTestCase,
    Script,
    created,
    describe,
    err,
    pkt,
    status,
    statusUnique,
    unknown,
    wellFormed,
)


class FramingTests(DifferentialTestCase):
    """
    Reference sections 1.1 and 1.3: framing and bad input.
    """

    def test_badMagic(self) -> None:
        """
        A magic other than C{\\0REQ}/C{\\0RES} closes the connection with
        nothing sent, and what came with it is not acted on (1.3).
        """
        s = Script()
        s.do("ok", CAN_DO, b"f")
        s.send("x", pkt(ECHO_REQ, b"hi", magic=b"\0REX"), expect=CLOSED)
        s.send("w", pkt(CAN_DO, b"g", magic=b"\0REX"), expect=CLOSED)
        s.send("y", pkt(CAN_DO, b"f", magic=b"\0\0\0\0"), expect=CLOSED)
        s.send("z", pkt(SUBMIT_JOB, b"f", b"", b"x", magic=b"\0req"), expect=CLOSED)
        s.admin("ok", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s)

    def test_responseMagic(self) -> None:
        """
        A request with C{\\0RES} magic gets ERROR INVALID_MAGIC and the
        connection stays open (1.3).
        """
        invalid = err(b"INVALID_MAGIC", b"Request magic expected")
        s = Script()
        s.send("c", pkt(ECHO_REQ, b"hi", magic=RES), expect=invalid)
        s.send("c", pkt(SUBMIT_JOB, b"f", b"", b"x", magic=RES), expect=invalid)
        s.send("c", pkt(CAN_DO, b"f", magic=RES), expect=invalid)
        s.send("c", pkt(GRAB_JOB, magic=RES), expect=invalid)
        s.do("c", SUBMIT_JOB, b"g", b"", b"x", expect=created(b"T:1"))
        s.admin("a", b"status\n", expect=b"g\t1\t0\t0\n.\n")
        self.compare(s)

    def test_hugeTypesOurs(self) -> None:
        """
        Types with the top bit set close the connection like any unknown
        type; gearmand 1.1.20 aborts the whole server on them (1.3).
        """
        s = Script()
        s.send("c", pkt(0x80000000, b"x"), expect=CLOSED)
        s.send("d", pkt(0xFFFFFFFF), expect=CLOSED)
        s.do("ok", ECHO_REQ, b"alive", expect=(ECHO_RES, b"alive"))
        self.ours(s)

    def test_trickle(self) -> None:
        """
        Packets may arrive one byte at a time (1.1).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        for byte in pkt(SUBMIT_JOB, b"f", b"u", b"da\0ta"):
            s.send("c", bytes([byte]), barrier=False)
        s.do("c", ECHO_REQ, b"after", expect=[created(b"T:1"), (ECHO_RES, b"after")])
        for byte in pkt(GRAB_JOB_UNIQ):
            s.send("w", bytes([byte]), barrier=False)
        s.wait(0.05, w=(JOB_ASSIGN_UNIQ, b"T:1\0f\0u\0da\0ta"))
        for byte in pkt(WORK_COMPLETE, b"T:1", b"r\0\0"):
            s.send("w", bytes([byte]), barrier=False)
        s.wait(0.05, c=(WORK_COMPLETE, b"T:1\0r\0\0"))
        self.compare(s)

    def test_pipelined(self) -> None:
        """
        Pipelined packets and admin lines on one connection are answered in
        order; binary and text mix freely (1.1, 4.1).
        """
        s = Script()
        s.send(
            "x",
            pkt(CAN_DO, b"f")
            + pkt(SUBMIT_JOB, b"f", b"", b"1")
            + pkt(SUBMIT_JOB_BG, b"f", b"", b"2")
            + pkt(GRAB_JOB)
            + pkt(ECHO_REQ, b"e"),
            expect=[
                created(b"T:1"),
                created(b"T:2"),
                (JOB_ASSIGN, b"T:1\0f\x001"),
                (ECHO_RES, b"e"),
            ],
        )
        # Not in the same batch as the GRAB: gearmand 1.1.20 would send the
        # assignment after freeing the job, with garbage for the workload.
        s.send(
            "x",
            pkt(WORK_COMPLETE, b"T:1", b"done") + pkt(GRAB_JOB_UNIQ) + pkt(GRAB_JOB),
            expect=[(WORK_COMPLETE, b"T:1\0done"), (JOB_ASSIGN_UNIQ, b"T:2\0f\0\x002"), NO_JOB_],
        )
        s.admin(
            "x",
            b"status\r\nversion\nprioritystatus\nbogus\r\n",
            replies=4,
            expect=[b"f\t1\t1\t1\n.\n", b"OK <version>\n", b"f\t0\t0\t0\t1\n.\n", unknown(b"bogus")],
        )
        s.send("x", pkt(ECHO_REQ, b"1") + b"status\n" + pkt(ECHO_REQ, b"2"), barrier=False)
        s.raw(
            "x",
            expect=pkt(ECHO_RES, b"1", magic=RES) + b"f\t1\t1\t1\n.\n" + pkt(ECHO_RES, b"2", magic=RES),
        )
        self.compare(s)

    def test_trickleAndPipeline(self) -> None:
        """
        A packet sent one byte at a time, 5 ms apart, and several packets
        plus an admin line in one write, are answered in order (1.1, 4.1).
        """
        s = Script()
        for byte in pkt(SUBMIT_JOB, b"f", b"u", b"x"):
            s.send("c", bytes([byte]), barrier=False, pause=0.005)
        s.do("c", ECHO_REQ, b"after", expect=[created(b"T:1"), (ECHO_RES, b"after")])
        s.send(
            "c",
            pkt(SUBMIT_JOB_BG, b"f", b"", b"y") + pkt(GET_STATUS, b"T:1") + b"status\n" + pkt(ECHO_REQ, b"e"),
            barrier=False,
        )
        s.raw(
            "c",
            seconds=0.5,
            expect=pkt(JOB_CREATED, b"T:2", magic=RES)
            + pkt(STATUS_RES, b"T:1", b"1", b"0", b"0", b"0", magic=RES)
            + b"f\t2\t0\t0\n.\n"
            + pkt(ECHO_RES, b"e", magic=RES),
        )
        self.compare(s)

    def test_grabIgnoresPayload(self) -> None:
        """
        Packets without arguments ignore any payload: GRAB_JOB with junk gets
        NO_JOB (1.1).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, b"junk", b"more", expect=NO_JOB_)
        s.do("w", GRAB_JOB_UNIQ, b"junk", expect=NO_JOB_)
        s.do("w", GRAB_JOB_ALL, b"\0\0", expect=NO_JOB_)
        s.do("w", PRE_SLEEP, b"zzz", expect=[])
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"), w=NOOP_)
        s.do("w", RESET_ABILITIES, b"junk")
        s.admin("a", b"status\n", expect=b"f\t1\t0\t0\n.\n")
        self.compare(s)

    def test_largeEcho(self) -> None:
        """
        ECHO has no size limit of its own and keeps NULs (1.2).
        """
        data = bytes(range(256)) * 4096
        s = Script()
        s.do("c", ECHO_REQ, data, expect=(ECHO_RES, data))
        s.do("c", ECHO_REQ, b"", expect=(ECHO_RES, b""))
        s.do("c", ECHO_REQ, b"\0", expect=(ECHO_RES, b"\0"))
        self.compare(s)


class UnknownTypeTests(DifferentialTestCase):
    """
    Type 0 and types 43 and above close the connection, with or without a
    payload, nothing sent; the server carries on (1.3).
    """

    def check(self, ptype: int) -> None:
        """
        Send a packet of C{ptype} with a payload on one connection and
        without on another: both are closed.
        """
        s = Script()
        s.send("c", pkt(ptype, b"x"), expect=CLOSED)
        s.send("empty", pkt(ptype), expect=CLOSED)
        s.do("ok", ECHO_REQ, b"alive", expect=(ECHO_RES, b"alive"))
        self.compare(s)

    def test_type0(self) -> None:
        """
        Type 0, below the first.
        """
        self.check(0)

    def test_type43(self) -> None:
        """
        Type 43, one past the last.
        """
        self.check(43)

    def test_type44(self) -> None:
        """
        Type 44.
        """
        self.check(44)

    def test_type100(self) -> None:
        """
        Type 100.
        """
        self.check(100)

    def test_typeMaxSigned(self) -> None:
        """
        Type 0x7FFFFFFF, the largest without the top bit (for the top bit,
        see L{FramingTests.test_hugeTypesOurs}).
        """
        self.check(0x7FFFFFFF)


class InvalidCommandTests(DifferentialTestCase):
    """
    Type 5, every server-to-peer type, ALL_YOURS and SUBMIT_JOB_SCHED get
    ERROR INVALID_COMMAND, the connection stays open, and nothing is
    created (1.3).
    """

    def check(self, *packets: bytes) -> None:
        """
        Each of C{packets} gets ERROR INVALID_COMMAND on one connection.
        """
        s = Script()
        for data in packets:
            s.send("c", data, expect=INVALID_COMMAND)
        s.do("c", ECHO_REQ, b"open", expect=(ECHO_RES, b"open"))
        s.admin("a", b"status\n", expect=b".\n")
        s.admin("a", b"show jobs\n", expect=b".\n")
        self.compare(s)

    def test_unused(self) -> None:
        """
        Type 5, which no peer sends.
        """
        self.check(wellFormed(UNUSED))

    def test_noop(self) -> None:
        """
        NOOP.
        """
        self.check(wellFormed(NOOP))

    def test_jobCreated(self) -> None:
        """
        JOB_CREATED, with an argument and with a handle.
        """
        self.check(wellFormed(JOB_CREATED), pkt(JOB_CREATED, b"T:1"))

    def test_noJob(self) -> None:
        """
        NO_JOB.
        """
        self.check(wellFormed(NO_JOB))

    def test_jobAssign(self) -> None:
        """
        JOB_ASSIGN.
        """
        self.check(wellFormed(JOB_ASSIGN))

    def test_echoRes(self) -> None:
        """
        ECHO_RES.
        """
        self.check(wellFormed(ECHO_RES))

    def test_error(self) -> None:
        """
        ERROR.
        """
        self.check(wellFormed(ERROR))

    def test_statusRes(self) -> None:
        """
        STATUS_RES.
        """
        self.check(wellFormed(STATUS_RES))

    def test_allYours(self) -> None:
        """
        ALL_YOURS.
        """
        self.check(wellFormed(ALL_YOURS))

    def test_optionRes(self) -> None:
        """
        OPTION_RES.
        """
        self.check(wellFormed(OPTION_RES))

    def test_jobAssignUniq(self) -> None:
        """
        JOB_ASSIGN_UNIQ.
        """
        self.check(wellFormed(JOB_ASSIGN_UNIQ))

    def test_submitJobSched(self) -> None:
        """
        SUBMIT_JOB_SCHED, with placeholder arguments and with a plausible
        schedule: no job is created.
        """
        self.check(
            wellFormed(SUBMIT_JOB_SCHED),
            pkt(SUBMIT_JOB_SCHED, b"f", b"u", b"1", b"2", b"3", b"4", b"5", b"d"),
        )

    def test_jobAssignAll(self) -> None:
        """
        JOB_ASSIGN_ALL.
        """
        self.check(wellFormed(JOB_ASSIGN_ALL))

    def test_statusResUnique(self) -> None:
        """
        STATUS_RES_UNIQUE.
        """
        self.check(wellFormed(STATUS_RES_UNIQUE))


class MalformedOursTests(DifferentialTestCase):
    """
    A packet with fewer NULs than its type needs makes gearmand read into
    the following packets (or wait for more); we send an ERROR and close
    instead (1.3).
    """

    def check(self, ptype: int, *args: bytes) -> None:
        """
        A packet of C{ptype} with only C{args}, followed by an ECHO_REQ,
        gets one ERROR (code and text) and the connection is closed; other
        connections carry on.
        """
        s = Script()
        s.send("c", pkt(ptype, *args) + pkt(ECHO_REQ, b"next"))
        s.do("ok", ECHO_REQ, b"alive", expect=(ECHO_RES, b"alive"))
        world = self.ours(s)
        received = world.steps[0]["c"]
        self.assertEqual(len(received), 2, [describe(item) for item in received])
        first, last = received
        self.assertEqual(last, CLOSED)
        if not (
            isinstance(first, tuple)
            and first[0] == ERROR
            and isinstance(first[1], bytes)
            and first[1].count(b"\0") == 1
        ):
            self.fail("expected an ERROR packet, got %s" % (describe(first),))

    def test_submitJobOneArgument(self) -> None:
        """
        SUBMIT_JOB with its function only.
        """
        self.check(SUBMIT_JOB, b"f")

    def test_submitJobTwoArguments(self) -> None:
        """
        SUBMIT_JOB with function and unique, no NUL before the data.
        """
        self.check(SUBMIT_JOB, b"f", b"u")

    def test_submitReduceJobThreeArguments(self) -> None:
        """
        SUBMIT_REDUCE_JOB with three NULs where it needs four.
        """
        self.check(SUBMIT_REDUCE_JOB, b"f", b"u", b"r", b"data")

    def test_workCompleteHandleOnly(self) -> None:
        """
        WORK_COMPLETE with a handle and no NUL.
        """
        self.check(WORK_COMPLETE, b"T:1")

    def test_workStatusOneNumber(self) -> None:
        """
        WORK_STATUS with a handle and one number.
        """
        self.check(WORK_STATUS, b"T:1", b"1")

    def test_submitJobEpochNoData(self) -> None:
        """
        SUBMIT_JOB_EPOCH without the NUL before its data.
        """
        self.check(SUBMIT_JOB_EPOCH, b"f", b"u", b"123")

    def test_canDoTimeoutNoNumber(self) -> None:
        """
        CAN_DO_TIMEOUT with its function only.
        """
        self.check(CAN_DO_TIMEOUT, b"f")


class LimitTests(DifferentialTestCase):
    """
    Reference section 1.2: size limits.
    """

    def test_argumentSize(self) -> None:
        """
        NUL-ended arguments must fit gearmand's 8192-byte buffer with the
        header: an 8000-byte function name is fine, 8200 closes; data has no
        such limit (1.2).
        """
        s = Script()
        s.do("a", SUBMIT_JOB, b"f" * 8000, b"", b"x", expect=created(b"T:1"))
        s.do("b", SUBMIT_JOB, b"g" * 8200, b"", b"x", expect=CLOSED)
        s.do("c", SUBMIT_JOB_BG, b"f" * 8000, b"u" * 10, b"d" * 100000, expect=created(b"T:2"))
        s.do("d", CAN_DO, b"f" * 8000, expect=[])
        s.do("e", CAN_DO, b"j" * 8200, expect=CLOSED)
        s.do("d", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0" + b"f" * 8000 + b"\0x"))
        s.do(
            "d",
            GRAB_JOB_UNIQ,
            expect=(JOB_ASSIGN_UNIQ, b"\0".join([b"T:2", b"f" * 8000, b"u" * 10, b"d" * 100000])),
        )
        s.do("d", WORK_DATA, b"T:1", b"x" * 100000, a=(WORK_DATA, b"T:1\0" + b"x" * 100000))
        s.do("f", WORK_DATA, b"T:9", b"x" * 100000, expect=NOT_FOUND_DATA)
        self.compare(s)

    def test_longArguments(self) -> None:
        """
        A background job with an 8000-byte function name is created; 8200
        bytes close the connection; SET_CLIENT_ID is cut to 127 bytes (1.2).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_BG, b"f" * 8000, b"", b"x", expect=created(b"T:1"))
        s.do("c", SET_CLIENT_ID, b"i" * 200, expect=[])
        s.admin("c", b"workers\n", expect=b"FD 127.0.0.1 " + b"i" * 127 + b" :\n.\n")
        s.do("d", SUBMIT_JOB_BG, b"g" * 8200, b"", b"x", expect=CLOSED)
        self.compare(s)

    def test_emptyFunction(self) -> None:
        """
        An empty function name is accepted and listed (1.2).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"", b"", b"x", expect=created(b"T:1"))
        s.do("w", CAN_DO, b"")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0\0x"))
        s.admin("a", b"status\n", expect=b"\t1\t1\t1\n.\n")
        self.compare(s)

    def test_uniqueSize(self) -> None:
        """
        A unique over 64 bytes gets ERROR ARGUMENT_TOO_LARGE; 63 bytes
        coalesce; 64 bytes are accepted (1.2).
        """
        s = Script()
        tooLarge = err(b"ARGUMENT_TOO_LARGE", b"Unique value too large")
        s.do("c", SUBMIT_JOB, b"f", b"u" * 65, b"x", expect=tooLarge)
        s.do("c", SUBMIT_JOB_BG, b"f", b"u" * 1000, b"x", expect=tooLarge)
        s.do("c", SUBMIT_JOB, b"f", b"v" * 63, b"x", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"v" * 63, b"y", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"w" * 64, b"x", expect=created(b"T:2"))
        s.do("c", SUBMIT_REDUCE_JOB, b"f", b"r" * 64, b"red", b"agg", b"x", expect=created(b"T:3"))
        s.admin("a", b"status\n", expect=b"f\t3\t0\t0\n.\n")
        self.compare(s)

    def test_uniqueSize64Ours(self) -> None:
        """
        A 64-byte unique is kept whole and coalesces (a deliberate
        difference: gearmand truncates it to 63 and never coalesces, 1.2).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_BG, b"f", b"w" * 64, b"x", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB_BG, b"f", b"w" * 64, b"x", expect=created(b"T:1"))
        # So a 64-byte unique can be asked about (gearmand closes at 64).
        s.do("c", GET_STATUS_UNIQUE, b"w" * 64, expect=statusUnique(b"w" * 64, 1, 0, 0, 0, 0))
        s.admin("a", b"show unique jobs\n", expect=b"w" * 64 + b"\n.\n")
        self.ours(s)

    def test_handleSize(self) -> None:
        """
        GET_STATUS and GET_STATUS_UNIQUE with 64+ bytes get no reply;
        WORK_FAIL with a 64-byte handle gets ERROR ARGUMENT_TOO_LARGE (1.2).
        """
        tooLarge = err(
            b"ARGUMENT_TOO_LARGE",
            b"Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf",
        )
        s = Script()
        s.do("c", GET_STATUS, b"h" * 63, expect=status(b"h" * 63, 0, 0, 0, 0))
        s.do("c", GET_STATUS_UNIQUE, b"u" * 63, expect=statusUnique(b"u" * 63, 0, 0, 0, 0, 0))
        # The reference says "no reply"; gearmand also closes the connection.
        s.do("c1", GET_STATUS, b"h" * 64, expect=CLOSED)
        s.do("c2", GET_STATUS, b"h" * 1000, expect=CLOSED)
        # 64 bytes close gearmand too, but we answer them (64-byte uniques
        # are kept whole, see test_uniqueSize64Ours); 65 close both.
        s.do("c3", GET_STATUS_UNIQUE, b"u" * 65, expect=CLOSED)
        s.do("w", WORK_FAIL, b"h" * 63, expect=NOT_FOUND_RESULT)
        s.do("w", WORK_FAIL, b"h" * 64, expect=tooLarge)
        s.do("w", WORK_FAIL, b"h" * 1000, expect=tooLarge)
        s.do("w", WORK_COMPLETE, b"h" * 64, b"x", expect=NOT_FOUND_RESULT)
        s.do("w", WORK_DATA, b"h" * 64, b"x", expect=NOT_FOUND_DATA)
        s.do("w", WORK_STATUS, b"h" * 64, b"1", b"2", expect=NOT_FOUND_RESULT)
        s.do("w", WORK_EXCEPTION, b"h" * 64, b"x", expect=NOT_FOUND_EXCEPTION)
        self.compare(s)

    def test_longHandles(self) -> None:
        """
        GET_STATUS with a 63-byte handle is answered; with 64 bytes it gets
        no reply (and a GET_STATUS_UNIQUE after it none either); WORK_FAIL
        with a 64-byte handle gets ARGUMENT_TOO_LARGE (1.2).
        """
        s = Script()
        s.do("c", GET_STATUS, b"h" * 63, expect=status(b"h" * 63, 0, 0, 0, 0))
        s.do("c", GET_STATUS, b"h" * 64)
        s.do("c", GET_STATUS_UNIQUE, b"h" * 64)
        s.do(
            "d",
            WORK_FAIL,
            b"h" * 64,
            expect=err(
                b"ARGUMENT_TOO_LARGE",
                b"Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf",
            ),
        )
        self.compare(s)

    def test_optionName(self) -> None:
        """
        OPTION_REQ accepts C{exceptions} in any case and echoes the name as
        sent; anything else is UNKNOWN_OPTION (1.2, 2).
        """
        unknownOption = err(b"UNKNOWN_OPTION", b"Server does not recognize given option")
        s = Script()
        s.do("c", OPTION_REQ, b"exceptions", expect=(OPTION_RES, b"exceptions"))
        s.do("c", OPTION_REQ, b"ExCePtIoNs", expect=(OPTION_RES, b"ExCePtIoNs"))
        s.do("c", OPTION_REQ, b"exception", expect=unknownOption)
        s.do("c", OPTION_REQ, b"exceptionsx", expect=unknownOption)
        s.do("c", OPTION_REQ, b"", expect=unknownOption)
        s.do("c", OPTION_REQ, b"x" * 64, expect=unknownOption)
        s.do("c", OPTION_REQ, b"exceptions" + b" " * 60, expect=unknownOption)
        # gearmand compares the name as a C string: what follows a NUL is
        # ignored, and the reply echoes the whole payload.
        s.do("c", OPTION_REQ, b"exceptions\0junk", expect=(OPTION_RES, b"exceptions\0junk"))
        self.compare(s)

    def test_clientId(self) -> None:
        """
        SET_CLIENT_ID is stored up to 127 bytes, shown by C{workers} up to
        the first NUL, spaces allowed, no reply (1.2, 2).
        """
        s = Script()
        s.do("c", SET_CLIENT_ID, b"x" * 200, expect=[])
        s.admin("c", b"workers\n", expect=b"FD 127.0.0.1 " + b"x" * 127 + b" :\n.\n")
        s.do("c", SET_CLIENT_ID, b"my id\0hidden", expect=[])
        s.do("c", CAN_DO, b"f")
        s.admin("c", b"workers\n", expect=b"FD 127.0.0.1 my id : f\n.\n")
        s.do("c", SET_CLIENT_ID, b"")
        s.admin("c", b"workers\n")
        self.compare(s)

    def test_canDoTimeoutNumber(self) -> None:
        """
        A CAN_DO_TIMEOUT number longer than 20 characters, or one that
        C{strtoll} reads as its LLONG_MAX/LLONG_MIN (overflow included),
        drops the connection; anything else registers (1.2, 3.9).
        """
        s = Script()
        s.do("a", CAN_DO_TIMEOUT, b"f", b"1" * 20, expect=CLOSED)
        s.do("b", CAN_DO_TIMEOUT, b"f", b"1" * 21, expect=CLOSED)
        s.do("c", CAN_DO_TIMEOUT, b"f", b"0" * 23 + b"1", expect=CLOSED)
        s.do("d", CAN_DO_TIMEOUT, b"f", b"9223372036854775807", expect=CLOSED)
        s.do("e", CAN_DO_TIMEOUT, b"f", b"-9223372036854775808", expect=CLOSED)
        s.do("g", CAN_DO_TIMEOUT, b"f", b"9223372036854775806", expect=[])
        s.do("h", CAN_DO_TIMEOUT, b"f", b"0" * 19 + b"1", expect=[])
        s.do("i", CAN_DO_TIMEOUT, b"f", b"junk", expect=[])
        s.do("j", CAN_DO_TIMEOUT, b"f", b"", expect=[])
        s.do("k", CAN_DO_TIMEOUT, b"f", b"-5", expect=[])
        s.admin("adm", b"status\n", expect=b"f\t0\t0\t5\n.\n")
        self.compare(s)


class ErrorTests(DifferentialTestCase):
    """
    Reference sections 1.4 and 3.1: ERROR replies, which never close.
    """

    def notHeld(self, ptype: int, *args: bytes, expect: Tuple[int, bytes]) -> None:
        """
        A packet of C{ptype} with C{args} after the handle, for a job this
        connection does not hold (none such, an empty handle, junk), gets
        C{expect} each time and the connection stays open.
        """
        s = Script()
        for handle in (b"T:1", b"", b"nope"):
            s.do("w", ptype, handle, *args, expect=expect)
        s.do("w", ECHO_REQ, b"still open", expect=(ECHO_RES, b"still open"))
        self.compare(s)

    def test_notHeldData(self) -> None:
        """
        WORK_DATA for a job not held: JOB_NOT_FOUND, "does not exist" (1.4).
        """
        self.notHeld(WORK_DATA, b"d", expect=NOT_FOUND_DATA)

    def test_notHeldWarning(self) -> None:
        """
        WORK_WARNING for a job not held: JOB_NOT_FOUND, "does not exist"
        (1.4).
        """
        self.notHeld(WORK_WARNING, b"d", expect=NOT_FOUND_DATA)

    def test_notHeldStatus(self) -> None:
        """
        WORK_STATUS for a job not held: JOB_NOT_FOUND, "work result" (1.4).
        """
        self.notHeld(WORK_STATUS, b"1", b"2", expect=NOT_FOUND_RESULT)

    def test_notHeldComplete(self) -> None:
        """
        WORK_COMPLETE for a job not held: JOB_NOT_FOUND, "work result"
        (1.4).
        """
        self.notHeld(WORK_COMPLETE, b"d", expect=NOT_FOUND_RESULT)

    def test_notHeldFail(self) -> None:
        """
        WORK_FAIL for a job not held: JOB_NOT_FOUND, "work result" (1.4).
        """
        self.notHeld(WORK_FAIL, expect=NOT_FOUND_RESULT)

    def test_notHeldException(self) -> None:
        """
        WORK_EXCEPTION for a job not held: JOB_NOT_FOUND, "an exception"
        (1.4).
        """
        self.notHeld(WORK_EXCEPTION, b"d", expect=NOT_FOUND_EXCEPTION)

    def test_ownership(self) -> None:
        """
        Only the connection holding a job may send WORK_* for it: another
        worker, the client, and the previous holder after a requeue all get
        JOB_NOT_FOUND (3.1).
        """
        s = Script()
        s.do("w1", CAN_DO, b"f")
        s.do("w2", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("w1", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w2", WORK_STATUS, b"T:1", b"1", b"2", expect=NOT_FOUND_RESULT)
        s.do("w2", WORK_DATA, b"T:1", b"d", expect=NOT_FOUND_DATA)
        s.do("w2", WORK_COMPLETE, b"T:1", b"d", expect=NOT_FOUND_RESULT)
        s.do("c", WORK_COMPLETE, b"T:1", b"d", expect=NOT_FOUND_RESULT)
        s.do("c", WORK_EXCEPTION, b"T:1", b"d", expect=NOT_FOUND_EXCEPTION)
        s.do("w1", CANT_DO, b"f", expect=[])
        s.do("w1", WORK_COMPLETE, b"T:1", b"d", expect=NOT_FOUND_RESULT)
        s.do("w1", WORK_FAIL, b"T:1", expect=NOT_FOUND_RESULT)
        s.do("w2", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("w2", WORK_COMPLETE, b"T:1", b"done", expect=[], c=(WORK_COMPLETE, b"T:1\0done"))
        s.do("w2", WORK_COMPLETE, b"T:1", b"again", expect=NOT_FOUND_RESULT, c=[])
        self.compare(s)

    def test_jobNotFound(self) -> None:
        """
        Every WORK_* for a job another worker holds gets its JOB_NOT_FOUND
        text, the client hears nothing, and the holder still finishes the
        job (1.4).
        """
        s = Script()
        s.do("w", CAN_DO, b"f", expect=[])
        s.do("other", CAN_DO, b"f", expect=[])
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        s.do("other", WORK_DATA, b"T:1", b"d", expect=NOT_FOUND_DATA, c=[])
        s.do("other", WORK_WARNING, b"T:1", b"d", expect=NOT_FOUND_DATA, c=[])
        s.do("other", WORK_STATUS, b"T:1", b"1", b"2", expect=NOT_FOUND_RESULT, c=[])
        s.do("other", WORK_COMPLETE, b"T:1", b"d", expect=NOT_FOUND_RESULT, c=[])
        s.do("other", WORK_FAIL, b"T:1", expect=NOT_FOUND_RESULT, c=[])
        s.do("other", WORK_EXCEPTION, b"T:1", b"d", expect=NOT_FOUND_EXCEPTION, c=[])
        s.do("other", WORK_COMPLETE, b"T:99", b"d", expect=NOT_FOUND_RESULT, c=[])
        s.do("w", WORK_COMPLETE, b"T:1", b"ok", expect=[], c=(WORK_COMPLETE, b"T:1\0ok"))
        self.compare(s)

    def test_options(self) -> None:
        """
        OPTION_REQ: an unknown name gets UNKNOWN_OPTION, C{exceptions} in
        any case is echoed as sent, a 64-byte name is unknown (1.4, 2).
        """
        unknownOption = err(b"UNKNOWN_OPTION", b"Server does not recognize given option")
        s = Script()
        s.do("c", OPTION_REQ, b"foo", expect=unknownOption)
        s.do("c", OPTION_REQ, b"ExCePtIoNs", expect=(OPTION_RES, b"ExCePtIoNs"))
        s.do("c", OPTION_REQ, b"x" * 64, expect=unknownOption)
        self.compare(s)

    def test_uniqueTooLarge(self) -> None:
        """
        A 65-byte unique gets ERROR ARGUMENT_TOO_LARGE and makes no job,
        foreground or background; 64 bytes are accepted (1.2, 1.4).
        """
        tooLarge = err(b"ARGUMENT_TOO_LARGE", b"Unique value too large")
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"u" * 65, b"x", expect=tooLarge)
        s.do("c", SUBMIT_JOB_BG, b"f", b"v" * 65, b"x", expect=tooLarge)
        s.do("c", SUBMIT_JOB, b"f", b"u" * 64, b"x", expect=created(b"T:1"))
        s.admin("c", b"status\n", expect=b"f\t1\t0\t0\n.\n")
        self.compare(s)

    def test_uniqueSixtyFourKeptOurs(self) -> None:
        """
        Two clients submitting with the same 64-byte unique share one job,
        listed and found by that unique with both clients counted (a
        deliberate difference: gearmand truncates it to 63, 1.2).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"u" * 64, b"x", expect=created(b"T:1"))
        s.do("d", SUBMIT_JOB, b"f", b"u" * 64, b"x", expect=created(b"T:1"))
        s.admin("c", b"show unique jobs\n", expect=b"u" * 64 + b"\n.\n")
        s.do("d", GET_STATUS_UNIQUE, b"u" * 64, expect=statusUnique(b"u" * 64, 1, 0, 0, 0, 2))
        self.ours(s)
