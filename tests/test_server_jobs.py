"""
Tests for L{gearman_tw.server.jobs}: gearmand 1.1's job semantics (reference
section 3), without I/O.
"""

from typing import List, Tuple

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from gearman_tw.interfaces import IJobServer
from gearman_tw.protocol import RES, PacketType, parseAll
from gearman_tw.server.jobs import HIGH, LOW, NORMAL, JobServer, Peer, atoi

P = PacketType


class Conn:
    """
    A connection that records the packets it is sent.
    """

    def __init__(self, server: JobServer, exceptions: bool = False) -> None:
        self.server = server
        self.out: List[bytes] = []
        self.peer = Peer(self.out.append, 1, "127.0.0.1", exceptions)
        server.peerConnected(self.peer)

    def packets(self) -> List[Tuple[int, List[bytes]]]:
        data = b"".join(self.out)
        self.out.clear()
        return [(ptype, args) for ptype, args, _ in parseAll(data, magic=RES)]

    # Shorthands

    def submit(self, name=b"f", unique=b"", data=b"x", priority=NORMAL, background=False, **kw):
        self.server.submit(self.peer, name, unique, data, priority, background, **kw)
        return self.packets()

    def created(self, *args, **kwargs) -> bytes:
        [(ptype, [handle])] = self.submit(*args, **kwargs)
        assert ptype == P.JOB_CREATED, ptype
        return handle

    def canDo(self, *names: bytes, timeout: float = 0) -> None:
        for name in names:
            self.server.canDo(self.peer, name, timeout)

    def grab(self, ptype=P.GRAB_JOB_UNIQ):
        self.server.grab(self.peer, ptype)
        return self.packets()

    def take(self) -> Tuple[bytes, bytes]:
        """
        Grab one job: (handle, data).
        """
        [(ptype, args)] = self.grab()
        assert ptype == P.JOB_ASSIGN_UNIQ, (ptype, args)
        return args[0], args[3]

    def complete(self, handle: bytes, result: bytes = b"r") -> None:
        self.server.workComplete(self.peer, handle, handle + b"\0" + result)

    def lose(self) -> None:
        self.server.peerLost(self.peer)


class JobServerTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.server = JobServer(self.clock, handlePrefix=b"H")

    def conn(self, **kwargs) -> Conn:
        return Conn(self.server, **kwargs)

    def status(self, name: bytes = b"f") -> Tuple[int, int, int]:
        function = self.server.functions[name]
        return (function.total, function.running, function.workers)


class FunctionTests(JobServerTestCase):
    """
    Function records (3.1).
    """

    def test_created(self) -> None:
        """
        A function appears on CAN_DO or SUBMIT and stays after its last job
        and worker are gone; CAN_DO twice counts twice.
        """
        worker, client = self.conn(), self.conn()
        worker.canDo(b"a", b"a")
        client.submit(b"b", background=True)
        self.assertEqual(list(self.server.functions), [b"a", b"b"])
        self.assertEqual(self.status(b"a"), (0, 0, 2))
        worker.lose()
        self.assertEqual(self.status(b"a"), (0, 0, 0))

    def test_interface(self) -> None:
        """
        L{JobServer} provides L{IJobServer}.
        """
        self.assertTrue(verifyObject(IJobServer, self.server))


class HandleTests(JobServerTestCase):
    """
    Job handles (3.2).
    """

    def test_counter(self) -> None:
        """
        Handles count from 1 under the prefix; coalesced submissions reuse
        the existing handle and consume no number.
        """
        client = self.conn()
        self.assertEqual(client.created(unique=b"u"), b"H:1")
        self.assertEqual(client.created(unique=b"u"), b"H:1")
        self.assertEqual(client.created(), b"H:2")

    def test_defaultPrefix(self) -> None:
        """
        Without a prefix, handles start with H: and the host name.
        """
        import socket

        server = JobServer(self.clock)
        client = Conn(server)
        self.assertEqual(client.created(), b"H:" + socket.gethostname().encode() + b":1")


class CoalescingTests(JobServerTestCase):
    """
    Unique-key coalescing (3.3).
    """

    def test_emptyNeverCoalesces(self) -> None:
        """
        Jobs without a unique key are always separate.
        """
        client = self.conn()
        self.assertNotEqual(client.created(), client.created())

    def test_dash(self) -> None:
        """
        C{-} coalesces on the data; with empty data it never does.
        """
        client = self.conn()
        self.assertEqual(client.created(unique=b"-", data=b"d"), client.created(unique=b"-", data=b"d"))
        self.assertNotEqual(client.created(unique=b"-", data=b"d"), client.created(unique=b"-", data=b"e"))
        self.assertNotEqual(client.created(unique=b"-", data=b""), client.created(unique=b"-", data=b""))

    def test_otherFunction(self) -> None:
        """
        The same unique under another function is a separate job.
        """
        client = self.conn()
        self.assertNotEqual(client.created(b"f", b"u"), client.created(b"g", b"u"))

    def test_firstSubmissionWins(self) -> None:
        """
        A coalesced submission keeps the first data and priority, even when
        the queue is full, and coalesces with a running job too.
        """
        client, worker = self.conn(), self.conn()
        client.created(unique=b"u", data=b"first", priority=LOW)
        self.server.setMaxQueue(b"f", (1, 1, 1))
        self.assertEqual(client.created(unique=b"u", data=b"second", priority=HIGH), b"H:1")
        job = self.server.jobs[b"H:1"]
        self.assertEqual((job.data, job.priority), (b"first", LOW))
        worker.canDo(b"f")
        worker.take()
        self.assertEqual(client.created(unique=b"u"), b"H:1")

    def test_everyEntryGetsEveryPacket(self) -> None:
        """
        Each foreground submission gets every later packet; one connection
        that submitted twice gets each packet twice; nothing earlier is
        replayed to a late joiner.
        """
        first, second, worker = self.conn(), self.conn(), self.conn()
        worker.canDo(b"f")
        first.created(unique=b"u")
        handle, _ = worker.take()
        self.server.workData(worker.peer, P.WORK_DATA, handle, handle + b"\0early")
        first.packets()
        second.created(unique=b"u")
        second.created(unique=b"u")
        worker.complete(handle, b"done")
        self.assertEqual(first.packets(), [(P.WORK_COMPLETE, [handle, b"done"])])
        self.assertEqual(second.packets(), [(P.WORK_COMPLETE, [handle, b"done"])] * 2)

    def test_backgroundAttachesNothing(self) -> None:
        """
        A background submission joining a job gets no work packets.
        """
        client, bg, worker = self.conn(), self.conn(), self.conn()
        worker.canDo(b"f")
        client.created(unique=b"u")
        bg.created(unique=b"u", background=True)
        handle, _ = worker.take()
        worker.complete(handle)
        self.assertEqual(bg.packets(), [])
        self.assertEqual(len(client.packets()), 1)

    def test_uniqueTooLarge(self) -> None:
        """
        Uniques over 64 bytes are refused; 64 bytes are kept whole and
        coalesce (gearmand truncates them to 63 and never coalesces).
        """
        client = self.conn()
        self.assertEqual(
            client.submit(unique=b"u" * 65), [(P.ERROR, [b"ARGUMENT_TOO_LARGE", b"Unique value too large"])]
        )
        handle = client.created(unique=b"u" * 64)
        self.assertEqual(client.created(unique=b"u" * 64), handle)
        self.assertEqual(self.server.jobs[handle].unique, b"u" * 64)


class OrderTests(JobServerTestCase):
    """
    Queue order and dispatch (3.4).
    """

    def test_priorityThenFIFO(self) -> None:
        """
        Within a function: HIGH, NORMAL, LOW, each first in first out.
        """
        client, worker = self.conn(), self.conn()
        for data, priority in ((b"l1", LOW), (b"n1", NORMAL), (b"h1", HIGH), (b"n2", NORMAL), (b"h2", HIGH), (b"l2", LOW)):
            client.created(data=data, priority=priority, background=True)
        worker.canDo(b"f")
        self.assertEqual([worker.take()[1] for _ in range(6)], [b"h1", b"h2", b"n1", b"n2", b"l1", b"l2"])
        self.assertEqual(worker.grab(), [(P.NO_JOB, [])])

    def test_newestFunctionFirst(self) -> None:
        """
        Functions are tried newest CAN_DO first, so a LOW job of the newer
        function beats a HIGH job of the older one.
        """
        client, worker = self.conn(), self.conn()
        client.created(b"old", data=b"high", priority=HIGH, background=True)
        client.created(b"new", data=b"low", priority=LOW, background=True)
        worker.canDo(b"old", b"new")
        self.assertEqual([worker.take()[1] for _ in range(2)], [b"low", b"high"])

    def test_roundRobin(self) -> None:
        """
        With round robin the function served moves behind the others.
        """
        self.server.roundRobin = True
        client, worker = self.conn(), self.conn()
        for name in (b"a", b"b", b"c"):
            for n in range(2):
                client.created(name, data=name + b"%d" % n, background=True)
        worker.canDo(b"a", b"b", b"c")
        self.assertEqual([worker.take()[1] for _ in range(6)], [b"c0", b"b0", b"a0", b"c1", b"b1", b"a1"])

    def test_assignFormats(self) -> None:
        """
        GRAB_JOB gets JOB_ASSIGN, GRAB_JOB_UNIQ JOB_ASSIGN_UNIQ, and
        GRAB_JOB_ALL JOB_ASSIGN_ALL only for a reduce job.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        client.created(unique=b"u1", data=b"a", background=True)
        client.created(unique=b"u2", data=b"b", background=True)
        client.created(unique=b"u3", data=b"c", background=True, reducer=b"red")
        client.created(unique=b"u4", data=b"d", background=True)
        client.created(unique=b"u5", data=b"e", background=True, reducer=b"red")
        self.assertEqual(worker.grab(P.GRAB_JOB), [(P.JOB_ASSIGN, [b"H:1", b"f", b"a"])])
        self.assertEqual(worker.grab(P.GRAB_JOB_UNIQ), [(P.JOB_ASSIGN_UNIQ, [b"H:2", b"f", b"u2", b"b"])])
        self.assertEqual(worker.grab(P.GRAB_JOB_ALL), [(P.JOB_ASSIGN_ALL, [b"H:3", b"f", b"u3", b"red", b"c"])])
        self.assertEqual(worker.grab(P.GRAB_JOB_ALL), [(P.JOB_ASSIGN_UNIQ, [b"H:4", b"f", b"u4", b"d"])])
        self.assertEqual(worker.grab(P.GRAB_JOB_UNIQ), [(P.JOB_ASSIGN_UNIQ, [b"H:5", b"f", b"u5", b"e"])])

    def test_workerHoldsMany(self) -> None:
        """
        A worker may grab again before completing.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        client.created(background=True)
        client.created(background=True)
        worker.take()
        worker.take()
        self.assertEqual(self.status(), (2, 2, 1))


class SleepTests(JobServerTestCase):
    """
    PRE_SLEEP and NOOP (3.5).
    """

    def test_wakeSleepersOfTheFunction(self) -> None:
        """
        A new job NOOPs the function's sleeping workers once; awake workers
        and other functions' workers get nothing.
        """
        a, b, awake, other, client = (self.conn() for _ in range(5))
        for worker in (a, b, awake):
            worker.canDo(b"f")
        other.canDo(b"g")
        for worker in (a, b, other):
            self.server.preSleep(worker.peer)
        client.created(background=True)
        client.created(background=True)
        self.assertEqual(a.packets(), [(P.NOOP, [])])
        self.assertEqual(b.packets(), [(P.NOOP, [])])
        self.assertEqual(awake.packets(), [])
        self.assertEqual(other.packets(), [])

    def test_immediateNoop(self) -> None:
        """
        PRE_SLEEP with a job waiting is answered by a NOOP at once.
        """
        client, worker = self.conn(), self.conn()
        client.created(background=True)
        worker.canDo(b"f")
        self.server.preSleep(worker.peer)
        self.assertEqual(worker.packets(), [(P.NOOP, [])])

    def test_workerWakeup(self) -> None:
        """
        With worker wakeup 1, each new job wakes one sleeper, in turn.
        """
        self.server.workerWakeup = 1
        workers = [self.conn() for _ in range(3)]
        client = self.conn()
        for worker in workers:
            worker.canDo(b"f")
            self.server.preSleep(worker.peer)
        for n in range(3):
            client.created(background=True)
            self.assertEqual([len(w.packets()) for w in workers], [int(i == n) for i in range(3)])

    def test_preSleepTwice(self) -> None:
        """
        A worker that sends PRE_SLEEP again after a NOOP but without a GRAB
        is still woken by the next job (gearmand never wakes it).
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        self.server.preSleep(worker.peer)
        client.created(background=True)
        self.assertEqual(worker.packets(), [(P.NOOP, [])])
        worker.take()
        self.server.preSleep(worker.peer)
        self.server.preSleep(worker.peer)
        client.created(background=True)
        self.assertEqual(worker.packets(), [(P.NOOP, [])])


class ResultTests(JobServerTestCase):
    """
    Forwarding, ownership and exceptions (3.1, 3.6).
    """

    def setUp(self) -> None:
        super().setUp()
        self.client, self.worker = self.conn(), self.conn()
        self.worker.canDo(b"f")
        self.handle = self.client.created()
        self.worker.take()

    def test_forwardedRaw(self) -> None:
        """
        WORK_DATA, WARNING and STATUS are forwarded byte for byte; the
        status is stored as atoi read it.
        """
        h = self.handle
        self.server.workData(self.worker.peer, P.WORK_DATA, h, h + b"\0a\0b")
        self.server.workData(self.worker.peer, P.WORK_WARNING, h, h + b"\0w")
        self.server.workStatus(self.worker.peer, h, b"50%", b"100", h + b"\x0050%\x00100")
        self.assertEqual(
            self.client.packets(),
            [(P.WORK_DATA, [h, b"a\0b"]), (P.WORK_WARNING, [h, b"w"]), (P.WORK_STATUS, [h, b"50%", b"100"])],
        )
        self.assertEqual(self.server.getStatus(h), h + b"\x001\x001\x0050\x00100")

    def test_notHolder(self) -> None:
        """
        WORK_* from a connection not holding the job get gearmand's
        JOB_NOT_FOUND errors.
        """
        other = self.conn()
        h = self.handle
        self.server.workData(other.peer, P.WORK_DATA, h, h + b"\0x")
        self.server.workStatus(other.peer, h, b"1", b"2", h + b"\x001\x002")
        self.server.workComplete(other.peer, h, h + b"\0")
        self.server.workFail(other.peer, h)
        self.server.workException(other.peer, h, h + b"\0e")
        self.server.workFail(other.peer, b"x" * 64)
        self.assertEqual(
            [args for _, args in other.packets()],
            [
                [b"JOB_NOT_FOUND", b"Job does not exist on server"],
                [b"JOB_NOT_FOUND", b"Job given in work result not found"],
                [b"JOB_NOT_FOUND", b"Job given in work result not found"],
                [b"JOB_NOT_FOUND", b"Job given in work result not found"],
                [b"JOB_NOT_FOUND", b"An exception was received for a job that does not exist"],
                [b"ARGUMENT_TOO_LARGE", b"Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf"],
            ],
        )

    def test_exception(self) -> None:
        """
        WORK_EXCEPTION reaches exceptions clients as is and others as a
        WORK_FAIL with the bare handle; the job ends: the WORK_FAIL that
        Perl's worker sends right after is accepted quietly, any other is
        not found.
        """
        catcher = self.conn(exceptions=True)
        catcher.created()
        h = self.handle
        self.server.workException(self.worker.peer, h, h + b"\0boom")
        self.assertEqual(self.client.packets(), [(P.WORK_FAIL, [h])])
        self.assertEqual(self.client.out, [])
        self.assertEqual(catcher.packets(), [])  # a different job
        self.server.workFail(self.worker.peer, h)
        self.assertEqual(self.worker.packets(), [])
        self.server.workFail(self.worker.peer, h)
        self.assertEqual(self.worker.packets()[-1][1][0], b"JOB_NOT_FOUND")

    def test_exceptionsClient(self) -> None:
        """
        A client with the exceptions option gets the WORK_EXCEPTION.
        """
        self.client.peer.exceptions = True
        h = self.handle
        self.server.workException(self.worker.peer, h, h + b"\0boom")
        self.assertEqual(self.client.packets(), [(P.WORK_EXCEPTION, [h, b"boom"])])

    def test_failAndComplete(self) -> None:
        """
        WORK_FAIL and WORK_COMPLETE end the job for everyone.
        """
        h = self.handle
        self.worker.complete(h, b"ok")
        self.assertEqual(self.client.packets(), [(P.WORK_COMPLETE, [h, b"ok"])])
        self.assertNotIn(h, self.server.jobs)
        self.assertEqual(self.status(), (0, 0, 1))


class RequeueTests(JobServerTestCase):
    """
    Worker loss and retries (3.7), CAN_DO_TIMEOUT (3.9).
    """

    def setUp(self) -> None:
        super().setUp()
        self.client, self.worker = self.conn(), self.conn()
        self.worker.canDo(b"f")

    def test_disconnectRequeuesToTail(self) -> None:
        """
        A lost worker's jobs go to the tail, newest grabbed first, with their
        status reset; clients are not told.
        """
        for data in (b"a", b"b", b"c", b"d"):
            self.client.created(data=data)
        first, _ = self.worker.take()
        self.worker.take()
        self.server.workStatus(self.worker.peer, first, b"1", b"2", first + b"\x001\x002")
        self.client.packets()
        self.worker.lose()
        self.assertEqual(self.client.packets(), [])
        self.assertEqual(self.server.getStatus(first), first + b"\x001\x000\x000\x000")
        other = self.conn()
        other.canDo(b"f")
        self.assertEqual([other.take()[1] for _ in range(4)], [b"c", b"d", b"b", b"a"])
        self.assertEqual(self.server.jobs[first].retries, 1)

    def test_cantDoAndReset(self) -> None:
        """
        CANT_DO requeues the jobs of that function only; RESET_ABILITIES all.
        """
        self.worker.canDo(b"g")
        self.client.created(b"f", data=b"f1")
        self.client.created(b"g", data=b"g1")
        self.worker.take()
        self.worker.take()
        self.server.cantDo(self.worker.peer, b"g")
        self.assertEqual(self.status(b"g"), (1, 0, 0))
        self.assertEqual(self.status(b"f"), (1, 1, 1))
        self.server.resetAbilities(self.worker.peer)
        self.assertEqual(self.status(b"f"), (1, 0, 0))

    def test_jobRetries(self) -> None:
        """
        With job retries 2 the second loss fails the job to its clients
        with a bare handle.
        """
        self.server.jobRetries = 2
        handle = self.client.created()
        self.worker.take()
        self.worker.lose()
        self.assertEqual(self.client.packets(), [])
        worker = self.conn()
        worker.canDo(b"f")
        worker.take()
        worker.lose()
        self.assertEqual(self.client.packets(), [(P.WORK_FAIL, [handle])])
        self.assertEqual(self.server.jobs, {})
        self.assertEqual(self.server.functions[b"f"].failed, 1)

    def test_timeout(self) -> None:
        """
        A job held longer than its CAN_DO_TIMEOUT goes back to the queue;
        the late WORK_COMPLETE is not found; the worker stays registered.
        """
        worker = self.conn()
        worker.canDo(b"t", timeout=1.0)
        handle = self.client.created(b"t")
        worker.take()
        self.clock.advance(0.9)
        self.assertEqual(self.status(b"t"), (1, 1, 1))
        self.clock.advance(0.1)
        self.assertEqual(self.status(b"t"), (1, 0, 1))
        worker.complete(handle)
        self.assertEqual(worker.packets()[0][1][0], b"JOB_NOT_FOUND")
        self.assertEqual(self.client.packets(), [])

    def test_timeoutCancelledOnComplete(self) -> None:
        """
        Completing in time cancels the timer.
        """
        worker = self.conn()
        worker.canDo(b"t", timeout=1.0)
        handle = self.client.created(b"t")
        worker.take()
        worker.complete(handle)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ClientLossTests(JobServerTestCase):
    """
    Client disconnects (3.8).
    """

    def test_queuedJobDropped(self) -> None:
        """
        A queued job whose only client left is freed at the next GRAB.
        """
        client, worker = self.conn(), self.conn()
        client.created()
        client.lose()
        self.assertEqual(self.status(), (1, 0, 0))
        worker.canDo(b"f")
        self.assertEqual(worker.grab(), [(P.NO_JOB, [])])
        self.assertEqual(self.status(), (0, 0, 1))

    def test_runningJobFinishesSilently(self) -> None:
        """
        A running job whose client left finishes; its results are accepted.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created()
        worker.take()
        client.lose()
        worker.complete(handle)
        self.assertEqual(worker.packets(), [])

    def test_otherClientsKeepIt(self) -> None:
        """
        Another attached client keeps the job alive.
        """
        first, second, worker = self.conn(), self.conn(), self.conn()
        first.created(unique=b"u")
        second.created(unique=b"u")
        first.lose()
        worker.canDo(b"f")
        handle, _ = worker.take()
        worker.complete(handle)
        self.assertEqual(len(second.packets()), 1)

    def test_backgroundCoalescedSurvives(self) -> None:
        """
        A background submission that coalesced onto a foreground job keeps
        it alive when the foreground client leaves (gearmand drops it).
        """
        client, bg, worker = self.conn(), self.conn(), self.conn()
        client.created(unique=b"u")
        bg.created(unique=b"u", background=True)
        client.lose()
        worker.canDo(b"f")
        self.assertEqual(worker.take()[1], b"x")

    def test_newSubmitAfterAbandon(self) -> None:
        """
        A submission with the unique of an abandoned job makes a new job.
        """
        client = self.conn()
        client.created(unique=b"u")
        client.lose()
        again = self.conn()
        self.assertEqual(again.created(unique=b"u"), b"H:2")


class MaxQueueTests(JobServerTestCase):
    """
    maxqueue (3.10).
    """

    def test_limit(self) -> None:
        """
        A new job is refused when queued + running jobs of the function
        reach the limit of its priority.
        """
        client, worker = self.conn(), self.conn()
        self.server.function(b"f")
        self.server.setMaxQueue(b"f", (3, 2, 0))
        client.created(background=True)
        worker.canDo(b"f")
        worker.take()
        client.created(background=True, priority=HIGH)
        self.assertEqual(client.submit(), [(P.ERROR, [b"QUEUE_ERROR", b"Job queue is full"])])
        client.created(priority=HIGH)
        self.assertEqual(client.submit(priority=HIGH), [(P.ERROR, [b"QUEUE_ERROR", b"Job queue is full"])])
        client.created(priority=LOW)

    def test_unknownFunction(self) -> None:
        """
        Limits for an unknown function are ignored.
        """
        self.server.setMaxQueue(b"nope", (1, 1, 1))
        self.assertNotIn(b"nope", self.server.functions)


class StatusTests(JobServerTestCase):
    """
    GET_STATUS and GET_STATUS_UNIQUE (3.11).
    """

    def test_unknown(self) -> None:
        """
        Unknown handles and uniques are answered with zeros.
        """
        self.assertEqual(self.server.getStatus(b"nope"), b"nope\x000\x000\x000\x000")
        self.assertEqual(self.server.getStatusUnique(b"u"), b"u\x000\x000\x000\x000\x000")
        self.assertEqual(self.server.getStatusUnique(b""), b"\x000\x000\x000\x000\x000")

    def test_unique(self) -> None:
        """
        By unique: known, running, status and the number of waiting clients,
        across functions.
        """
        a, b, worker = self.conn(), self.conn(), self.conn()
        a.created(b"g", b"u")
        b.created(b"g", b"u")
        worker.canDo(b"g")
        handle, _ = worker.take()
        self.server.workStatus(worker.peer, handle, b"3", b"4", handle + b"\x003\x004")
        self.assertEqual(self.server.getStatusUnique(b"u"), b"u\x001\x001\x003\x004\x002")

    def test_cancelledStillKnown(self) -> None:
        """
        A cancelled job still queued is known to GET_STATUS.
        """
        client = self.conn()
        handle = client.created(background=True)
        self.assertTrue(self.server.cancel(handle))
        self.assertEqual(self.server.getStatus(handle), handle + b"\x001\x000\x000\x000")


class EpochTests(JobServerTestCase):
    """
    Epoch jobs (3.12), woken by a timer (gearmand has none).
    """

    def test_heldUntilDue(self) -> None:
        """
        A future job counts as queued NORMAL, cannot be grabbed, and at its
        time is queued and wakes sleeping workers.
        """
        self.clock.advance(1000)
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        self.server.preSleep(worker.peer)
        client.created(data=b"later", background=True, when=1010)
        self.assertEqual(self.server.functions[b"f"].queued, [0, 1, 0])
        self.assertEqual(worker.packets(), [])
        self.clock.advance(9)
        self.assertEqual(worker.grab(), [(P.NO_JOB, [])])
        self.server.preSleep(worker.peer)
        self.clock.advance(1)
        self.assertEqual(worker.packets(), [(P.NOOP, [])])
        self.assertEqual(worker.take()[1], b"later")

    def test_pastRunsNow(self) -> None:
        """
        An epoch in the past (or 0) runs at once.
        """
        self.clock.advance(1000)
        client, worker = self.conn(), self.conn()
        client.created(data=b"now", background=True, when=5)
        worker.canDo(b"f")
        self.assertEqual(worker.take()[1], b"now")

    def test_doesNotBlockLow(self) -> None:
        """
        A future NORMAL job does not keep LOW jobs from running.
        """
        client, worker = self.conn(), self.conn()
        client.created(data=b"future", background=True, when=10**9)
        client.created(data=b"low", priority=LOW, background=True)
        worker.canDo(b"f")
        self.assertEqual(worker.take()[1], b"low")

    def test_timerRearmed(self) -> None:
        """
        An earlier job submitted later moves the timer forward.
        """
        client = self.conn()
        client.created(data=b"b", background=True, when=100)
        client.created(data=b"a", background=True, when=50)
        self.clock.advance(50)
        self.assertEqual(len(self.server.functions[b"f"].queues[NORMAL]), 1)
        self.clock.advance(50)
        self.assertEqual(len(self.server.functions[b"f"].queues[NORMAL]), 2)


class CancelDropTests(JobServerTestCase):
    """
    cancel job and drop function.
    """

    def test_cancel(self) -> None:
        """
        Cancelling fails the job to its clients (once: they are detached);
        a queued job is reaped at the next GRAB.
        """
        client, worker = self.conn(), self.conn()
        handle = client.created()
        self.assertTrue(self.server.cancel(handle))
        self.assertTrue(self.server.cancel(handle))
        self.assertEqual(client.packets(), [(P.WORK_FAIL, [handle])])
        worker.canDo(b"f")
        self.assertEqual(worker.grab(), [(P.NO_JOB, [])])
        self.assertFalse(self.server.cancel(handle))

    def test_drop(self) -> None:
        """
        Only an idle function can be dropped: none with workers, running or
        queued jobs; the name matches in any case.
        """
        client, worker = self.conn(), self.conn()
        self.server.function(b"Idle")
        self.assertTrue(self.server.dropFunction(b"iDLE"))
        self.assertIsNone(self.server.dropFunction(b"idle"))
        client.created(b"busy", background=True)
        self.assertFalse(self.server.dropFunction(b"busy"))
        worker.canDo(b"w")
        self.assertFalse(self.server.dropFunction(b"w"))


class IdleTests(JobServerTestCase):
    """
    whenIdle.
    """

    def test_whenIdle(self) -> None:
        """
        The callback runs once no job is running.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created()
        worker.take()
        called = []
        self.server.whenIdle(lambda: called.append(True))
        self.assertEqual(called, [])
        worker.complete(handle)
        self.assertEqual(called, [True])


class AtoiTests(SynchronousTestCase):
    """
    Tests for L{atoi}.
    """

    def test_atoi(self) -> None:
        """
        Leading integers are read as C's strtol does.
        """
        for text, value in ((b"42", 42), (b" -7x", -7), (b"+3", 3), (b"junk", 0), (b"", 0), (b"50%", 50)):
            self.assertEqual(atoi(text), value)


class WakeOneTests(JobServerTestCase):
    """
    Each new job wakes one sleeper (gearmand wakes them all), and no job is
    left with nobody coming for it.
    """

    def sleepers(self, count: int, *functions: bytes):
        workers = [self.conn() for _ in range(count)]
        for worker in workers:
            worker.canDo(*(functions or (b"f",)))
            self.server.preSleep(worker.peer)
        return workers

    def test_onePerJob(self) -> None:
        """
        With 100 sleepers, one job NOOPs one of them; the next job another.
        """
        workers = self.sleepers(100)
        client = self.conn()
        client.created(background=True)
        self.assertEqual(sum(len(w.packets()) for w in workers), 1)
        client.created(background=True)
        self.assertEqual(sum(len(w.packets()) for w in workers), 1)

    def test_wokenWorkerLost(self) -> None:
        """
        If the woken worker disconnects without grabbing, another sleeper is
        woken for the job.
        """
        first, second = self.sleepers(2)
        self.conn().created(background=True)
        self.assertEqual((len(first.packets()), len(second.packets())), (1, 0))
        first.lose()
        self.assertEqual(second.packets(), [(P.NOOP, [])])

    def test_wokenWorkerTakesOtherWork(self) -> None:
        """
        If the woken worker takes another function's job, a sleeper of the
        first function is woken.
        """
        [both] = self.sleepers(1, b"f", b"g")
        [onlyF] = self.sleepers(1, b"f")
        client = self.conn()
        client.created(b"f", background=True)
        self.assertEqual((len(both.packets()), len(onlyF.packets())), (1, 0))
        client.created(b"g", background=True)
        # g is its newest function, so it takes the g job (H:2).
        self.assertEqual(both.take()[0], b"H:2")
        self.assertEqual(onlyF.packets(), [(P.NOOP, [])])
