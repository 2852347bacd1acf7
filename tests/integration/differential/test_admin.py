# -*- test-case-name: tests.integration.differential.test_admin -*-
"""
Differential tests of the reference's section 4: the text admin protocol,
and the order of its lists.
"""

from __future__ import annotations

from tests.integration.differential.harness import (
    CAN_DO,
    CANT_DO,
    CLOSED,
    ECHO_REQ,
    ECHO_RES,
    GET_STATUS,
    GET_STATUS_UNIQUE,
    GRAB_JOB,
    GRAB_JOB_UNIQ,
    JOB_ASSIGN,
    JOB_ASSIGN_UNIQ,
    NO_JOB_,
    OK,
    RES,
    SET_CLIENT_ID,
    STILL_USED,
    SUBMIT_JOB,
    SUBMIT_JOB_BG,
    SUBMIT_JOB_HIGH,
    SUBMIT_JOB_LOW_BG,
    WORK_COMPLETE,
    WORK_DATA,
    WORK_FAIL,
    DifferentialTestCase,
    Script,
    created,
    incomplete,
    pkt,
    status,
    statusUnique,
    unknown,
)


class AdminTests(DifferentialTestCase):
    """
    Reference section 4: the text admin protocol.
    """

    def test_emptyServer(self) -> None:
        """
        Every list command on an empty server (4.2).
        """
        s = Script()
        s.adminBoth("a", b"status", b".\n")
        s.adminBoth("a", b"prioritystatus", b".\n")
        s.adminBoth("a", b"show jobs", b".\n")
        s.adminBoth("a", b"show unique jobs", b".\n")
        s.adminBoth("a", b"workers", b"FD 127.0.0.1 - :\n.\n")
        s.adminBoth("a", b"version", b"OK <version>\n")
        s.adminBoth("a", b"getpid", b"OK <pid>\n")
        s.adminBoth("a", b"verbose", b"OK ERROR\n")
        self.compare(s)

    def test_lists(self) -> None:
        """
        C{status}, C{prioritystatus}, C{workers}, C{show jobs} and
        C{show unique jobs} with jobs and workers (4.2).
        """
        s = Script()
        s.do("x", SET_CLIENT_ID, b"client one")
        s.do("x", CAN_DO, b"f")
        s.do("x", CAN_DO, b"g")
        s.do("x", SUBMIT_JOB_HIGH, b"f", b"", b"a", expect=created(b"T:1"))
        s.do("x", SUBMIT_JOB_LOW_BG, b"g", b"u1", b"b", expect=created(b"T:2"))
        s.do("x", GRAB_JOB_UNIQ, expect=(JOB_ASSIGN_UNIQ, b"T:2\0g\0u1\0b"))
        s.adminBoth("x", b"status", b"f\t1\t0\t1\ng\t1\t1\t1\n.\n")
        s.adminBoth("x", b"prioritystatus", b"f\t1\t0\t0\t1\ng\t0\t0\t0\t1\n.\n")
        s.adminBoth("x", b"workers", b"FD 127.0.0.1 client one : g f\n.\n")
        s.adminBoth("x", b"show jobs", b"T:1\t0\t0\t0\nT:2\t0\t0\t1\n.\n")
        s.adminBoth("x", b"show unique jobs", b"\nu1\n.\n")
        self.compare(s)

    def test_caseAndExtraWords(self) -> None:
        """
        Commands are case-insensitive, runs of spaces collapse, and extra
        words after argument-less commands are ignored (4.1).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_BG, b"f", b"u", b"x", expect=created(b"T:1"))
        s.adminBoth("a", b"STATUS", b"f\t1\t0\t0\n.\n")
        s.adminBoth("a", b"Status foo bar", b"f\t1\t0\t0\n.\n")
        s.adminBoth("a", b"status    x", b"f\t1\t0\t0\n.\n")
        s.adminBoth("a", b"status ", b"f\t1\t0\t0\n.\n")
        s.adminBoth("a", b"PriorityStatus", b"f\t0\t1\t0\t0\n.\n")
        s.adminBoth("a", b"SHOW JOBS", b"T:1\t0\t0\t1\n.\n")
        s.adminBoth("a", b"show   unique   JOBS", b"u\n.\n")
        s.adminBoth("a", b"VERSION now", b"OK <version>\n")
        s.adminBoth("a", b"Verbose", b"OK ERROR\n")
        s.adminBoth("a", b"GETPID x y z", b"OK <pid>\n")
        s.adminBoth("a", b"workers a b c d", b"FD 127.0.0.1 - :\nFD 127.0.0.1 - :\n.\n")
        self.compare(s)

    def test_caseAndWords(self) -> None:
        """
        Commands are case-insensitive, extra words after commands without
        arguments are ignored, runs of spaces collapse; more than five
        words, or 9000 bytes without a newline, close the connection
        without a reply (4.1).
        """
        s = Script()
        s.admin("admin", b"create function f\r\n", expect=OK)
        s.admin("admin", b"STATUS\n", expect=b"f\t0\t0\t0\n.\n")
        s.admin("admin", b"Status foo bar\n", expect=b"f\t0\t0\t0\n.\n")
        s.admin("admin", b"PrioRityStatus  x\n", expect=b"f\t0\t0\t0\t0\n.\n")
        s.admin("admin", b"SHOW JOBS\n", expect=b".\n")
        s.admin("admin", b"Show Unique Jobs\n", expect=b".\n")
        s.admin("admin", b"status a b c d\n", expect=b"f\t0\t0\t0\n.\n")
        s.admin("admin", b"status a b c d e\n", expect=CLOSED)
        s.send("b", b"x" * 9000)
        self.compare(s)

    def test_errorLines(self) -> None:
        """
        The error lines of unknown commands, empty lines, leading spaces,
        C{show} and C{shutdown} (4.1, 4.2).
        """
        s = Script()
        s.adminBoth("a", b"bogus", unknown(b"bogus"))
        s.adminBoth("a", b"BoGuS x", unknown(b"BoGuS"))
        s.adminBoth("a", b"", unknown(b""))
        s.adminBoth("a", b" status", unknown(b""))
        s.adminBoth("a", b"show", unknown(b"show"))
        s.adminBoth("a", b"SHOW", unknown(b"SHOW"))
        s.adminBoth("a", b"show x", b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n")
        s.adminBoth("a", b"show unique", b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n")
        s.adminBoth("a", b"show unique x", b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n")
        s.adminBoth("a", b"show jobs x", None)
        s.adminBoth("a", b"show unique jobs x", None)
        s.adminBoth("a", b"shutdown", unknown(b"shutdown"))
        s.adminBoth("a", b"shutdown graceful", unknown(b"shutdown"))
        s.adminBoth("a", b"gladiator", unknown(b"gladiator"))
        s.adminBoth("a", b"\tstatus", unknown(b"\tstatus"))
        s.admin("a", b"\r\n", expect=unknown(b""))
        s.admin("a", b"status\r\r\n")
        s.do("a", ECHO_REQ, b"still open", expect=(ECHO_RES, b"still open"))
        self.compare(s)

    def test_simpleReplies(self) -> None:
        """
        C{getpid}, C{version}, C{verbose}; C{shutdown}, C{show}, unknown
        words, an empty line and a leading space are unknown commands; bare
        C{maxqueue} has too few words; nothing else is sent (4.1, 4.2).
        """
        s = Script()
        s.admin("admin", b"getpid\n")
        s.admin("admin", b"version\r\n")
        s.admin("admin", b"verbose\n")
        s.admin("admin", b"shutdown\r\n", expect=unknown(b"shutdown"))
        s.admin("admin", b"shutdown graceful\n", expect=unknown(b"shutdown"))
        s.admin("admin", b"show\n", expect=unknown(b"show"))
        s.admin("admin", b"show x\n", expect=b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n")
        s.admin("admin", b"bogus\n", expect=unknown(b"bogus"))
        s.admin("admin", b"\n", expect=unknown(b""))
        s.admin("admin", b" status\n", expect=unknown(b""))
        s.admin("admin", b"maxqueue\n", expect=incomplete(b"maxqueue"))
        s.do("admin", ECHO_REQ, b"end", expect=(ECHO_RES, b"end"))
        self.compare(s)

    def test_versionOurs(self) -> None:
        """
        Our version is gearmand's with our own suffix (a deliberate
        difference): C{OK 1.1.20+gearman-tw-VERSION}.
        """
        s = Script()
        s.admin("admin", b"version\n", expect=b"OK <version>\n")
        self.ours(s)

    def test_wordLimit(self) -> None:
        """
        Five words are fine; more close the connection without a reply
        (4.1).
        """
        s = Script()
        s.admin("a", b"status a b c d\n", expect=b".\n")
        s.admin("b", b"status a b c d e\n", expect=CLOSED)
        s.admin("c", b"status  a  b  c  d  \n", expect=CLOSED)
        s.admin("d", b"bogus a b c d e\r\n", expect=CLOSED)
        s.admin("e", b"status a b c d \n")
        self.compare(s)

    def test_wordCounts(self) -> None:
        """
        Trailing and repeated spaces and extra words on every command, and
        the replies they give (4.1, 4.2).
        """
        s = Script()
        s.open("admin")
        s.do("c", SUBMIT_JOB, b"f", b"", b"x", expect=created(b"T:1"))
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
            s.admin("admin", line)
        s.admin("admin", b"status\n")
        self.compare(s)

    def test_lineLength(self) -> None:
        """
        About 8 KB without a newline closes the connection; a long line with
        one is answered (4.1).
        """
        s = Script()
        s.send("a", b"x" * 9000, expect=CLOSED)
        s.admin("b", b"y" * 4000 + b"\n", expect=unknown(b"y" * 4000))
        s.admin("c", b"status " + b"z" * 8000 + b"\n")
        self.compare(s)

    def test_longLine(self) -> None:
        """
        About 8 KB without a newline closes the admin connection with no
        reply; a long line with one is answered (4.1).
        """
        s = Script()
        s.send("a", b"x" * 9000, expect=CLOSED)
        s.admin("b", b"status " + b"y" * 8000 + b"\n")
        self.compare(s)

    def test_pipelinedAndMixed(self) -> None:
        """
        Pipelined lines are answered in order, between binary packets
        (4.1).
        """
        s = Script()
        s.admin("a", b"version\nbogus\r\nstatus\n\n", replies=4)
        s.send("a", b"verbose\n" + pkt(ECHO_REQ, b"e") + b"prioritystatus\r\n", barrier=False)
        s.raw("a", expect=b"OK ERROR\n" + pkt(ECHO_RES, b"e", magic=RES) + b".\n")
        self.compare(s)

    def test_cancelJob(self) -> None:
        """
        C{cancel job}: OK and WORK_FAIL to attached clients; the job stays
        queued and counted until reaped; case-sensitive handle; the error
        lines (4.2).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"", b"1", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"", b"2", expect=created(b"T:2"))
        s.admin("a", b"cancel job t:1\r\n", expect=b"ERR UNKNOWN_JOB\r\n", c=[])
        s.admin("a", b"cancel job T:9\n", expect=b"ERR UNKNOWN_JOB\r\n")
        s.admin("a", b"CANCEL JOB T:9\n", expect=b"ERR UNKNOWN_JOB\r\n")
        s.admin("a", b"cancel job\r\n", expect=unknown(b"cancel"))
        s.admin("a", b"cancel\r\n", expect=unknown(b"cancel"))
        s.admin("a", b"cancel job T:1 x\r\n", expect=b"ERR UNKNOWN_ERROR\r\n", c=[])
        s.admin("a", b"cancel x T:1\r\n", expect=b"ERR UNKNOWN_ERROR\r\n", c=[])
        s.admin("a", b"cancel x y\n", expect=b"ERR UNKNOWN_ERROR\r\n", c=[])
        s.admin("a", b"cancel job T:1 \n", expect=b"ERR UNKNOWN_ERROR\r\n", c=[])
        s.admin("a", b"CANCEL JOB T:1\r\n", expect=OK, c=(WORK_FAIL, b"T:1"))
        s.admin("a", b"status\n", expect=b"f\t2\t0\t0\n.\n")
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:2\0f\x002"))
        s.do("w", GRAB_JOB, expect=NO_JOB_)
        s.do("w", WORK_COMPLETE, b"T:2", b"r", c=(WORK_COMPLETE, b"T:2\0r"))
        s.admin("a", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s)

    def test_cancelRunning(self) -> None:
        """
        Cancelling a running job answers OK and sends WORK_FAIL; the job
        keeps running.  Its later results still reach the client from
        gearmand, but not from us: cancel detaches the clients (a
        deliberate difference, 4.2).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"", b"1", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.admin("a", b"cancel job T:1\n", expect=OK, c=(WORK_FAIL, b"T:1"))
        s.admin("a", b"status\n", expect=b"f\t1\t1\t1\n.\n")
        s.do("c", GET_STATUS, b"T:1", expect=status(b"T:1", 1, 1, 0, 0))
        s.admin("a", b"show jobs\n")
        s.do("w", WORK_DATA, b"T:1", b"d", expect=[])
        s.differs("c", gearmand=(WORK_DATA, b"T:1\0d"), ours=[])
        s.do("w", WORK_COMPLETE, b"T:1", b"r", expect=[])
        s.differs("c", gearmand=(WORK_COMPLETE, b"T:1\0r"), ours=[])
        s.admin("a", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.compare(s)

    def test_cancelRunningOurs(self) -> None:
        """
        A cancelled running job's later results reach nobody and are
        accepted silently (cancel detaches the clients, a deliberate
        difference: gearmand still forwards them, 4.2).
        """
        s = Script()
        s.do("w", CAN_DO, b"f")
        s.do("c", SUBMIT_JOB, b"f", b"", b"1", expect=created(b"T:1"))
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\x001"))
        s.admin("a", b"cancel job T:1\n", expect=OK, c=(WORK_FAIL, b"T:1"))
        s.do("w", WORK_DATA, b"T:1", b"d", expect=[], c=[])
        s.do("w", WORK_COMPLETE, b"T:1", b"r", expect=[], c=[])
        s.admin("a", b"status\n", expect=b"f\t0\t0\t1\n.\n")
        self.ours(s)

    def test_cancelledUniqueOurs(self) -> None:
        """
        A cancelled job gives up its unique at once, so a new submit with it
        makes a new job that runs (a deliberate difference: gearmand
        coalesces the new submit onto the dead job, which never runs, 4.2).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_BG, b"f", b"u", b"1", expect=created(b"T:1"))
        s.do("c", SUBMIT_JOB, b"f", b"v", b"2", expect=created(b"T:2"))
        s.admin("a", b"cancel job T:1\n", expect=OK, c=[])
        s.admin("a", b"cancel job T:2\n", expect=OK, c=(WORK_FAIL, b"T:2"))
        s.admin("a", b"show jobs\n", expect=b"T:1\t0\t1\t0\nT:2\t0\t1\t0\n.\n")
        s.do("c", GET_STATUS_UNIQUE, b"u", expect=statusUnique(b"u", 0, 0, 0, 0, 0))
        s.do("c", SUBMIT_JOB_BG, b"f", b"u", b"3", expect=created(b"T:3"))
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:3\0f\x003"))
        self.ours(s)

    def test_cancelTwiceOurs(self) -> None:
        """
        Cancelling a job again answers OK but sends no second WORK_FAIL:
        cancel detaches the clients (a deliberate difference, 4.2).
        """
        s = Script()
        s.do("c", SUBMIT_JOB, b"f", b"", b"1", expect=created(b"T:1"))
        s.admin("a", b"cancel job T:1\n", expect=OK, c=(WORK_FAIL, b"T:1"))
        s.admin("a", b"cancel job T:1\n", expect=OK, c=[])
        self.ours(s)

    def test_createFunction(self) -> None:
        """
        C{create function f} adds a 0/0/0 function; bad word counts get
        INVALID_ARGUMENTS (4.2).
        """
        s = Script()
        s.admin("a", b"create function f\r\n", expect=OK)
        s.admin("a", b"status\n", expect=b"f\t0\t0\t0\n.\n")
        s.admin("a", b"CREATE FUNCTION f\r\n", expect=OK)
        s.admin("a", b"status\n", expect=b"f\t0\t0\t0\n.\n")
        s.adminBoth("a", b"create function", incomplete(b"create"))
        s.adminBoth("a", b"create", incomplete(b"create"))
        s.adminBoth("a", b"create function g h", incomplete(b"create"))
        s.adminBoth("a", b"create foo bar", None)
        s.admin("a", b"create function g \r\n", expect=incomplete(b"create"))
        s.admin("a", b"status\n")
        self.compare(s)

    def test_createFunctionBareNewlineOurs(self) -> None:
        """
        C{create function} with a bare newline keeps the whole name (4.2:
        gearmand 1.1.20 drops its last character).
        """
        s = Script()
        s.admin("a", b"create function fn\n", expect=OK)
        s.admin("a", b"status\n", expect=b"fn\t0\t0\t0\n.\n")
        self.ours(s)

    def test_dropFunction(self) -> None:
        """
        C{drop function}: OK for an idle function (case-insensitive), ERR
        while a worker has it, ERR for unknown names, INVALID_ARGUMENTS for
        bad word counts (4.2).
        """
        s = Script()
        s.admin("a", b"create function f\r\n", expect=OK)
        s.do("w", CAN_DO, b"g")
        s.adminBoth("a", b"drop function g", STILL_USED)
        s.adminBoth("a", b"drop function nosuch", b"ERR function not found\r\n")
        s.adminBoth("a", b"drop function", incomplete(b"drop"))
        s.adminBoth("a", b"drop", incomplete(b"drop"))
        s.adminBoth("a", b"drop function f g", incomplete(b"drop"))
        s.adminBoth("a", b"drop foo f", None)
        s.admin("a", b"DROP FUNCTION F\r\n", expect=OK)
        s.admin("a", b"status\n", expect=b"g\t0\t0\t1\n.\n")
        s.do("w", CANT_DO, b"g")
        s.admin("a", b"drop function g\r\n", expect=OK)
        s.admin("a", b"status\n", expect=b".\n")
        s.do("w", CAN_DO, b"g")
        s.admin("a", b"status\n", expect=b"g\t0\t0\t1\n.\n")
        self.compare(s)

    def test_createAndDropFunction(self) -> None:
        """
        C{create function} and C{drop function} replies, the word-count
        errors, a function with a worker, which can be dropped once that
        worker has gone, and an unknown one (4.2).
        """
        s = Script()
        s.admin("admin", b"create function one\r\n", expect=OK)
        s.admin("admin", b"create function\r\n", expect=incomplete(b"create"))
        s.admin("admin", b"create function a b\r\n", expect=incomplete(b"create"))
        s.admin("admin", b"status\n", expect=b"one\t0\t0\t0\n.\n")
        s.admin("admin", b"drop function\r\n", expect=incomplete(b"drop"))
        s.admin("admin", b"drop function nosuch\r\n", expect=b"ERR function not found\r\n")
        s.do("w", CAN_DO, b"two", expect=[])
        s.admin("admin", b"drop function two\r\n", expect=STILL_USED)
        s.close("w")
        s.admin("admin", b"DROP FUNCTION two\r\n", expect=OK)
        s.admin("admin", b"drop function one\r\n", expect=OK)
        s.admin("admin", b"status\n", expect=b".\n")
        self.compare(s)

    def test_dropFunctionWithJobsOurs(self) -> None:
        """
        C{drop function} refuses a function with queued jobs (4.2: gearmand
        drops it and orphans them).
        """
        s = Script()
        s.do("c", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:1"))
        s.admin("a", b"drop function f\r\n", expect=STILL_USED)
        s.do("w", CAN_DO, b"f")
        s.do("w", GRAB_JOB, expect=(JOB_ASSIGN, b"T:1\0f\0x"))
        self.ours(s)

    def test_dropFunctionWithQueuedJobsOurs(self) -> None:
        """
        C{drop function} is refused while the function has a queued job,
        which stays (4.2: gearmand drops the function and orphans them).
        """
        s = Script()
        s.do("admin", SUBMIT_JOB_BG, b"f", b"", b"x", expect=created(b"T:1"))
        s.admin("admin", b"drop function f\r\n", expect=STILL_USED)
        s.admin("admin", b"status\n", expect=b"f\t1\t0\t0\n.\n")
        self.ours(s)


def _workers(*ids: bytes) -> bytes:
    """
    The C{workers} list of connections without functions, with client ids
    C{ids}, in that order.
    """
    return b"".join(b"FD 127.0.0.1 %s :\n" % (i,) for i in ids) + b".\n"


class ListingOrderTests(DifferentialTestCase):
    """
    The order of admin lists, which gearmand takes from its hash tables
    (bucket = Jenkins one-at-a-time hash mod 991, newest first in a bucket)
    and its connection list (newest first).
    """

    def test_statusOrder(self) -> None:
        """
        C{status} and C{prioritystatus} list functions in gearmand's hash
        order.
        """
        s = Script()
        names = [b"a", b"b", b"c", b"zz", b"f", b"e", b"d", b"reverse", b"alpha", b"f15", b"f27"]
        for name in names:
            s.do("w", CAN_DO, name)
        order = [b"c", b"zz", b"d", b"f27", b"f15", b"b", b"alpha", b"e", b"reverse", b"f", b"a"]
        s.admin("a", b"status\n", expect=b"".join(b"%s\t0\t0\t1\n" % (n,) for n in order) + b".\n")
        s.admin("a", b"prioritystatus\n", expect=b"".join(b"%s\t0\t0\t0\t1\n" % (n,) for n in order) + b".\n")
        self.compare(s)

    def test_showJobsOrder(self) -> None:
        """
        C{show jobs} lists jobs in the hash order of their handles and
        C{show unique jobs} in the hash order of their uniques.
        """
        s = Script()
        for number in range(12):
            s.do("c", SUBMIT_JOB_BG, b"f", b"u%d" % (number,), b"x")
        s.do("c", SUBMIT_JOB_BG, b"g", b"", b"x")
        s.do("c", SUBMIT_JOB_BG, b"a", b"zz", b"x")
        handles = [1, 12, 13, 3, 5, 6, 9, 8, 10, 2, 14, 11, 7, 4]
        s.admin("a", b"show jobs\n", expect=b"".join(b"T:%d\t0\t0\t1\n" % (n,) for n in handles) + b".\n")
        uniques = b"".join(b"%s\n" % (u,) for u in b" u11 zz u6 u1 u2 u8 u4 u10 u5 u7 u9 u0 u3".split(b" "))
        s.admin("a", b"show unique jobs\n", expect=uniques + b".\n")
        self.compare(s)

    def test_workersOrder(self) -> None:
        """
        C{workers} lists every connection newest first.
        """
        s = Script()
        s.do("one", SET_CLIENT_ID, b"one")
        s.do("two", SET_CLIENT_ID, b"two")
        s.do("three", SET_CLIENT_ID, b"three")
        s.admin("a", b"workers\n", expect=_workers(b"-", b"three", b"two", b"one"))
        s.close("two")
        s.do("four", SET_CLIENT_ID, b"four")
        s.admin("a", b"workers\n", expect=_workers(b"four", b"-", b"three", b"one"))
        self.compare(s)

    def test_listingOrder(self) -> None:
        """
        C{status}, C{prioritystatus}, C{workers}, C{show jobs} and C{show
        unique jobs} with several functions, jobs and workers list in the
        same order on both servers.
        """
        s = Script()
        s.open("admin")
        for name in (b"alpha", b"beta", b"gamma", b"delta", b"x", b"reverse"):
            s.do("c", SUBMIT_JOB_BG, name, name, b"d")
        for worker in ("w1", "w2", "w3"):
            s.do(worker, CAN_DO, b"beta", expect=[])
            s.do(worker, CAN_DO, b"x", expect=[])
        s.admin("admin", b"status\n")
        s.admin("admin", b"prioritystatus\n")
        s.admin("admin", b"workers\n")
        s.admin("admin", b"show jobs\n")
        s.admin("admin", b"show unique jobs\n")
        self.compare(s)
