"""
Tests for L{gearman_tw.server.admin}: gearmand 1.1.20's admin replies, byte
for byte (reference section 4).
"""

import os
from typing import List, Optional

from twisted.internet.base import DelayedCall
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.protocol import RES, PacketType, parseAll
from gearman_tw.server.admin import LISTING_SLICE, AdminCommands, Listing, Reply, gearmandHash, hashOrder
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.model import ASSIGN, ASSIGN_UNIQ, HIGH, LOW, NORMAL, Peer
from gearman_tw.server.packets import PacketPeer
from gearman_tw.verbosity import LOG_LEVELS

OK = b"OK\r\n"
MAXQUEUE_OK = b"OK\n"
BUSY = b"ERR there are still connected workers or executing clients\r\n"
NOT_FOUND = b"ERR function not found\r\n"


def unknown(word: bytes) -> bytes:
    return b"ERR UNKNOWN_COMMAND Unknown+server+command%s\r\n" % (word,)


def incomplete(word: bytes) -> bytes:
    return b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+%s\r\n" % (word,)


class AdminTestCase(SynchronousTestCase):
    """
    A job server with handle prefix C{H}, its admin commands, and the admin
    connection C{self.me} (fd 9, 127.0.0.1).
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.server = JobServer(self.clock, handlePrefix=b"H")
        self.admin = AdminCommands(self.server, version="1.1.20", pid=4242)
        self.me = self.peer(9, "127.0.0.1")

    def peer(self, fd: int, host: str, out: Optional[List[bytes]] = None) -> Peer:
        peer = PacketPeer((out if out is not None else []).append, fd, host)
        self.server.peerConnected(peer)
        return peer

    def command(self, line: bytes, peer: Optional[Peer] = None) -> Optional[Reply]:
        return self.admin.execute(peer or self.me, line)

    def text(self, line: bytes, peer: Optional[Peer] = None) -> bytes:
        """
        The reply to C{line}, which must be bytes in one piece.
        """
        reply = self.command(line, peer)
        assert isinstance(reply, bytes), (line, reply)
        return reply

    def listing(self, line: bytes, peer: Optional[Peer] = None) -> Listing:
        """
        The reply to C{line}, which must be a L{Listing} made a slice at a
        time.
        """
        reply = self.command(line, peer)
        assert isinstance(reply, Listing), (line, reply)
        return reply

    def populate(self) -> Peer:
        """
        A worker (fd 10) for C{a} and C{b}, running H:1 (a, HIGH, background,
        unique u1); H:2 queued (a, LOW, background, no unique); H:3 queued
        (c, NORMAL, foreground from C{self.me}, unique u3).
        """
        worker = self.peer(10, "127.0.0.2")
        worker.clientId = b"my id\0hidden"
        self.server.canDo(worker, b"a")
        self.server.canDo(worker, b"b")
        self.server.submit(self.me, b"a", b"u1", b"x", HIGH, True)
        self.server.submit(self.me, b"a", b"", b"y", LOW, True)
        self.server.grab(worker, ASSIGN_UNIQ)
        self.server.submit(self.me, b"c", b"u3", b"z", NORMAL, False)
        return worker


class StatusTests(AdminTestCase):
    """
    C{status} and C{prioritystatus}.
    """

    def test_empty(self) -> None:
        """
        With no function the lists are just their end.
        """
        self.assertEqual(self.command(b"status"), b".\n")
        self.assertEqual(self.command(b"prioritystatus"), b".\n")

    def test_status(self) -> None:
        """
        status: name, queued + running, running, workers; every function in
        gearmand's hash order; extra words and case ignored.
        """
        worker = self.populate()
        # gearmand's hash order: c (bucket 86), b (207), a (937).
        self.assertEqual(self.command(b"status"), b"c\t1\t0\t0\nb\t0\t0\t1\na\t2\t1\t1\n.\n")
        self.server.grab(worker, ASSIGN_UNIQ)
        self.assertEqual(self.command(b"STATUS extra"), b"c\t1\t0\t0\nb\t0\t0\t1\na\t2\t2\t1\n.\n")
        self.assertEqual(self.command(b"Status a b c d"), b"c\t1\t0\t0\nb\t0\t0\t1\na\t2\t2\t1\n.\n")

    def test_priorityStatus(self) -> None:
        """
        prioritystatus: queued jobs (not running ones) per priority, then
        workers.
        """
        self.populate()
        self.assertEqual(self.command(b"prioritystatus"), b"c\t0\t1\t0\t0\nb\t0\t0\t0\t1\na\t0\t0\t1\t1\n.\n")
        self.assertEqual(self.command(b"PRIORITYSTATUS x"), b"c\t0\t1\t0\t0\nb\t0\t0\t0\t1\na\t0\t0\t1\t1\n.\n")

    def test_countsDuplicatesCancelledFuture(self) -> None:
        """
        Workers registered twice count twice; cancelled jobs not yet reaped
        and future epoch jobs count (the latter as NORMAL).
        """
        worker = self.peer(10, "127.0.0.1")
        self.server.canDo(worker, b"f")
        self.server.canDo(worker, b"f")
        self.server.submit(self.me, b"f", b"", b"x", HIGH, True)
        self.server.submit(self.me, b"f", b"", b"x", NORMAL, True, 100)
        self.server.cancel(b"H:1")
        self.assertEqual(self.command(b"status"), b"f\t2\t0\t2\n.\n")
        self.assertEqual(self.command(b"prioritystatus"), b"f\t1\t1\t0\t2\n.\n")

    def test_idleFunctionsListed(self) -> None:
        """
        Functions without workers or jobs are listed with zeros; names
        print up to their first NUL; the empty name is a function too.
        """
        self.server.function(b"f\0hidden")
        self.server.function(b"")
        self.assertEqual(self.command(b"status"), b"\t0\t0\t0\nf\t0\t0\t0\n.\n")


class WorkersTests(AdminTestCase):
    """
    C{workers}.
    """

    def test_workers(self) -> None:
        """
        Every connection, newest first, including the one asking and
        clients: fd, address, client id up to its first NUL (C{-} by
        default), C{:}, then functions newest first.
        """
        self.populate()
        self.server.canDo(self.me, b"x\0hidden")
        self.assertEqual(self.command(b"workers"), b"10 127.0.0.2 my id : b a\n9 127.0.0.1 - : x\n.\n")

    def test_alone(self) -> None:
        """
        The asking connection alone, without functions.
        """
        self.assertEqual(self.command(b"workers"), b"9 127.0.0.1 - :\n.\n")
        self.assertEqual(self.command(b"WORKERS a b c d"), b"9 127.0.0.1 - :\n.\n")

    def test_duplicatesAndOrder(self) -> None:
        """
        Duplicate registrations are listed; re-registering puts a function
        first; CANT_DO removes every entry; lost connections leave.
        """
        worker = self.peer(12, "::1")
        gone = self.peer(13, "unix")
        for name in (b"a", b"b", b"a"):
            self.server.canDo(worker, name)
        worker.clientId = b"has spaces"
        self.assertEqual(
            self.command(b"workers"), b"13 unix - :\n12 ::1 has spaces : a b a\n9 127.0.0.1 - :\n.\n"
        )
        self.server.cantDo(worker, b"a")
        self.server.peerLost(gone)
        self.assertEqual(self.command(b"workers"), b"12 ::1 has spaces : b\n9 127.0.0.1 - :\n.\n")


class ShowTests(AdminTestCase):
    """
    C{show jobs} and C{show unique jobs}.
    """

    def test_showJobs(self) -> None:
        """
        show jobs lists every job (queued, running, cancelled) with retries,
        ignored and persisted (1 for background jobs), in the hash order of
        the handles; show unique jobs lists uniques, empty ones as empty
        lines.
        """
        self.populate()
        self.server.cancel(b"H:2")
        # Hash order of handles (H:1 206, H:3 232, H:2 905) and of uniques
        # ("" 1, u1 125, u3 798); a cancelled background job is no longer
        # persisted, as in gearmand.
        self.assertEqual(self.command(b"show jobs"), b"H:1\t0\t0\t1\nH:3\t0\t0\t0\nH:2\t0\t1\t0\n.\n")
        self.assertEqual(self.command(b"SHOW UNIQUE JOBS"), b"\nu1\nu3\n.\n")
        self.assertEqual(self.command(b"Show Jobs"), b"H:1\t0\t0\t1\nH:3\t0\t0\t0\nH:2\t0\t1\t0\n.\n")

    def test_recordsMadeJobsKeepTheirPlace(self) -> None:
        """
        Queued plain background jobs (kept as records) are listed as
        background jobs, in creation order within a hash bucket even after
        lookups made some of them Jobs.
        """
        client = self.peer(11, "127.0.0.1")
        for index in range(800):
            self.server.submit(client, b"f", b"u%d" % index if index % 5 == 0 else b"", b"x", NORMAL, True)
        before = self.text(b"show jobs"), self.text(b"show unique jobs")
        self.assertEqual(before[0].count(b"\t0\t0\t1\n"), 800)
        for number in range(800, 0, -7):
            self.server.lookup(b"H:%d" % (number,))
        self.assertEqual((self.command(b"show jobs"), self.command(b"show unique jobs")), before)

    def test_retriesAndIgnored(self) -> None:
        """
        Retries count requeues; an abandoned foreground job is ignored.
        """
        worker = self.peer(10, "127.0.0.1")
        client = self.peer(11, "127.0.0.1")
        self.server.canDo(worker, b"f")
        self.server.submit(client, b"f", b"", b"x", NORMAL, False)
        self.server.grab(worker, ASSIGN)
        self.server.resetAbilities(worker)
        self.server.canDo(worker, b"f")
        self.server.grab(worker, ASSIGN)
        self.server.peerLost(worker)
        self.assertEqual(self.command(b"show jobs"), b"H:1\t2\t0\t0\n.\n")
        self.server.peerLost(client)
        self.assertEqual(self.command(b"show jobs"), b"H:1\t2\t1\t0\n.\n")

    def test_empty(self) -> None:
        """
        With no jobs the lists are just their end.
        """
        self.assertEqual(self.command(b"show jobs"), b".\n")
        self.assertEqual(self.command(b"show unique jobs"), b".\n")

    def test_errors(self) -> None:
        """
        show alone is unknown; other arguments are unknown show arguments.
        """
        self.assertEqual(self.command(b"show"), unknown(b"show"))
        self.assertEqual(self.command(b"SHOW"), unknown(b"SHOW"))
        for line in (b"show x", b"show jobs x", b"show unique", b"show unique x", b"show unique jobs x", b"show  "):
            self.assertEqual(self.command(line), b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n", line)


class CancelTests(AdminTestCase):
    """
    C{cancel job}.
    """

    def test_cancel(self) -> None:
        """
        cancel job: OK and WORK_FAIL to the job's clients; again OK but no
        second WORK_FAIL; the job is ignored and reaped at the next GRAB.
        """
        out: List[bytes] = []
        client = self.peer(11, "127.0.0.1", out)
        self.server.submit(client, b"f", b"", b"x", NORMAL, False)
        self.assertEqual(self.command(b"cancel job H:1"), OK)
        self.assertEqual(self.command(b"CANCEL JOB H:1"), OK)
        self.assertEqual(
            [(ptype, args) for ptype, args, _ in parseAll(b"".join(out[1:]), magic=RES)],
            [(PacketType.WORK_FAIL, [b"H:1"])],
        )
        self.assertEqual(self.command(b"show jobs"), b"H:1\t0\t1\t0\n.\n")
        self.assertEqual(self.command(b"status"), b"f\t1\t0\t0\n.\n")
        worker = self.peer(10, "127.0.0.1")
        self.server.canDo(worker, b"f")
        self.server.grab(worker, ASSIGN)
        self.assertEqual(self.command(b"cancel job H:1"), b"ERR UNKNOWN_JOB\r\n")

    def test_errors(self) -> None:
        """
        Unknown handles (handles are case-sensitive) and word-count errors.
        """
        self.populate()
        self.assertEqual(self.command(b"cancel job h:3"), b"ERR UNKNOWN_JOB\r\n")
        self.assertEqual(self.command(b"Cancel Job nope"), b"ERR UNKNOWN_JOB\r\n")
        self.assertEqual(self.command(b"cancel job"), unknown(b"cancel"))
        self.assertEqual(self.command(b"CANCEL job"), unknown(b"CANCEL"))
        self.assertEqual(self.command(b"cancel"), unknown(b"cancel"))
        self.assertEqual(self.command(b"cancel x y"), b"ERR UNKNOWN_ERROR\r\n")
        self.assertEqual(self.command(b"cancel x H:3"), b"ERR UNKNOWN_ERROR\r\n")
        self.assertEqual(self.command(b"cancel x y z"), b"ERR UNKNOWN_ERROR\r\n")
        self.assertEqual(self.command(b"cancel job H:3 x"), b"ERR UNKNOWN_ERROR\r\n")
        self.assertEqual(self.command(b"cancel job H:3 "), b"ERR UNKNOWN_ERROR\r\n")
        self.assertFalse(self.server.jobs[b"H:3"].ignore)
        self.assertEqual(self.command(b"cancel job H:3"), OK)


class FunctionCommandTests(AdminTestCase):
    """
    C{create function} and C{drop function}.
    """

    def test_create(self) -> None:
        """
        create function adds a function with zeros; an existing one is
        left as it is.
        """
        self.assertEqual(self.command(b"create function newf"), OK)
        self.assertEqual(self.command(b"status"), b"newf\t0\t0\t0\n.\n")
        self.assertEqual(self.command(b"CREATE FUNCTION newf"), OK)
        self.assertEqual(list(self.server.functions), [b"newf"])

    def test_createBadCount(self) -> None:
        """
        Any other word count, or a second word other than C{function}, gets
        INVALID_ARGUMENTS with the command word as sent.
        """
        self.assertEqual(self.command(b"create function"), incomplete(b"create"))
        self.assertEqual(self.command(b"CREATE function"), incomplete(b"CREATE"))
        self.assertEqual(self.command(b"create"), incomplete(b"create"))
        self.assertEqual(self.command(b"create x f"), incomplete(b"create"))
        self.assertEqual(self.command(b"create function a b"), incomplete(b"create"))
        self.assertEqual(self.server.functions, {})

    def test_drop(self) -> None:
        """
        drop function removes an idle function, matching its name in any
        case; a missing function is not found.
        """
        self.command(b"create function NewF")
        self.assertEqual(self.command(b"drop function NEWF"), OK)
        self.assertEqual(self.command(b"drop function newf"), NOT_FOUND)
        self.assertEqual(self.command(b"DROP FUNCTION nope"), NOT_FOUND)
        self.assertEqual(self.command(b"status"), b".\n")

    def test_dropBadCount(self) -> None:
        """
        Bad word counts get INVALID_ARGUMENTS with the command word as sent.
        """
        self.assertEqual(self.command(b"drop function"), incomplete(b"drop"))
        self.assertEqual(self.command(b"DROP function"), incomplete(b"DROP"))
        self.assertEqual(self.command(b"drop x y"), incomplete(b"drop"))
        self.assertEqual(self.command(b"drop function a b"), incomplete(b"drop"))

    def test_dropBusy(self) -> None:
        """
        A function with workers, running jobs, or (our fix) queued jobs is
        not dropped.
        """
        self.populate()
        self.assertEqual(self.command(b"drop function b"), BUSY)
        self.assertEqual(self.command(b"drop function A"), BUSY)
        self.assertEqual(self.command(b"drop function c"), BUSY)
        self.server.submit(self.me, b"later", b"", b"x", NORMAL, True, 100)
        self.assertEqual(self.command(b"drop function later"), BUSY)
        self.assertEqual(self.command(b"status"), b"c\t1\t0\t0\nb\t0\t0\t1\nlater\t1\t0\t0\na\t2\t1\t1\n.\n")

    def test_dropCaseVariants(self) -> None:
        """
        Of several functions whose names differ only in case, drop function
        takes the oldest, whatever the case it is given in; the others stay.
        """
        for name in (b"aB", b"ab", b"AB"):
            self.command(b"create function " + name)
        worker = self.peer(10, "127.0.0.2")
        self.server.canDo(worker, b"aB")
        self.assertEqual(self.command(b"drop function ab"), BUSY)
        self.server.resetAbilities(worker)
        self.assertEqual(self.command(b"drop function AB"), OK)
        self.assertEqual(sorted(self.server.functions), [b"AB", b"ab"])
        self.assertEqual(self.command(b"drop function Ab"), OK)
        self.assertEqual(self.command(b"drop function aB"), OK)
        self.assertEqual(self.command(b"drop function ab"), NOT_FOUND)
        self.assertEqual(self.server.functions, {})

    def test_dropLooksAtMatchesOnly(self) -> None:
        """
        drop function finds its function without going through the others
        (it compared every name: 30 ms a line with 200,000 functions).
        """
        for number in range(1000):
            self.server.createFunction(b"F%d" % (number,))
        functions = self.server.functions = _NoIteration(self.server.functions)
        self.assertEqual(self.command(b"drop function nosuch"), NOT_FOUND)
        self.assertEqual(self.command(b"drop function f500"), OK)
        self.assertNotIn(b"F500", functions)
        self.assertEqual(len(functions), 999)

    def test_createdFunctionsKeptAsIdle(self) -> None:
        """
        Functions made by create function are idle functions: the server
        keeps the newest C{idleFunctions} of them (gearmand keeps all).
        """
        self.server.idleFunctions = 3
        for number in range(5):
            self.assertEqual(self.command(b"create function f%d" % (number,)), OK)
        self.assertEqual(self.command(b"status"), b"f4\t0\t0\t0\nf3\t0\t0\t0\nf2\t0\t0\t0\n.\n")


class _NoIteration(dict):
    """
    A dictionary that must not be gone through.
    """

    def __iter__(self):
        raise AssertionError("iterated")

    def items(self):
        raise AssertionError("iterated")

    def values(self):
        raise AssertionError("iterated")

    def keys(self):
        raise AssertionError("iterated")


class MaxQueueTests(AdminTestCase):
    """
    C{maxqueue}.
    """

    def setUp(self) -> None:
        super().setUp()
        self.server.function(b"f")

    def limits(self) -> List[int]:
        return self.server.functions[b"f"].maxQueue

    def test_forms(self) -> None:
        """
        No limit: all unlimited; one: all; two: HIGH and NORMAL, LOW
        unlimited; three: each.  The reply is C{OK\n}, not gearmand's
        C{OK\r\n}, which pygearman refuses.
        """
        for line, limits in (
            (b"maxqueue f 5", [5, 5, 5]),
            (b"maxqueue f 1 2", [1, 2, 0]),
            (b"maxqueue f 1 2 3", [1, 2, 3]),
            (b"maxqueue f", [0, 0, 0]),
            (b"MAXQUEUE f 7", [7, 7, 7]),
        ):
            self.assertEqual(self.command(line), MAXQUEUE_OK, line)
            self.assertEqual(self.limits(), limits, line)

    def test_junk(self) -> None:
        """
        Negative numbers and junk are 0; numbers are read as C's atoi into
        an int (4294967297 is 1, 3000000000 is negative hence 0); a trailing
        space adds an empty (0) limit.
        """
        for line, limits in (
            (b"maxqueue f 1 -2 x", [1, 0, 0]),
            (b"maxqueue f 2x", [2, 2, 2]),
            (b"maxqueue f -5", [0, 0, 0]),
            (b"maxqueue f 4294967297", [1, 1, 1]),
            (b"maxqueue f 3000000000", [0, 0, 0]),
            (b"maxqueue f " + b"9" * 5000, [0, 0, 0]),
            (b"maxqueue f 4 ", [4, 0, 0]),
        ):
            self.assertEqual(self.command(line), MAXQUEUE_OK, line)
            self.assertEqual(self.limits(), limits, line)

    def test_unknownFunction(self) -> None:
        """
        Function names are case-sensitive; unknown functions are silently
        ignored.
        """
        self.assertEqual(self.command(b"maxqueue F 9"), MAXQUEUE_OK)
        self.assertEqual(self.command(b"maxqueue nope 9"), MAXQUEUE_OK)
        self.assertEqual(self.limits(), [0, 0, 0])
        self.assertNotIn(b"nope", self.server.functions)

    def test_bare(self) -> None:
        """
        maxqueue alone gets INVALID_ARGUMENTS with the word as sent.
        """
        self.assertEqual(self.command(b"maxqueue"), incomplete(b"maxqueue"))
        self.assertEqual(self.command(b"MaxQueue"), incomplete(b"MaxQueue"))

    def test_applies(self) -> None:
        """
        The limit refuses submissions.
        """
        out: List[bytes] = []
        client = self.peer(11, "127.0.0.1", out)
        self.command(b"maxqueue f 1")
        self.server.submit(client, b"f", b"", b"x", NORMAL, True)
        self.server.submit(client, b"f", b"", b"x", NORMAL, True)
        self.assertEqual(
            [ptype for ptype, _, _ in parseAll(b"".join(out), magic=RES)],
            [PacketType.JOB_CREATED, PacketType.ERROR],
        )


class ValueTests(AdminTestCase):
    """
    C{version}, C{verbose}, C{getpid}.
    """

    def test_values(self) -> None:
        """
        version, verbose and getpid, in any case, extra words ignored.
        """
        self.assertEqual(self.command(b"version"), b"OK 1.1.20\n")
        self.assertEqual(self.command(b"VERSION now"), b"OK 1.1.20\n")
        self.assertEqual(self.command(b"verbose"), b"OK ERROR\n")
        self.assertEqual(self.command(b"Verbose x"), b"OK ERROR\n")
        self.assertEqual(self.command(b"getpid"), b"OK 4242\n")
        self.assertEqual(self.command(b"GETPID x y z"), b"OK 4242\n")

    def test_defaults(self) -> None:
        """
        By default: gearmand's version, level ERROR, this process's pid.
        """
        admin = AdminCommands(self.server)
        self.assertEqual(admin.execute(self.me, b"version"), b"OK 1.1.20\n")
        self.assertEqual(admin.execute(self.me, b"verbose"), b"OK ERROR\n")
        self.assertEqual(admin.execute(self.me, b"getpid"), b"OK %d\n" % (os.getpid(),))

    def test_configured(self) -> None:
        """
        The version and level given are reported.
        """
        admin = AdminCommands(self.server, version="1.1.20+gearman-tw-0.1.0", verbosity="DEBUG")
        self.assertEqual(admin.execute(self.me, b"version"), b"OK 1.1.20+gearman-tw-0.1.0\n")
        self.assertEqual(admin.execute(self.me, b"verbose"), b"OK DEBUG\n")
        self.assertEqual(LOG_LEVELS, ("FATAL", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"))


class ShutdownTests(AdminTestCase):
    """
    C{shutdown}: gearmand 1.1.20 has none; ours only when enabled and local.
    """

    def test_disabled(self) -> None:
        """
        Without a shutdown callable, shutdown is an unknown command, with
        the word as sent.
        """
        self.assertEqual(self.command(b"shutdown"), unknown(b"shutdown"))
        self.assertEqual(self.command(b"shutdown graceful"), unknown(b"shutdown"))
        self.assertEqual(self.command(b"SHUTDOWN"), unknown(b"SHUTDOWN"))

    def test_enabled(self) -> None:
        """
        With a shutdown callable, loopback and Unix socket peers may stop
        the server, gracefully or not; others get unknown command; other
        arguments are refused.
        """
        calls: List[bool] = []
        self.admin.shutdown = calls.append
        remote = self.peer(11, "192.0.2.1")
        self.assertEqual(self.command(b"shutdown", remote), unknown(b"shutdown"))
        self.assertEqual(self.command(b"shutdown graceful", self.peer(12, "10.127.0.1")), unknown(b"shutdown"))
        self.assertEqual(calls, [])
        self.assertEqual(self.command(b"shutdown graceful"), OK)
        self.assertEqual(self.command(b"SHUTDOWN"), OK)
        self.assertEqual(self.command(b"shutdown GRACEFUL", self.peer(13, "::1")), OK)
        self.assertEqual(self.command(b"shutdown", self.peer(14, "unix")), OK)
        self.assertEqual(self.command(b"shutdown", self.peer(15, "127.8.9.10")), OK)
        self.assertEqual(self.command(b"shutdown now"), b"ERR UNKNOWN_ARGS\r\n")
        self.assertEqual(calls, [True, False, True, False, False])


class ParsingTests(AdminTestCase):
    """
    Words, case and unknown commands (4.1).
    """

    def test_unknown(self) -> None:
        """
        Unknown commands are echoed as sent, without separator.
        """
        self.assertEqual(self.command(b"FooBar"), unknown(b"FooBar"))
        self.assertEqual(self.command(b"BoGuS x"), unknown(b"BoGuS"))
        self.assertEqual(self.command(b"gladiator"), unknown(b"gladiator"))
        self.assertEqual(self.command(b"\tstatus"), unknown(b"\tstatus"))

    def test_emptyAndLeadingSpace(self) -> None:
        """
        An empty line and a leading space make an empty command word;
        trailing spaces are an empty last word, ignored by status.
        """
        self.assertEqual(self.command(b""), unknown(b""))
        self.assertEqual(self.command(b" status"), unknown(b""))
        self.assertEqual(self.command(b"  "), unknown(b""))
        self.assertEqual(self.command(b"status  "), b".\n")
        self.assertEqual(self.command(b"status   a    b"), b".\n")

    def test_wordLimit(self) -> None:
        """
        Five words are answered; more (trailing spaces count as a word)
        close the connection without a reply.
        """
        self.assertEqual(self.command(b"a b c d e"), unknown(b"a"))
        self.assertEqual(self.command(b"status a b c d"), b".\n")
        self.assertIsNone(self.command(b"a b c d e f"))
        self.assertIsNone(self.command(b"status a b c d e"))
        self.assertIsNone(self.command(b"status  a  b  c  d  "))
        self.assertIsNone(self.command(b"maxqueue f 1 2 3 4"))

    def test_caseInsensitive(self) -> None:
        """
        Every command word matches in any case.
        """
        self.populate()
        for line in (
            b"STATUS",
            b"PrioritySTATUS",
            b"WORKERS",
            b"SHOW JOBS",
            b"show UNIQUE jobs",
            b"VERSION",
            b"VERBOSE",
            b"GETPID",
            b"MAXQUEUE a 1",
            b"CREATE FUNCTION z",
            b"DROP FUNCTION z",
            b"CANCEL JOB H:3",
        ):
            reply = self.text(line)
            self.assertFalse(reply.startswith(b"ERR"), (line, reply))
        self.assertEqual(self.server.functions[b"a"].maxQueue, [1, 1, 1])
        self.assertNotIn(b"z", self.server.functions)
        self.assertTrue(self.server.jobs[b"H:3"].ignore)


class HashOrderTests(SynchronousTestCase):
    """
    gearmand's listing order, checked against orders seen on gearmand 1.1.20.
    """

    def test_orders(self) -> None:
        """
        Functions, handles and uniques sort as gearmand listed them: hash
        bucket ascending, newest first within a bucket.
        """
        names = [b"a", b"b", b"c", b"zz", b"f", b"e", b"d", b"reverse", b"alpha", b"f15", b"f27"]
        self.assertEqual(
            hashOrder(names, lambda n: n),
            [b"c", b"zz", b"d", b"f27", b"f15", b"b", b"alpha", b"e", b"reverse", b"f", b"a"],
        )
        handles = [b"T:%d" % n for n in range(1, 15)]
        self.assertEqual(
            [int(h[2:]) for h in hashOrder(handles, lambda h: h)],
            [1, 12, 13, 3, 5, 6, 9, 8, 10, 2, 14, 11, 7, 4],
        )
        uniques = [b"u%d" % n for n in range(12)] + [b"", b"zz"]
        self.assertEqual(
            hashOrder(uniques, lambda u: u),
            b" u11 zz u6 u1 u2 u8 u4 u10 u5 u7 u9 u0 u3".split(b" "),
        )
        self.assertEqual(gearmandHash(b""), 1)

    def test_sameBucketNewestFirst(self) -> None:
        """
        Items in one bucket are listed newest first.
        """
        self.assertEqual(hashOrder([b"a", b"a"], lambda n: n), [b"a", b"a"])
        pairs = [(1, b"x"), (2, b"x")]
        self.assertEqual(hashOrder(pairs, lambda p: p[1]), [(2, b"x"), (1, b"x")])

    def test_highBytes(self) -> None:
        """
        Bytes above 127 hash as signed chars, as in gearmand's C.
        """
        self.assertNotEqual(gearmandHash(b"\xff"), gearmandHash(b"\x7f"))
        self.assertTrue(0 <= gearmandHash(b"\xff\xfe\x80") < 991)


class ListingTests(AdminTestCase):
    """
    Long listings are made and sent in slices, between which the server
    serves everyone else; a connection's next command waits for its
    listing.
    """

    def fill(self, jobs: int, functions: int) -> None:
        client = self.peer(11, "127.0.0.1")
        for index in range(jobs):
            self.server.submit(client, b"f%d" % (index % functions), b"u%d" % (index,), b"x", NORMAL, True)

    def whole(self, reply) -> bytes:
        """
        A listing's bytes, every slice made.
        """
        if isinstance(reply, bytes):
            return reply
        return b"".join(reply)

    def test_sameBytes(self) -> None:
        """
        Sliced or not, every listing gives gearmand's bytes in gearmand's
        order: each line, of the hash order, once, and the final dot.
        """
        from gearman_tw.server import admin

        self.fill(LISTING_SLICE * 2 + 17, LISTING_SLICE + 5)
        self.server.canDo(self.peer(12, "127.0.0.2"), b"f1")
        for line in (b"status", b"prioritystatus", b"show jobs", b"show unique jobs", b"workers"):
            sliced = self.command(line)
            self.patch(admin, "LISTING_SLICE", 10**9)
            whole = self.command(line)
            admin.LISTING_SLICE = LISTING_SLICE
            self.assertIsInstance(whole, bytes, line)
            self.assertEqual(self.whole(sliced), whole, line)
        self.assertIsInstance(self.command(b"show jobs"), Listing)

    def test_boundedSteps(self) -> None:
        """
        Each step of a long listing handles at most a slice of rows.
        """
        self.fill(LISTING_SLICE * 10, 3)
        steps = [chunk.count(b"\n") for chunk in self.listing(b"show jobs")]
        self.assertGreater(len(steps), 10)
        self.assertLessEqual(max(steps), LISTING_SLICE + 1)
        self.assertEqual(sum(steps), LISTING_SLICE * 10 + 1)

    def test_protocolSlices(self) -> None:
        """
        Over a connection: one slice per reactor turn, reading paused
        meanwhile; the commands after it in the same read are answered after
        its last line; another connection is served between two slices.
        """
        from twisted.internet.address import IPv4Address
        from twisted.internet.testing import StringTransport

        from gearman_tw.server.factory import GearmanServerFactory

        self.fill(LISTING_SLICE * 4, 7)
        factory = GearmanServerFactory(self.server, admin=self.admin)

        def connect():
            protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4730))
            transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
            protocol.makeConnection(transport)
            return protocol, transport

        admin, adminTransport = connect()
        other, otherTransport = connect()
        admin.dataReceived(b"show jobs\nversion\n")
        self.assertEqual(adminTransport.producerState, "paused")
        self.assertNotIn(b"OK 1.1.20", adminTransport.value())
        admin.dataReceived(b"getpid\n")
        turns = 0
        while adminTransport.producerState == "paused" and turns < 1000:
            other.dataReceived(b"\0REQ\0\0\0\x10\0\0\0\x02hi")
            self.assertTrue(otherTransport.value().endswith(b"\0RES\0\0\0\x11\0\0\0\x02hi"))
            otherTransport.clear()
            # One reactor turn: the call due now (Clock.advance would also
            # run the ones each call schedules).
            [call] = self.clock.getDelayedCalls()
            assert isinstance(call, DelayedCall)
            self.clock.calls.remove(call)
            call.func(*call.args, **call.kw)
            turns += 1
        self.assertGreater(turns, 4)
        output = adminTransport.value()
        listing, rest = output.split(b"\n.\n", 1)
        self.assertEqual(listing.count(b"\n") + 1, LISTING_SLICE * 4)
        self.assertEqual(rest, b"OK 1.1.20\nOK 4242\n")

    def test_longNames(self) -> None:
        """
        A step hashes at most about a slice of 16-byte names' worth of
        bytes: functions with long names make a sliced listing even when
        they are few (100 names of 8,000 bytes took 0.5 s in one step).
        """
        from gearman_tw.server import admin

        worker = self.peer(10, "127.0.0.2")
        for number in range(100):
            self.server.canDo(worker, b"%04d" % (number,) + b"n" * 7996)
        hashed = [0]
        hash = admin.gearmandHash

        def counting(key: bytes) -> int:
            hashed[0] += len(key)
            return hash(key)

        self.patch(admin, "gearmandHash", counting)
        for line in (b"status", b"prioritystatus"):
            reply = self.listing(line)
            steps = []
            for _chunk in reply:
                steps.append(hashed[0])
                hashed[0] = 0
            self.assertEqual(sum(steps), 800000)
            self.assertLessEqual(max(steps), LISTING_SLICE * admin.KEY_BYTES_PER_ROW + 8000)
        self.patch(admin, "LISTING_SLICE", 10**9)
        self.assertEqual(self.whole(self.command(b"status")).count(b"\t0\t0\t1\n"), 100)

    def test_jobsOrderedASliceAtATime(self) -> None:
        """
        No step of C{show jobs} orders more than about a slice of jobs by
        handle number (all of them were sorted in one step): a slice
        sorted, or merged with the others.
        """
        from gearman_tw.server import admin

        slice = 100
        self.patch(admin, "LISTING_SLICE", slice)
        compared = [0]

        class Number(int):
            def __lt__(self, other: int) -> bool:
                compared[0] += 1
                return int(self) < int(other)

        number = self.server.handleNumber
        def numbered(handle: bytes) -> Number:
            value = number(handle)
            assert value is not None
            return Number(value)

        self.patch(self.server, "handleNumber", numbered)
        client = self.peer(11, "127.0.0.1")
        for index in range(slice * 200):
            self.server.submit(client, b"f", b"u%d" % (index,), b"x", NORMAL, True)
        steps = []
        lines = 0
        for chunk in self.listing(b"show jobs"):
            steps.append(compared[0])
            compared[0] = 0
            lines += chunk.count(b"\n")
        self.assertEqual(lines, slice * 200 + 1)
        # Merging 200 runs: about 2 log2(200) comparisons a job.
        self.assertLessEqual(max(steps), slice * 20)

    def test_lostMidListing(self) -> None:
        """
        A connection lost in the middle of a listing leaves no timer.
        """
        from twisted.internet.address import IPv4Address
        from twisted.internet.testing import StringTransport

        from gearman_tw.server.factory import GearmanServerFactory

        self.fill(LISTING_SLICE * 3, 2)
        factory = GearmanServerFactory(self.server, admin=self.admin)
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4730))
        assert protocol is not None
        protocol.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000)))
        protocol.dataReceived(b"status\nshow jobs\n")
        self.clock.advance(0)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ForgeryTests(AdminTestCase):
    """
    Names with line breaks cannot forge lines of a listing.
    """

    def test_escaped(self) -> None:
        """
        A function name, client id or unique key with a newline or carriage
        return is listed with C{\\n} or C{\\r} in its place: every listing
        keeps one line per function, connection or job.
        """
        worker = self.peer(10, "127.0.0.2")
        worker.clientId = b"id\nforged 1.2.3.4 x :y"
        self.server.canDo(worker, b"f\nforged\t9\t9\t9")
        self.server.submit(self.me, b"g\r\nh", b"u\nv", b"x", NORMAL, True)
        status = self.text(b"status")
        self.assertEqual(status.count(b"\n"), 3)
        self.assertIn(b"f\\nforged\t9\t9\t9\t0\t0\t1\n", status)
        self.assertIn(b"g\\r\\nh\t1\t0\t0\n", status)
        workers = self.text(b"workers")
        self.assertIn(b"10 127.0.0.2 id\\nforged 1.2.3.4 x :y : f\\nforged\t9\t9\t9\n", workers)
        self.assertEqual(workers.count(b"\n"), 3)
        self.assertEqual(self.command(b"show unique jobs"), b"u\\nv\n.\n")
        self.assertEqual(self.text(b"prioritystatus").count(b"\n"), 3)


class StoredReplyTests(SynchronousTestCase):
    """
    With a persistent queue, the admin commands that change what it keeps
    (C{policy set}, C{policy reset}, C{purge deadletters}) and C{retry
    deadletters} answer once the queue made the change: an answer means it
    survives a crash, or says why it may not.  The lines after one wait, so
    replies keep their order.
    """

    def setUp(self) -> None:
        from twisted.internet.defer import Deferred

        from gearman_tw.server.factory import GearmanServerFactory
        from tests.test_server_persistence import FakeQueue

        self.clock = Clock()
        self.queue = FakeQueue()
        self.keeping: Deferred[None] = Deferred()
        self.queue.keeping = self.keeping
        self.server = JobServer(self.clock, handlePrefix=b"H", queue=self.queue)
        self.factory = GearmanServerFactory(self.server, admin=AdminCommands(self.server, version="1.1.20"))

    def connect(self):  # type: ignore[no-untyped-def]
        from twisted.internet.address import IPv4Address
        from twisted.internet.testing import StringTransport

        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4730))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        protocol.makeConnection(transport)
        return protocol, transport

    def turns(self, count: int = 5) -> None:
        for _ in range(count):
            self.clock.advance(0)

    def test_policySetWaits(self) -> None:
        protocol, transport = self.connect()
        protocol.dataReceived(b"policy set f max-attempts 3\nversion\n")
        self.turns()
        self.assertEqual((transport.value(), transport.producerState), (b"", "paused"))
        # Applied at once; answered once stored.
        self.assertEqual(self.server.policyOf(b"f").maxAttempts, 3)
        self.keeping.callback(None)
        self.turns()
        self.assertEqual((transport.value(), transport.producerState), (b"OK\nOK 1.1.20\n", "producing"))

    def test_storeFails(self) -> None:
        """
        A change the queue could not store is answered C{ERR QUEUE_ERROR}
        saying so and why; it applies until the server restarts.
        """
        from gearman_tw.errors import QueueError

        protocol, transport = self.connect()
        protocol.dataReceived(b"policy reset f\npolicy set f max-attempts 3\n")
        self.turns()
        self.keeping.errback(QueueError("disk full"))
        self.turns()
        self.assertEqual(
            transport.value(),
            b"OK 0\nERR QUEUE_ERROR the+change+applies+but+could+not+be+stored:+disk+full\r\n",
        )
        self.assertEqual(self.server.policyOf(b"f").maxAttempts, 3)
        self.assertEqual(self.server.stats.queueErrors, 1)

    def test_purgeWaits(self) -> None:
        from tests.test_server_lifecycle_store import letter

        self.server.restoreDeadLetters([(b"4", letter(4).encode())])
        protocol, transport = self.connect()
        protocol.dataReceived(b"purge deadletters f\n")
        self.turns()
        self.assertEqual(transport.value(), b"")
        self.keeping.callback(None)
        self.turns()
        self.assertEqual(transport.value(), b"OK 1\n")

    def test_retryCountsLaterRefusals(self) -> None:
        """
        C{retry deadletters} counts the letters whose new jobs the queue
        stored, not those it refused after the submission (put back).
        """
        from gearman_tw.errors import QueueError
        from tests.test_server_lifecycle_store import letter

        self.keeping.callback(None)
        self.server.restoreDeadLetters([(b"4", letter(4).encode()), (b"5", letter(5).encode())])
        protocol, transport = self.connect()
        protocol.dataReceived(b"retry deadletters f\nversion\n")
        self.turns()
        self.assertEqual(transport.value(), b"")
        [(_, stored)] = {id(d): (job, d) for job, d in self.queue.adds}.values()
        stored.errback(QueueError("disk full"))
        self.flushLoggedErrors(QueueError)
        self.turns()
        self.assertEqual(transport.value(), b"OK 0\nOK 1.1.20\n")
        self.assertEqual([x.ident for x in self.server.deadLetters.of(b"f")], [4, 5])

    def test_retryWaitsForLettersForgotten(self) -> None:
        """
        C{retry deadletters} answers once each new job is stored and its
        letter forgotten in the queue: a crash after the answer cannot
        leave both (a second retry would run the job twice).
        """
        from tests.test_server_lifecycle_store import letter

        self.server.restoreDeadLetters([(b"4", letter(4).encode())])
        protocol, transport = self.connect()
        protocol.dataReceived(b"retry deadletters f\n")
        self.turns()
        self.queue.commit()
        self.turns()
        self.assertEqual(self.queue.changes[-1][3], [b"4"])
        self.assertEqual(transport.value(), b"")
        self.keeping.callback(None)
        self.turns()
        self.assertEqual(transport.value(), b"OK 1\n")

    def test_retryLettersNotForgotten(self) -> None:
        """
        New jobs stored but their letters not forgotten (a crash would
        leave both): C{ERR QUEUE_ERROR} says so, not C{OK}.
        """
        from gearman_tw.errors import QueueError
        from tests.test_server_lifecycle_store import letter

        self.server.restoreDeadLetters([(b"4", letter(4).encode())])
        protocol, transport = self.connect()
        protocol.dataReceived(b"retry deadletters f\n")
        self.turns()
        self.queue.commit()
        self.keeping.errback(QueueError("disk full"))
        self.turns()
        self.assertEqual(
            transport.value(),
            b"ERR QUEUE_ERROR 1+retried+but+the+queue+could+not+forget+their+letters:+disk+full\r\n",
        )

    def test_lostWhileWaiting(self) -> None:
        """
        A connection lost while its reply waits is answered nothing, and
        leaves no timer.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"policy set f max-attempts 3\n")
        self.turns()
        protocol.connectionLost(Failure(ConnectionDone()))
        self.keeping.callback(None)
        self.turns()
        self.assertEqual((transport.value(), self.clock.getDelayedCalls()), (b"", []))
