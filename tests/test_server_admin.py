"""
Tests for L{gearman_tw.server.admin}: gearmand 1.1.20's admin replies, byte
for byte (reference section 4).
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.server.admin import AdminCommands, gearmandHash, hashOrder
from gearman_tw.server.jobs import HIGH, LOW, JobServer, Peer


class AdminTests(SynchronousTestCase):
    """
    Every admin command.
    """

    def setUp(self) -> None:
        self.server = JobServer(Clock(), handlePrefix=b"H")
        self.shutdowns = []
        self.admin = AdminCommands(self.server, version="1.1.20", pid=4242)
        self.me = self.peer(9, "127.0.0.1")

    def peer(self, fd: int, host: str) -> Peer:
        peer = Peer(lambda data: None, fd, host)
        self.server.peerConnected(peer)
        return peer

    def command(self, line: bytes, peer=None):
        return self.admin.execute(peer or self.me, line)

    def populate(self) -> Peer:
        worker = self.peer(10, "127.0.0.2")
        worker.clientId = b"my id\0hidden"
        self.server.canDo(worker, b"a")
        self.server.canDo(worker, b"b")
        self.server.submit(self.me, b"a", b"u1", b"x", HIGH, True)
        self.server.submit(self.me, b"a", b"", b"y", LOW, True)
        self.server.grab(worker, 30)
        self.server.submit(self.me, b"c", b"u3", b"z", 1, False)
        return worker

    def test_status(self) -> None:
        """
        status: name, queued + running, running, workers; every function.
        """
        self.populate()
        # gearmand's hash order: c (bucket 86), b (207), a (937).
        self.assertEqual(self.command(b"status"), b"c\t1\t0\t0\nb\t0\t0\t1\na\t2\t1\t1\n.\n")
        self.server.grab(list(self.server.peers)[1], 30)
        self.assertEqual(self.command(b"STATUS extra"), b"c\t1\t0\t0\nb\t0\t0\t1\na\t2\t2\t1\n.\n")

    def test_priorityStatus(self) -> None:
        """
        prioritystatus: queued jobs per priority, then workers.
        """
        self.populate()
        self.assertEqual(self.command(b"prioritystatus"), b"c\t0\t1\t0\t0\nb\t0\t0\t0\t1\na\t0\t0\t1\t1\n.\n")

    def test_workers(self) -> None:
        """
        workers: every connection, newest first; functions newest first;
        client id and names up to their first NUL.
        """
        self.populate()
        self.server.canDo(self.me, b"x\0hidden")
        self.assertEqual(self.command(b"workers"), b"10 127.0.0.2 my id : b a\n9 127.0.0.1 - : x\n.\n")

    def test_showJobs(self) -> None:
        """
        show jobs and show unique jobs list every job; empty uniques print
        empty lines.
        """
        self.populate()
        self.server.cancel(b"H:2")
        # Hash order of handles (H:1 206, H:3 232, H:2 905) and of uniques
        # ("" 1, u1 125, u3 798); a cancelled background job is no longer
        # persisted, as in gearmand.
        self.assertEqual(self.command(b"show jobs"), b"H:1\t0\t0\t1\nH:3\t0\t0\t0\nH:2\t0\t1\t0\n.\n")
        self.assertEqual(self.command(b"SHOW UNIQUE JOBS"), b"\nu1\nu3\n.\n")
        self.assertEqual(self.command(b"show"), b"ERR UNKNOWN_COMMAND Unknown+server+commandshow\r\n")
        for line in (b"show x", b"show jobs x", b"show unique", b"show unique jobs x"):
            self.assertEqual(self.command(line), b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n", line)

    def test_cancel(self) -> None:
        """
        cancel job: OK, ERR UNKNOWN_JOB (handles are case-sensitive), and
        word-count errors.
        """
        self.populate()
        self.assertEqual(self.command(b"cancel job H:3"), b"OK\r\n")
        self.assertEqual(self.command(b"cancel job h:3"), b"ERR UNKNOWN_JOB\r\n")
        self.assertEqual(self.command(b"Cancel Job nope"), b"ERR UNKNOWN_JOB\r\n")
        self.assertEqual(self.command(b"cancel job"), b"ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n")
        self.assertEqual(self.command(b"cancel"), b"ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n")
        self.assertEqual(self.command(b"cancel x y"), b"ERR UNKNOWN_ERROR\r\n")
        self.assertEqual(self.command(b"cancel job H:1 x"), b"ERR UNKNOWN_ERROR\r\n")

    def test_createDrop(self) -> None:
        """
        create and drop function, with gearmand's error lines.
        """
        incomplete = b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+%s\r\n"
        self.assertEqual(self.command(b"create function newf"), b"OK\r\n")
        self.assertIn(b"newf\t0\t0\t0\n", self.command(b"status"))
        self.assertEqual(self.command(b"create function"), incomplete % b"create")
        self.assertEqual(self.command(b"create x f"), incomplete % b"create")
        self.assertEqual(self.command(b"drop function NEWF"), b"OK\r\n")
        self.assertEqual(self.command(b"drop function newf"), b"ERR function not found\r\n")
        self.assertEqual(self.command(b"drop function"), incomplete % b"drop")
        self.populate()
        busy = b"ERR there are still connected workers or executing clients\r\n"
        self.assertEqual(self.command(b"drop function b"), busy)
        self.assertEqual(self.command(b"drop function c"), busy)

    def test_maxqueue(self) -> None:
        """
        maxqueue with no, one, two or three limits; junk and negatives are 0.
        """
        self.server.function(b"f")
        limits = lambda: self.server.functions[b"f"].maxQueue
        self.assertEqual(self.command(b"maxqueue f 5"), b"OK\r\n")
        self.assertEqual(limits(), [5, 5, 5])
        self.command(b"maxqueue f 1 2")
        self.assertEqual(limits(), [1, 2, 0])
        self.command(b"maxqueue f 1 -2 x")
        self.assertEqual(limits(), [1, 0, 0])
        self.command(b"maxqueue f")
        self.assertEqual(limits(), [0, 0, 0])
        self.assertEqual(self.command(b"maxqueue F 9"), b"OK\r\n")
        self.assertEqual(limits(), [0, 0, 0])
        self.assertEqual(
            self.command(b"maxqueue"),
            b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n",
        )

    def test_values(self) -> None:
        """
        version, verbose and getpid.
        """
        self.assertEqual(self.command(b"version"), b"OK 1.1.20\n")
        self.assertEqual(self.command(b"verbose"), b"OK ERROR\n")
        self.assertEqual(self.command(b"getpid"), b"OK 4242\n")

    def test_unknown(self) -> None:
        """
        Unknown, empty and leading-space commands; more than five words
        closes without a reply.
        """
        unknown = b"ERR UNKNOWN_COMMAND Unknown+server+command%s\r\n"
        self.assertEqual(self.command(b"FooBar"), unknown % b"FooBar")
        self.assertEqual(self.command(b""), unknown % b"")
        self.assertEqual(self.command(b" status"), unknown % b"")
        self.assertEqual(self.command(b"status  "), b".\n")
        self.assertIsNone(self.command(b"a b c d e f"))
        self.assertEqual(self.command(b"a b c d e"), unknown % b"a")

    def test_shutdown(self) -> None:
        """
        shutdown is unknown (gearmand 1.1.20) unless enabled, and then only
        for loopback peers.
        """
        unknown = b"ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n"
        self.assertEqual(self.command(b"shutdown"), unknown)
        self.admin.shutdown = self.shutdowns.append
        remote = self.peer(11, "192.0.2.1")
        self.assertEqual(self.command(b"shutdown", remote), unknown)
        self.assertEqual(self.command(b"shutdown graceful"), b"OK\r\n")
        self.assertEqual(self.command(b"shutdown"), b"OK\r\n")
        self.assertEqual(self.command(b"shutdown now"), b"ERR UNKNOWN_ARGS\r\n")
        self.assertEqual(self.shutdowns, [True, False])


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
