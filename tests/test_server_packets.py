"""
Tests for L{gearman_tw.server.packets}: the job server's replies as Gearman
packets.
"""

from typing import List

from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.protocol import PacketType, encode
from gearman_tw.server.model import ASSIGN, ASSIGN_ALL, ASSIGN_UNIQ, NORMAL, Function, Job
from gearman_tw.server.packets import PacketPeer
from gearman_tw.server.writes import WriteBatch


class PacketPeerTests(SynchronousTestCase):
    """
    L{PacketPeer}: replies as packets, batching and held replies.
    """

    def setUp(self) -> None:
        self.out: List[bytes] = []
        self.peer = PacketPeer(self.out.append, 3, "::1")

    def test_defaults(self) -> None:
        """
        A new peer has client id C{-}, nothing registered, the exceptions
        option off.
        """
        self.assertEqual(
            (self.peer.clientId, self.peer.abilities, self.peer.exceptions, self.peer.fd, self.peer.host),
            (b"-", [], False, 3, "::1"),
        )

    def test_batch(self) -> None:
        """
        While the server's L{WriteBatch} is active, replies are gathered and
        go out as one write when it is flushed; otherwise at once.
        """
        batch = WriteBatch()
        peer = PacketPeer(self.out.append, 3, "::1", batch=batch)
        batch.begin()
        peer.write(b"a")
        peer.noop()
        self.assertEqual(self.out, [])
        batch.flush()
        self.assertEqual(self.out, [b"a" + encode(PacketType.NOOP)])
        peer.write(b"c")
        self.assertEqual(self.out[-1], b"c")

    def test_holdKeepsOrder(self) -> None:
        """
        Writes after a held job wait until it is stored and released, then
        go out in one write; a job still being stored keeps what follows it
        waiting.
        """
        first = Job(b"H:1", Function(b"f", 1), b"", None, b"", NORMAL, True, 0, None)
        second = Job(b"H:2", Function(b"f", 1), b"", None, b"", NORMAL, True, 0, None)
        first.waiting = second.waiting = self.peer
        self.peer.hold(first)
        self.peer.write(b"later")
        self.peer.hold(second)
        self.peer.write(b"last")
        self.assertEqual(self.out, [])
        second.waiting = None
        self.peer.release()
        self.assertEqual(self.out, [])
        first.waiting = None
        self.peer.release()
        created = [encode(PacketType.JOB_CREATED, b"H:%d" % n) for n in (1, 2)]
        self.assertEqual(self.out, [created[0] + b"later" + created[1] + b"last"])
        self.peer.write(b"now")
        self.assertEqual(self.out[-1], b"now")

    def test_refuse(self) -> None:
        """
        A held job can be answered with an ERROR instead (the first reply
        held for it only).
        """
        job = Job(b"H:1", Function(b"f", 1), b"", None, b"", NORMAL, True, 0, None)
        job.waiting = self.peer
        self.peer.hold(job)
        self.peer.hold(job)
        self.peer.refuse(job, b"QUEUE_ERROR", b"full")
        job.waiting = None
        self.peer.release()
        self.assertEqual(
            self.out,
            [encode(PacketType.ERROR, b"QUEUE_ERROR", b"full") + encode(PacketType.JOB_CREATED, b"H:1")],
        )

    def test_replies(self) -> None:
        """
        Each reply is its packet, byte for byte; forwarded worker data
        follows the handle after one NUL, as sent.
        """
        job = Job(b"H:9", Function(b"fn", 1), b"u", None, b"data", NORMAL, False, 0, b"red")
        calls = [
            (lambda: self.peer.created(b"H:9"), encode(PacketType.JOB_CREATED, b"H:9")),
            (lambda: self.peer.error(b"C", b"t"), encode(PacketType.ERROR, b"C", b"t")),
            (self.peer.noop, encode(PacketType.NOOP)),
            (self.peer.noJob, encode(PacketType.NO_JOB)),
            (lambda: self.peer.assign(job, ASSIGN), encode(PacketType.JOB_ASSIGN, b"H:9", b"fn", b"data")),
            (
                lambda: self.peer.assign(job, ASSIGN_UNIQ),
                encode(PacketType.JOB_ASSIGN_UNIQ, b"H:9", b"fn", b"u", b"data"),
            ),
            (
                lambda: self.peer.assign(job, ASSIGN_ALL),
                encode(PacketType.JOB_ASSIGN_ALL, b"H:9", b"fn", b"u", b"red", b"data"),
            ),
            (lambda: self.peer.workData(job, b"a\0b"), encode(PacketType.WORK_DATA, b"H:9", b"a\0b")),
            (lambda: self.peer.workWarning(job, b""), encode(PacketType.WORK_WARNING, b"H:9", b"")),
            (
                lambda: self.peer.workStatus(job, b"1", b"2\0x"),
                encode(PacketType.WORK_STATUS, b"H:9", b"1", b"2\0x"),
            ),
            (lambda: self.peer.workComplete(job, b"r"), encode(PacketType.WORK_COMPLETE, b"H:9", b"r")),
            (lambda: self.peer.workFail(job), encode(PacketType.WORK_FAIL, b"H:9")),
            (lambda: self.peer.workFail(job, b""), encode(PacketType.WORK_FAIL, b"H:9", b"")),
            (lambda: self.peer.workFail(job, b"why"), encode(PacketType.WORK_FAIL, b"H:9", b"why")),
            (lambda: self.peer.workException(job, b"e"), encode(PacketType.WORK_EXCEPTION, b"H:9", b"e")),
        ]
        for call, packet in calls:
            call()
            self.assertEqual(self.out.pop(), packet)
        job.reducer = None
        self.peer.assign(job, ASSIGN_ALL)
        self.assertEqual(self.out.pop(), encode(PacketType.JOB_ASSIGN_UNIQ, b"H:9", b"fn", b"u", b"data"))

    def test_forwardedOnce(self) -> None:
        """
        A large result forwarded to many clients is encoded once: every
        client is sent the same bytes object.
        """
        job = Job(b"H:1", Function(b"f", 1), b"", None, b"", NORMAL, False, 0, None)
        result = b"r" * 100000
        outs: List[List[bytes]] = [[] for _ in range(3)]
        for out in outs:
            PacketPeer(out.append, 1, "-").workComplete(job, result)
        self.assertEqual(outs[0], [encode(PacketType.WORK_COMPLETE, b"H:1", result)])
        self.assertIs(outs[1][0], outs[0][0])
        self.assertIs(outs[2][0], outs[0][0])

    def test_lost(self) -> None:
        """
        Nothing reaches a lost connection, held replies included.
        """
        job = Job(b"H:1", Function(b"f", 1), b"", None, b"", NORMAL, True, 0, None)
        job.waiting = self.peer
        self.peer.hold(job)
        self.peer.lose()
        job.waiting = None
        self.peer.release()
        self.peer.noop()
        self.peer.workComplete(job, b"r")
        self.assertEqual((self.out, self.peer.lost), ([], True))
