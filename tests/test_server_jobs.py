"""
Tests for L{gearman_tw.server.jobs}: gearmand 1.1's job semantics (reference
section 3), without I/O.
"""

import ast
import socket
from typing import List, Tuple

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from gearman_tw.interfaces import IJobServer
from gearman_tw.protocol import RES, PacketType, encode, parseAll
from gearman_tw.queues.memory import MemoryQueue
from gearman_tw.server import jobs, model, runqueue
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.model import HIGH, LOW, NORMAL
from gearman_tw.server.packets import PacketPeer
from gearman_tw.server.protocol import GRAB_FORMS, statusPayload

P = PacketType

NO_JOB: Tuple[int, List[bytes]] = (P.NO_JOB, [])
NOOP: Tuple[int, List[bytes]] = (P.NOOP, [])
QUEUE_FULL = (P.ERROR, [b"QUEUE_ERROR", b"Job queue is full"])
NOT_FOUND_DATA = (P.ERROR, [b"JOB_NOT_FOUND", b"Job does not exist on server"])
NOT_FOUND_RESULT = (P.ERROR, [b"JOB_NOT_FOUND", b"Job given in work result not found"])
NOT_FOUND_EXCEPTION = (
    P.ERROR,
    [b"JOB_NOT_FOUND", b"An exception was received for a job that does not exist"],
)
HANDLE_TOO_LARGE = (
    P.ERROR,
    [
        b"ARGUMENT_TOO_LARGE",
        b"Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf",
    ],
)


class Conn:
    """
    A connection that records the packets it is sent.
    """

    def __init__(self, server: JobServer, exceptions: bool = False, fd: int = 1) -> None:
        self.server = server
        self.out: List[bytes] = []
        self.peer = PacketPeer(self.out.append, fd, "127.0.0.1", exceptions)
        server.peerConnected(self.peer)

    def raw(self) -> bytes:
        """
        Everything sent since the last call, as bytes.
        """
        data = b"".join(self.out)
        self.out.clear()
        return data

    def packets(self) -> List[Tuple[int, List[bytes]]]:
        """
        The packets sent since the last call, as (type, arguments).
        """
        return [(ptype, args) for ptype, args, _ in parseAll(self.raw(), magic=RES)]

    # Client

    def submit(self, name=b"f", unique=b"", data=b"x", priority=NORMAL, background=False, **kw):
        self.server.submit(self.peer, name, unique, data, priority, background, **kw)
        return self.packets()

    def created(self, *args, **kwargs) -> bytes:
        [(ptype, [handle])] = self.submit(*args, **kwargs)
        assert ptype == P.JOB_CREATED, ptype
        return handle

    def lose(self) -> None:
        self.server.peerLost(self.peer)

    # Worker

    def canDo(self, *names: bytes, timeout: float = 0) -> None:
        for name in names:
            self.server.canDo(self.peer, name, timeout)

    def sleep(self):
        self.server.preSleep(self.peer)
        return self.packets()

    def grab(self, ptype=P.GRAB_JOB_UNIQ):
        self.server.grab(self.peer, GRAB_FORMS[ptype])
        return self.packets()

    def take(self) -> Tuple[bytes, bytes]:
        """
        Grab one job: (handle, data).
        """
        [(ptype, args)] = self.grab()
        assert ptype == P.JOB_ASSIGN_UNIQ, (ptype, args)
        return args[0], args[3]

    def data(self, handle: bytes, data: bytes = b"d", ptype=P.WORK_DATA) -> None:
        if ptype == P.WORK_WARNING:
            self.server.workWarning(self.peer, handle, data)
        else:
            self.server.workData(self.peer, handle, data)

    def status(self, handle: bytes, numerator: bytes, denominator: bytes) -> None:
        self.server.workStatus(self.peer, handle, numerator, denominator)

    def complete(self, handle: bytes, result: bytes = b"r") -> None:
        self.server.workComplete(self.peer, handle, result)

    def fail(self, handle: bytes) -> None:
        self.server.workFail(self.peer, handle)

    def exception(self, handle: bytes, data: bytes = b"boom") -> None:
        self.server.workException(self.peer, handle, data)


class JobServerTestCase(SynchronousTestCase):
    """
    A job server with handle prefix C{H} on a fake clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.server = JobServer(self.clock, handlePrefix=b"H")

    def conn(self, **kwargs) -> Conn:
        return Conn(self.server, **kwargs)

    def status(self, name: bytes = b"f") -> Tuple[int, int, int]:
        """
        C{status} for one function: total, running, workers.
        """
        function = self.server.functions[name]
        return (function.total, function.running, function.workers)

    def live(self) -> List[bytes]:
        """
        The handles of every live job, records included, sorted.
        """
        return sorted(job.handle for job in self.server.liveJobs())

    def queued(self, name: bytes = b"f") -> List[int]:
        """
        C{prioritystatus} for one function: queued HIGH, NORMAL, LOW.
        """
        return list(self.server.functions[name].queued)

    def watchLooks(self) -> List[bytes]:
        """
        From now on, note the name of each function the server looks at
        for work.

        @return: the names noted, in order.
        """
        looked: List[bytes] = []
        runQueue = self.server.runQueue
        live = runQueue.livePriority

        def counting(function):
            looked.append(function.name)
            return live(function)

        runQueue.livePriority = counting  # type: ignore[method-assign]
        return looked


class InterfaceTests(SynchronousTestCase):
    """
    L{JobServer} and L{IJobServer}.
    """

    def test_interface(self) -> None:
        """
        L{JobServer} provides L{IJobServer}.
        """
        self.assertTrue(verifyObject(IJobServer, JobServer(Clock())))

    def test_noCodec(self) -> None:
        """
        The job core (the server, its model and its run queue) imports
        nothing that knows the wire format: replies are calls on peers.
        """
        wire = {"gearman_tw.protocol", "gearman_tw.server.packets", "gearman_tw.server.writes"}
        for module in (jobs, model, runqueue):
            path = module.__file__
            assert path is not None
            with open(path, encoding="utf-8") as source:
                tree = ast.parse(source.read())
            imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
            imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
            self.assertEqual(imported & wire, set(), module.__name__)


class FunctionTests(JobServerTestCase):
    """
    Function records (3.1).
    """

    def test_createdOnFirstUse(self) -> None:
        """
        A function appears on CAN_DO, on any submission (foreground,
        background, refused for its queue limit or not) and when named by
        L{JobServer.function}.
        """
        worker, client = self.conn(), self.conn()
        worker.canDo(b"a")
        client.created(b"b", background=True)
        client.created(b"c")
        self.server.function(b"d")
        client.created(b"e", priority=LOW)
        self.assertEqual(list(self.server.functions), [b"a", b"b", b"c", b"d", b"e"])
        self.assertEqual(self.status(b"d"), (0, 0, 0))

    def test_keptWhenIdle(self) -> None:
        """
        A function stays after its last job and worker are gone, listed
        with zeros (while few functions are idle: see
        L{tests.test_server_functions}).
        """
        worker, client = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created()
        worker.take()
        worker.complete(handle)
        worker.lose()
        client.lose()
        self.assertEqual(self.status(), (0, 0, 0))

    def test_canDoTwice(self) -> None:
        """
        CAN_DO twice counts as two workers; CANT_DO drops both entries,
        RESET_ABILITIES every entry.
        """
        worker = self.conn()
        worker.canDo(b"f", b"f", b"g")
        self.assertEqual(self.status(), (0, 0, 2))
        self.server.cantDo(worker.peer, b"f")
        self.assertEqual(self.status(), (0, 0, 0))
        self.assertEqual(self.status(b"g"), (0, 0, 1))
        worker.canDo(b"f", b"f")
        self.server.resetAbilities(worker.peer)
        self.assertEqual((self.status(b"f"), self.status(b"g")), ((0, 0, 0), (0, 0, 0)))
        self.assertEqual(worker.peer.abilities, [])

    def test_cantDoUnknown(self) -> None:
        """
        CANT_DO of a function the worker never registered changes nothing and
        creates no function.
        """
        worker = self.conn()
        worker.canDo(b"f")
        self.server.cantDo(worker.peer, b"nope")
        self.assertEqual(self.status(), (0, 0, 1))
        self.assertNotIn(b"nope", self.server.functions)

    def test_lostWorkerUnregistered(self) -> None:
        """
        A lost worker no longer counts, however often it registered.
        """
        worker = self.conn()
        worker.canDo(b"f", b"f")
        worker.lose()
        self.assertEqual(self.status(), (0, 0, 0))
        self.assertNotIn(worker.peer, self.server.peers)

    def test_clientAndWorker(self) -> None:
        """
        One connection may be a client and a worker at once, and a worker
        may hold several jobs.
        """
        both = self.conn()
        both.canDo(b"f")
        first = both.created()
        second = both.created()
        self.assertEqual(both.take()[0], first)
        self.assertEqual(both.take()[0], second)
        self.assertEqual(self.status(), (2, 2, 1))
        both.complete(second, b"two")
        both.complete(first, b"one")
        self.assertEqual(
            both.packets(), [(P.WORK_COMPLETE, [second, b"two"]), (P.WORK_COMPLETE, [first, b"one"])]
        )


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
        self.assertEqual(client.created(unique=b"u", background=True), b"H:1")
        self.assertEqual(client.created(), b"H:2")

    def test_refusedConsumeNothing(self) -> None:
        """
        Refused submissions (unique too large, queue full) use no number.
        """
        client = self.conn()
        client.submit(unique=b"u" * 65)
        self.server.function(b"f")
        self.server.setMaxQueue(b"f", (1, 1, 1))
        self.assertEqual(client.created(), b"H:1")
        self.assertEqual(client.submit(), [QUEUE_FULL])
        self.assertEqual(client.created(b"g"), b"H:2")

    def test_neverReused(self) -> None:
        """
        Handles of ended jobs are not given out again.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created()
        worker.take()
        worker.complete(handle)
        client.packets()
        self.assertEqual(client.created(), b"H:2")

    def test_lengths(self) -> None:
        """
        JOB_CREATED carries the handle's exact length as the number gains
        digits and after it wraps from 4294967295 to 1, for queued records
        and other jobs alike.
        """
        client = self.conn()
        handles = [client.created(background=index % 3 != 0) for index in range(1, 102)]
        self.assertEqual(handles, [b"H:%d" % (number,) for number in range(1, 102)])
        self.server._lastHandle = 4294967293
        created = [client.created(background=index != 1) for index in range(4)]
        # H:1 to H:101 are still queued: their numbers are skipped.
        self.assertEqual(created, [b"H:4294967294", b"H:4294967295", b"H:102", b"H:103"])

    def test_wrapSkipsLiveJobs(self) -> None:
        """
        Once the counter comes round, numbers of live jobs (queued records,
        looked-up records, other jobs) are skipped: every job keeps its own
        handle and runs once.
        """
        client, worker, other = self.conn(), self.conn(), self.conn()
        client.created(background=True, data=b"r1")
        client.created(background=True, data=b"r2")
        client.created(data=b"fg3", unique=b"u")
        self.server.lookup(b"H:2")
        self.server._lastHandle = 4294967295
        self.assertEqual(client.created(background=True, data=b"r4"), b"H:4")
        self.assertEqual(client.created(data=b"fg5"), b"H:5")
        self.assertEqual(self.server.jobCount(), 5)
        worker.canDo(b"f")
        other.canDo(b"f")
        taken = [worker.take(), other.take(), worker.take(), other.take(), worker.take()]
        self.assertEqual(
            taken, [(b"H:1", b"r1"), (b"H:2", b"r2"), (b"H:3", b"fg3"), (b"H:4", b"r4"), (b"H:5", b"fg5")]
        )
        self.assertEqual(self.status(), (5, 5, 2))

    def test_prefix(self) -> None:
        """
        The prefix is used exactly, followed by a colon.
        """
        server = JobServer(self.clock, handlePrefix=b"my-prefix")
        self.assertEqual(Conn(server).created(), b"my-prefix:1")

    def test_defaultPrefix(self) -> None:
        """
        Without a prefix, handles start with H: and the host name.
        """
        server = JobServer(self.clock)
        self.assertEqual(Conn(server).created(), b"H:" + socket.gethostname().encode() + b":1")

    def test_counterPerServer(self) -> None:
        """
        Each server counts from 1.
        """
        Conn(self.server).created()
        self.assertEqual(Conn(JobServer(self.clock, handlePrefix=b"H")).created(), b"H:1")


class CoalescingTests(JobServerTestCase):
    """
    Unique-key coalescing (3.3).
    """

    def test_emptyNeverCoalesces(self) -> None:
        """
        Jobs without a unique key are always separate, even with the same
        data.
        """
        client = self.conn()
        self.assertEqual([client.created(data=b"d") for _ in range(3)], [b"H:1", b"H:2", b"H:3"])

    def test_dash(self) -> None:
        """
        C{-} coalesces on (function, data); with empty data it never does.
        """
        client = self.conn()
        self.assertEqual(client.created(unique=b"-", data=b"d"), b"H:1")
        self.assertEqual(client.created(unique=b"-", data=b"d", background=True), b"H:1")
        self.assertEqual(client.created(unique=b"-", data=b"e"), b"H:2")
        self.assertEqual(client.created(b"g", unique=b"-", data=b"d"), b"H:3")
        self.assertEqual(client.created(unique=b"-", data=b""), b"H:4")
        self.assertEqual(client.created(unique=b"-", data=b""), b"H:5")

    def test_dashIsNotAUnique(self) -> None:
        """
        A C{-} job does not coalesce with a job whose unique key is its data.
        """
        client = self.conn()
        self.assertEqual(client.created(unique=b"-", data=b"d"), b"H:1")
        self.assertEqual(client.created(unique=b"d", data=b"d"), b"H:2")
        self.assertEqual(client.created(unique=b"-", data=b"-"), b"H:3")

    def test_otherFunction(self) -> None:
        """
        The same unique under another function is a separate job.
        """
        client = self.conn()
        self.assertEqual(client.created(b"f", b"u"), b"H:1")
        self.assertEqual(client.created(b"g", b"u"), b"H:2")
        self.assertEqual(client.created(b"f", b"u"), b"H:1")

    def test_queuedOrRunning(self) -> None:
        """
        A submission coalesces with a queued job and with a running one;
        once the job ended the unique makes a new job.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        self.assertEqual(client.created(unique=b"u"), b"H:1")
        self.assertEqual(client.created(unique=b"u"), b"H:1")
        worker.take()
        self.assertEqual(client.created(unique=b"u"), b"H:1")
        worker.complete(b"H:1")
        self.assertEqual(client.packets(), [(P.WORK_COMPLETE, [b"H:1", b"r"])] * 3)
        self.assertEqual(client.created(unique=b"u"), b"H:2")

    def test_firstSubmissionWins(self) -> None:
        """
        A coalesced submission keeps the first data and priority (a later
        HIGH does not promote the job), even when the queue is full.
        """
        client, worker = self.conn(), self.conn()
        client.created(unique=b"u", data=b"first", priority=LOW)
        client.created(data=b"normal")
        self.server.setMaxQueue(b"f", (1, 1, 1))
        self.assertEqual(client.created(unique=b"u", data=b"second", priority=HIGH), b"H:1")
        self.assertEqual(client.created(unique=b"u", data=b"third", background=True), b"H:1")
        self.assertEqual(self.queued(), [0, 1, 1])
        worker.canDo(b"f")
        self.assertEqual([worker.take()[1] for _ in range(2)], [b"normal", b"first"])

    def test_everyEntryGetsEveryPacket(self) -> None:
        """
        Each foreground submission gets every later WORK_DATA, WARNING,
        STATUS and COMPLETE; one connection that submitted twice gets each
        packet twice; nothing earlier is replayed to a late joiner.
        """
        first, second, worker = self.conn(), self.conn(), self.conn()
        worker.canDo(b"f")
        handle = first.created(unique=b"u")
        worker.take()
        worker.data(handle, b"early")
        self.assertEqual(first.packets(), [(P.WORK_DATA, [handle, b"early"])])
        second.created(unique=b"u")
        second.created(unique=b"u")
        worker.data(handle, b"d")
        worker.data(handle, b"w", P.WORK_WARNING)
        worker.status(handle, b"1", b"2")
        worker.complete(handle, b"done")
        later = [
            (P.WORK_DATA, [handle, b"d"]),
            (P.WORK_WARNING, [handle, b"w"]),
            (P.WORK_STATUS, [handle, b"1", b"2"]),
            (P.WORK_COMPLETE, [handle, b"done"]),
        ]
        self.assertEqual(first.packets(), later)
        self.assertEqual(second.packets(), [packet for packet in later for _ in range(2)])

    def test_twiceGetsFailTwice(self) -> None:
        """
        A connection that submitted twice gets WORK_FAIL twice too.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created(unique=b"u")
        client.created(unique=b"u")
        worker.take()
        worker.fail(handle)
        self.assertEqual(client.packets(), [(P.WORK_FAIL, [handle])] * 2)

    def test_backgroundAttachesNothing(self) -> None:
        """
        A background submission joining a foreground job gets JOB_CREATED
        with its handle and no work packets; the foreground client gets
        them once.
        """
        client, bg, worker = self.conn(), self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created(unique=b"u")
        self.assertEqual(bg.created(unique=b"u", background=True), handle)
        worker.take()
        worker.data(handle)
        worker.complete(handle)
        self.assertEqual(bg.packets(), [])
        self.assertEqual([ptype for ptype, _ in client.packets()], [P.WORK_DATA, P.WORK_COMPLETE])

    def test_foregroundJoinsBackground(self) -> None:
        """
        A foreground submission joining a background job gets its results.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created(unique=b"u", data=b"bg", background=True)
        self.assertEqual(client.created(unique=b"u", data=b"fg"), handle)
        self.assertEqual(worker.take(), (handle, b"bg"))
        worker.complete(handle)
        self.assertEqual(client.packets(), [(P.WORK_COMPLETE, [handle, b"r"])])

    def test_uniqueTooLarge(self) -> None:
        """
        Uniques over 64 bytes are refused; 64 bytes are kept whole and
        coalesce (gearmand truncates them to 63 and never coalesces).
        """
        client = self.conn()
        for background in (False, True):
            self.assertEqual(
                client.submit(unique=b"u" * 65, background=background),
                [(P.ERROR, [b"ARGUMENT_TOO_LARGE", b"Unique value too large"])],
            )
        self.assertEqual(self.server.jobs, {})
        handle = client.created(unique=b"u" * 64)
        self.assertEqual(client.created(unique=b"u" * 64), handle)
        self.assertEqual(self.server.jobs[handle].unique, b"u" * 64)

    def test_cancelledReleasesUnique(self) -> None:
        """
        A cancelled job gives up its unique at once: a new submission makes
        a new job, which runs.
        """
        client, worker = self.conn(), self.conn()
        handle = client.created(unique=b"u", data=b"old", background=True)
        self.server.cancel(handle)
        self.assertEqual(client.created(unique=b"u", data=b"new", background=True), b"H:2")
        worker.canDo(b"f")
        self.assertEqual(worker.take(), (b"H:2", b"new"))


class OrderTests(JobServerTestCase):
    """
    Queue order and dispatch (3.4).
    """

    def test_priorityThenFIFO(self) -> None:
        """
        Within a function: HIGH, NORMAL, LOW, each first in first out.
        """
        client, worker = self.conn(), self.conn()
        for data, priority in (
            (b"l1", LOW),
            (b"n1", NORMAL),
            (b"h1", HIGH),
            (b"n2", NORMAL),
            (b"h2", HIGH),
            (b"l2", LOW),
        ):
            client.created(data=data, priority=priority, background=True)
        self.assertEqual(self.queued(), [2, 2, 2])
        worker.canDo(b"f")
        self.assertEqual([worker.take()[1] for _ in range(6)], [b"h1", b"h2", b"n1", b"n2", b"l1", b"l2"])
        self.assertEqual(worker.grab(), [NO_JOB])

    def test_newestFunctionFirst(self) -> None:
        """
        Functions are tried newest CAN_DO first, so a LOW job of the newer
        function beats a HIGH job of the older one.
        """
        client, worker = self.conn(), self.conn()
        client.created(b"old", data=b"high", priority=HIGH, background=True)
        client.created(b"new", data=b"low", priority=LOW, background=True)
        client.created(b"new", data=b"low2", priority=LOW, background=True)
        worker.canDo(b"old", b"new")
        self.assertEqual([worker.take()[1] for _ in range(3)], [b"low", b"low2", b"high"])

    def test_reRegisteredIsNewest(self) -> None:
        """
        Registering a function again makes that entry the newest.
        """
        client, worker = self.conn(), self.conn()
        client.created(b"a", data=b"a", background=True)
        client.created(b"b", data=b"b", background=True)
        worker.canDo(b"a", b"b", b"a")
        self.assertEqual(worker.take()[1], b"a")

    def test_noRoundRobin(self) -> None:
        """
        Without round robin a worker drains its newest function first.
        """
        client, worker = self.conn(), self.conn()
        for name in (b"a", b"b"):
            for n in range(2):
                client.created(name, data=name + b"%d" % n, background=True)
        worker.canDo(b"a", b"b")
        self.assertEqual([worker.take()[1] for _ in range(4)], [b"b0", b"b1", b"a0", b"a1"])

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
        self.assertEqual(worker.take()[1], b"c0")
        self.assertEqual([f.name for f, _ in worker.peer.abilities], [b"c", b"a", b"b"])
        self.assertEqual([worker.take()[1] for _ in range(5)], [b"b0", b"a0", b"c1", b"b1", b"a1"])

    def test_roundRobinSkipsEmpty(self) -> None:
        """
        With round robin, a function with no job is not moved.
        """
        server = JobServer(self.clock, handlePrefix=b"H", roundRobin=True)
        client, worker = Conn(server), Conn(server)
        client.created(b"a", data=b"a0", background=True)
        client.created(b"a", data=b"a1", background=True)
        worker.canDo(b"a", b"b")
        self.assertEqual([worker.take()[1] for _ in range(2)], [b"a0", b"a1"])
        self.assertEqual([f.name for f, _ in worker.peer.abilities], [b"a", b"b"])

    def test_pullModel(self) -> None:
        """
        Whoever asks first gets the job, whatever the registration order.
        """
        client, first, second = self.conn(), self.conn(), self.conn()
        first.canDo(b"f")
        second.canDo(b"f")
        client.created(data=b"1", background=True)
        client.created(data=b"2", background=True)
        self.assertEqual(second.take()[1], b"1")
        self.assertEqual(first.take()[1], b"2")

    def test_noAbilities(self) -> None:
        """
        A connection that registered nothing gets NO_JOB.
        """
        client = self.conn()
        client.created(background=True)
        for ptype in (P.GRAB_JOB, P.GRAB_JOB_UNIQ, P.GRAB_JOB_ALL):
            self.assertEqual(client.grab(ptype), [NO_JOB])

    def test_otherFunctionsOnly(self) -> None:
        """
        A worker gets only jobs of functions it registered.
        """
        client, worker = self.conn(), self.conn()
        client.created(b"g", background=True)
        worker.canDo(b"f")
        self.assertEqual(worker.grab(), [NO_JOB])
        self.assertEqual(self.status(b"g"), (1, 0, 0))


class AssignTests(JobServerTestCase):
    """
    JOB_ASSIGN formats (section 2) and reduce jobs (3.13).
    """

    def test_assignFormats(self) -> None:
        """
        GRAB_JOB gets JOB_ASSIGN, GRAB_JOB_UNIQ JOB_ASSIGN_UNIQ, and
        GRAB_JOB_ALL JOB_ASSIGN_ALL only for a reduce job, else
        JOB_ASSIGN_UNIQ; GRAB_JOB and GRAB_JOB_UNIQ hand out a reduce job
        without its reducer.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        client.created(unique=b"u1", data=b"a", background=True)
        client.created(unique=b"u2", data=b"b", background=True)
        client.created(unique=b"u3", data=b"c", reducer=b"red")
        client.created(unique=b"u4", data=b"d", background=True)
        client.created(unique=b"u5", data=b"e", background=True, reducer=b"red")
        client.created(unique=b"u6", data=b"f\0g", reducer=b"red")
        self.assertEqual(worker.grab(P.GRAB_JOB), [(P.JOB_ASSIGN, [b"H:1", b"f", b"a"])])
        self.assertEqual(worker.grab(P.GRAB_JOB_UNIQ), [(P.JOB_ASSIGN_UNIQ, [b"H:2", b"f", b"u2", b"b"])])
        self.assertEqual(
            worker.grab(P.GRAB_JOB_ALL), [(P.JOB_ASSIGN_ALL, [b"H:3", b"f", b"u3", b"red", b"c"])]
        )
        self.assertEqual(worker.grab(P.GRAB_JOB_ALL), [(P.JOB_ASSIGN_UNIQ, [b"H:4", b"f", b"u4", b"d"])])
        self.assertEqual(worker.grab(P.GRAB_JOB_UNIQ), [(P.JOB_ASSIGN_UNIQ, [b"H:5", b"f", b"u5", b"e"])])
        self.assertEqual(worker.grab(P.GRAB_JOB), [(P.JOB_ASSIGN, [b"H:6", b"f", b"f\0g"])])

    def test_exactBytes(self) -> None:
        """
        An empty unique is an empty argument: C{h\\0f\\0\\0data}.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        client.created(data=b"data")
        client.created(data=b"")
        self.server.grab(worker.peer, GRAB_FORMS[P.GRAB_JOB_UNIQ])
        self.assertEqual(worker.raw(), encode(P.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"data", magic=RES))
        self.assertEqual(worker.raw(), b"")
        self.server.grab(worker.peer, GRAB_FORMS[P.GRAB_JOB])
        self.assertEqual(worker.raw(), RES + b"\0\0\0\x0b\0\0\0\x06H:2\0f\0")

    def test_reduceCoalesces(self) -> None:
        """
        A reduce job coalesces like any other and keeps its reducer.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created(unique=b"u", reducer=b"r1")
        self.assertEqual(client.created(unique=b"u", reducer=b"r2"), handle)
        self.assertEqual(worker.grab(P.GRAB_JOB_ALL), [(P.JOB_ASSIGN_ALL, [handle, b"f", b"u", b"r1", b"x"])])


class ManyAbilitiesTests(JobServerTestCase):
    """
    A worker of thousands of functions: a GRAB or PRE_SLEEP looks only at
    those with work (gearmand: 0.27 ms a GRAB with 20,000 CAN_DOs; ours
    took 12 ms).
    """

    def setUp(self) -> None:
        super().setUp()
        self.looked = self.watchLooks()
        self.worker = self.conn()
        self.names = [b"f%d" % i for i in range(5000)]
        self.worker.canDo(*self.names)

    def test_grabLooksAtWorkOnly(self) -> None:
        """
        GRAB takes the job of the newest function with work, looking at no
        function without any.
        """
        client = self.conn()
        old = client.created(name=b"f10")
        new = client.created(name=b"f4000")
        self.worker.packets()
        self.assertEqual(self.worker.take()[0], new)
        self.assertLessEqual(len(self.looked), 2)
        del self.looked[:]
        self.assertEqual(self.worker.take()[0], old)
        self.assertLessEqual(len(self.looked), 2)
        del self.looked[:]
        self.assertEqual(self.worker.grab(), [(P.NO_JOB, [])])
        self.assertLessEqual(len(self.looked), 2)

    def test_preSleepLooksAtWorkOnly(self) -> None:
        """
        PRE_SLEEP answers NOOP at once when one of the worker's functions
        has work, looking at no function without any.
        """
        client = self.conn()
        client.created(name=b"f2500")
        self.worker.packets()
        self.assertEqual(self.worker.sleep(), [(P.NOOP, [])])
        self.assertLessEqual(len(self.looked), 1)

    def test_orderAndChanges(self) -> None:
        """
        Newest registration first still holds after CANT_DO and another
        CAN_DO of an older function; cancelled heads are still reaped.
        """
        client = self.conn()
        handles = {name: client.created(name=name) for name in (b"f1", b"f2", b"f3")}
        self.worker.canDo(b"f1")
        self.server.cancel(handles[b"f3"])
        self.server.cantDo(self.worker.peer, b"f2")
        self.assertEqual(self.worker.take()[0], handles[b"f1"])
        self.assertEqual(self.worker.grab(), [(P.NO_JOB, [])])
        self.assertEqual(self.queued(b"f3"), [0, 0, 0])
        self.assertEqual(self.queued(b"f2"), [0, 1, 0])


class SleepTests(JobServerTestCase):
    """
    PRE_SLEEP and NOOP (3.5).
    """

    def test_wakeSleepersOfTheFunction(self) -> None:
        """
        A new job NOOPs a sleeping worker of its function; awake workers
        and other functions' workers get nothing.
        """
        a, awake, other, client = (self.conn() for _ in range(4))
        for worker in (a, awake):
            worker.canDo(b"f")
        other.canDo(b"g")
        self.assertEqual(a.sleep(), [])
        self.assertEqual(other.sleep(), [])
        client.created(background=True)
        self.assertEqual(a.packets(), [NOOP])
        self.assertEqual(awake.packets(), [])
        self.assertEqual(other.packets(), [])

    def test_oneNoopUntilGrab(self) -> None:
        """
        A worker gets one NOOP until its next GRAB, which clears the flag.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        worker.sleep()
        client.created(data=b"1", background=True)
        client.created(data=b"2", background=True)
        self.assertEqual(worker.packets(), [NOOP])
        worker.take()
        client.created(data=b"3", background=True)
        self.assertEqual(worker.packets(), [])
        worker.take()
        worker.take()
        self.assertEqual(worker.grab(), [NO_JOB])
        self.assertEqual(worker.sleep(), [])
        client.created(data=b"4", priority=LOW)
        self.assertEqual(worker.packets(), [NOOP])

    def test_grabWakes(self) -> None:
        """
        Any GRAB wakes a sleeping worker: a job arriving afterwards NOOPs
        nobody.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        worker.sleep()
        self.assertEqual(worker.grab(P.GRAB_JOB_ALL), [NO_JOB])
        client.created(background=True)
        self.assertEqual(worker.packets(), [])
        self.assertFalse(worker.peer.sleeping)

    def test_immediateNoop(self) -> None:
        """
        PRE_SLEEP with a job waiting for any of the worker's functions is
        answered by a NOOP at once; with jobs only for other functions, not.
        """
        client, worker = self.conn(), self.conn()
        client.created(b"g", background=True)
        worker.canDo(b"f")
        self.assertEqual(worker.sleep(), [])
        self.assertEqual(worker.grab(), [NO_JOB])
        worker.canDo(b"g", b"h")
        self.assertEqual(worker.sleep(), [NOOP])
        self.assertEqual(worker.take()[0], b"H:1")
        self.assertEqual(worker.sleep(), [])

    def test_canDoWhileSleeping(self) -> None:
        """
        A worker registering a function while asleep is woken by that
        function's jobs.
        """
        client, worker = self.conn(), self.conn()
        worker.sleep()
        worker.canDo(b"f")
        client.created()
        self.assertEqual(worker.packets(), [NOOP])

    def test_requeueWakes(self) -> None:
        """
        A requeued job NOOPs the sleeping workers of its function, for
        CANT_DO and for a lost worker alike.
        """
        client, w1, w2, w3 = (self.conn() for _ in range(4))
        for worker in (w1, w2):
            worker.canDo(b"f")
        handle = client.created()
        w1.take()
        self.assertEqual(w2.grab(), [NO_JOB])
        w2.sleep()
        self.server.cantDo(w1.peer, b"f")
        self.assertEqual(w2.packets(), [NOOP])
        self.assertEqual(w2.take()[0], handle)
        w3.canDo(b"f")
        w3.sleep()
        w2.lose()
        self.assertEqual(w3.packets(), [NOOP])

    def test_lostSleepingHolderNotNooped(self) -> None:
        """
        A worker that slept while holding a job and is lost is not sent a
        NOOP for its own requeued job; a real sleeper is.
        """
        client, holder, sleeper = self.conn(), self.conn(), self.conn()
        holder.canDo(b"f")
        sleeper.canDo(b"f")
        client.created()
        holder.take()
        holder.sleep()
        sleeper.sleep()
        holder.lose()
        self.assertEqual(holder.packets(), [])
        self.assertEqual(sleeper.packets(), [NOOP])

    def test_workerWakeup(self) -> None:
        """
        With worker wakeup 1, each new job wakes one sleeper, in turn;
        woken workers going back to sleep join the end of the line.
        """
        self.server.workerWakeup = 1
        workers = [self.conn() for _ in range(3)]
        client = self.conn()
        for worker in workers:
            worker.canDo(b"f")
            worker.sleep()
        for n in range(3):
            client.created(background=True)
            self.assertEqual([len(w.packets()) for w in workers], [int(i == n) for i in range(3)])
        client.created(background=True)
        self.assertEqual([len(w.packets()) for w in workers], [0, 0, 0])
        for worker in (workers[2], workers[0], workers[1]):
            worker.take()
        for worker in (workers[1], workers[2], workers[0]):
            self.assertEqual(worker.sleep(), [NOOP])
        for worker in workers:
            worker.grab()
            self.assertEqual(worker.grab(), [NO_JOB])
            self.assertEqual(worker.sleep(), [])
        for n in range(3):
            client.created(background=True)
            self.assertEqual([len(w.packets()) for w in workers], [int(i == n) for i in range(3)])

    def test_workerWakeupTwo(self) -> None:
        """
        With worker wakeup 2, each new job wakes two sleepers.
        """
        server = JobServer(self.clock, handlePrefix=b"H", workerWakeup=2)
        workers = [Conn(server) for _ in range(5)]
        for worker in workers:
            worker.canDo(b"f")
            worker.sleep()
        client = Conn(server)
        client.created(background=True)
        self.assertEqual([len(w.packets()) for w in workers], [1, 1, 0, 0, 0])
        client.created(background=True)
        self.assertEqual([len(w.packets()) for w in workers], [0, 0, 1, 1, 0])

    def test_preSleepTwice(self) -> None:
        """
        A worker that sends PRE_SLEEP again after a NOOP but without a GRAB
        is still woken by the next job (gearmand never wakes it).
        """
        client, worker, other = self.conn(), self.conn(), self.conn()
        worker.canDo(b"f")
        other.canDo(b"f")
        worker.sleep()
        client.created(background=True)
        self.assertEqual(worker.packets(), [NOOP])
        other.take()
        self.assertEqual(worker.sleep(), [])
        client.created(background=True)
        self.assertEqual(worker.packets(), [NOOP])

    def test_preSleepReapsCancelled(self) -> None:
        """
        PRE_SLEEP frees the cancelled jobs at the heads of the worker's
        queues, as gearmand does: with nothing else queued it sleeps (no
        NOOP) and the jobs are no longer counted; with a live job behind
        them it gets a NOOP.
        """
        client, a, b = self.conn(), self.conn(), self.conn()
        for data in (b"1", b"2", b"3"):
            client.created(data=data, background=True)
        self.server.cancel(b"H:1")
        self.server.cancel(b"H:2")
        a.canDo(b"f")
        self.assertEqual(a.sleep(), [NOOP])
        self.assertEqual(self.status(), (1, 0, 1))
        self.assertEqual(self.live(), [b"H:3"])
        client.created(b"k", background=True)
        self.server.cancel(b"H:4")
        b.canDo(b"k")
        self.assertEqual(b.sleep(), [])
        self.assertEqual(self.status(b"k"), (0, 0, 1))
        self.assertEqual(client.packets(), [])

    def test_preSleepReapsAcrossPriorities(self) -> None:
        """
        A cancelled HIGH job is freed on PRE_SLEEP and the LOW job behind
        it wakes the worker.
        """
        client, worker = self.conn(), self.conn()
        high = client.created(data=b"h", priority=HIGH, background=True)
        client.created(data=b"l", priority=LOW, background=True)
        self.server.cancel(high)
        worker.canDo(b"f")
        self.assertEqual(worker.sleep(), [NOOP])
        self.assertEqual(self.queued(), [0, 0, 1])

    def test_preSleepAbandoned(self) -> None:
        """
        A foreground job abandoned by its client is freed on PRE_SLEEP too.
        """
        client, worker = self.conn(), self.conn()
        client.created()
        client.lose()
        worker.canDo(b"f")
        self.assertEqual(worker.sleep(), [])
        self.assertEqual(self.status(), (0, 0, 1))
        self.assertEqual(self.server.jobs, {})


class WakeOneTests(JobServerTestCase):
    """
    Each new job wakes one sleeper (gearmand wakes them all), and no job is
    left with nobody coming for it.
    """

    def sleepers(self, count: int, *functions: bytes) -> List[Conn]:
        workers = [self.conn() for _ in range(count)]
        for worker in workers:
            worker.canDo(*(functions or (b"f",)))
            worker.sleep()
        return workers

    def test_onePerJob(self) -> None:
        """
        With 100 sleepers, one job NOOPs one of them; the next job another.
        """
        workers = self.sleepers(100)
        client = self.conn()
        client.created(background=True)
        self.assertEqual([len(w.packets()) for w in workers[:2]], [1, 0])
        client.created(background=True)
        self.assertEqual([len(w.packets()) for w in workers[:2]], [0, 1])
        self.assertEqual(sum(len(w.packets()) for w in workers), 0)

    def test_wokenWorkerLost(self) -> None:
        """
        If the woken worker disconnects without grabbing, another sleeper is
        woken for the job.
        """
        first, second = self.sleepers(2)
        self.conn().created(background=True)
        self.assertEqual((len(first.packets()), len(second.packets())), (1, 0))
        first.lose()
        self.assertEqual(second.packets(), [NOOP])

    def test_wokenWorkerCantDo(self) -> None:
        """
        If the woken worker gives up the function (CANT_DO) without
        grabbing, another sleeper is woken.
        """
        first, second = self.sleepers(2)
        self.conn().created(background=True)
        self.assertEqual(first.packets(), [NOOP])
        self.server.cantDo(first.peer, b"f")
        self.assertEqual(second.packets(), [NOOP])

    def test_wokenWorkerResets(self) -> None:
        """
        If the woken worker sends RESET_ABILITIES without grabbing, another
        sleeper is woken.
        """
        first, second = self.sleepers(2)
        self.conn().created(background=True)
        self.assertEqual(first.packets(), [NOOP])
        self.server.resetAbilities(first.peer)
        self.assertEqual(second.packets(), [NOOP])

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
        self.assertEqual(onlyF.packets(), [NOOP])


class OwnershipTests(JobServerTestCase):
    """
    Only the connection holding a job may send WORK_* for it (3.1, 1.4).
    """

    def setUp(self) -> None:
        super().setUp()
        self.client, self.worker = self.conn(), self.conn()
        self.worker.canDo(b"f")
        self.handle = self.client.created()
        self.worker.take()

    def everyWork(self, conn: Conn, handle: bytes) -> List[Tuple[int, List[bytes]]]:
        conn.data(handle)
        conn.data(handle, b"w", P.WORK_WARNING)
        conn.status(handle, b"1", b"2")
        conn.complete(handle)
        conn.fail(handle)
        conn.exception(handle)
        return conn.packets()

    def test_notHolder(self) -> None:
        """
        WORK_* from a connection not holding the job get gearmand's
        JOB_NOT_FOUND errors, and the job goes on.
        """
        other = self.conn()
        other.canDo(b"f")
        self.assertEqual(
            self.everyWork(other, self.handle),
            [NOT_FOUND_DATA, NOT_FOUND_DATA, NOT_FOUND_RESULT, NOT_FOUND_RESULT, NOT_FOUND_RESULT, NOT_FOUND_EXCEPTION],
        )
        self.assertEqual(self.client.packets(), [])
        self.assertEqual(self.status(), (1, 1, 2))

    def test_unknownHandle(self) -> None:
        """
        WORK_* for a handle that does not exist get the same errors.
        """
        self.assertEqual(
            self.everyWork(self.worker, b"H:99"),
            [NOT_FOUND_DATA, NOT_FOUND_DATA, NOT_FOUND_RESULT, NOT_FOUND_RESULT, NOT_FOUND_RESULT, NOT_FOUND_EXCEPTION],
        )

    def test_previousHolder(self) -> None:
        """
        After a requeue the previous holder is no longer the holder, neither
        while the job is queued nor once another worker holds it.
        """
        self.server.cantDo(self.worker.peer, b"f")
        self.worker.canDo(b"f")
        self.worker.data(self.handle)
        self.worker.complete(self.handle)
        self.assertEqual(self.worker.packets(), [NOT_FOUND_DATA, NOT_FOUND_RESULT])
        other = self.conn()
        other.canDo(b"f")
        other.take()
        self.worker.exception(self.handle)
        self.assertEqual(self.worker.packets(), [NOT_FOUND_EXCEPTION])
        other.complete(self.handle, b"ok")
        self.assertEqual(self.client.packets(), [(P.WORK_COMPLETE, [self.handle, b"ok"])])

    def test_failHandleTooLarge(self) -> None:
        """
        WORK_FAIL with a handle of 64 bytes or more gets ARGUMENT_TOO_LARGE;
        63 bytes is merely not found.
        """
        self.worker.fail(b"x" * 64)
        self.worker.fail(b"x" * 63)
        self.assertEqual(self.worker.packets(), [HANDLE_TOO_LARGE, NOT_FOUND_RESULT])

    def test_endedJob(self) -> None:
        """
        WORK_* for a job that ended are not found.
        """
        self.worker.complete(self.handle)
        self.assertEqual(
            self.everyWork(self.worker, self.handle),
            [NOT_FOUND_DATA, NOT_FOUND_DATA, NOT_FOUND_RESULT, NOT_FOUND_RESULT, NOT_FOUND_RESULT, NOT_FOUND_EXCEPTION],
        )


class ResultTests(JobServerTestCase):
    """
    Forwarding results (2, 3.6, 3.11).
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
        self.server.workData(self.worker.peer, h, b"a\0b")
        self.server.workWarning(self.worker.peer, h, b"")
        self.server.workStatus(self.worker.peer, h, b"50%", b"100")
        self.assertEqual(
            self.client.raw(),
            encode(P.WORK_DATA, h, b"a\0b", magic=RES)
            + encode(P.WORK_WARNING, h, b"", magic=RES)
            + encode(P.WORK_STATUS, h, b"50%", b"100", magic=RES),
        )
        self.assertEqual(statusPayload(self.server.getStatus(h)), h + b"\x001\x001\x0050\x00100")

    def test_statusNumbers(self) -> None:
        """
        WORK_STATUS numbers are stored as gearmand's C{(uint32_t)atoi}:
        negatives wrap, big numbers are cut to 32 bits after C{strtol}
        clamped them to 64, junk is 0; the denominator is read from its
        first 10 bytes.
        """
        h = self.handle
        for numerator, denominator, stored in (
            (b"-1", b"\t8", b"4294967295\x008"),
            (b" +7x", b"junk", b"7\x000"),
            (b"99999999999", b"99999999999", b"1215752191\x001410065407"),
            (b"9" * 30, b"4294967297", b"4294967295\x001"),
            (b"-" + b"9" * 30, b"12345678901", b"0\x001234567890"),
            (b"-2147483649", b"3000000000", b"2147483647\x003000000000"),
            (b"0" * 5000 + b"5", b"6\0" + b"7" * 20, b"5\x006"),
        ):
            self.worker.status(h, numerator, denominator)
            self.assertEqual(
                self.client.packets(), [(P.WORK_STATUS, [h, numerator, denominator])], numerator
            )
            self.assertEqual(statusPayload(self.server.getStatus(h)), h + b"\x001\x001\x00" + stored, numerator)

    def test_statusDenominatorTooLong(self) -> None:
        """
        A denominator longer than 11 bytes makes gearmand store the
        numerator only and forward nothing.
        """
        h = self.handle
        self.worker.status(h, b"5", b"6")
        self.client.packets()
        self.worker.status(h, b"7", b"123456789012")
        self.assertEqual(self.client.packets(), [])
        self.assertEqual(self.worker.packets(), [])
        self.assertEqual(statusPayload(self.server.getStatus(h)), h + b"\x001\x001\x007\x006")
        self.worker.status(h, b"8", b"9" * 5000)
        self.assertEqual(statusPayload(self.server.getStatus(h)), h + b"\x001\x001\x008\x006")

    def test_hugeNumeratorNoCrash(self) -> None:
        """
        A numerator of thousands of digits is read like any overflowing one.
        """
        self.worker.status(self.handle, b"7" * 5000, b"1")
        self.assertEqual(
            statusPayload(self.server.getStatus(self.handle)), self.handle + b"\x001\x001\x004294967295\x001"
        )

    def test_complete(self) -> None:
        """
        WORK_COMPLETE is forwarded byte for byte and ends the job.
        """
        h = self.handle
        self.server.workComplete(self.worker.peer, h, b"r\0s")
        self.assertEqual(self.client.raw(), encode(P.WORK_COMPLETE, h, b"r\0s", magic=RES))
        self.assertNotIn(h, self.server.jobs)
        self.assertEqual(self.status(), (0, 0, 1))
        self.assertEqual(self.worker.peer.held, {})
        self.assertEqual(self.client.peer.attached, {})
        self.assertEqual(self.server.functions[b"f"].completed, 1)

    def test_fail(self) -> None:
        """
        WORK_FAIL is forwarded and ends the job.
        """
        h = self.handle
        self.worker.fail(h)
        self.assertEqual(self.client.raw(), encode(P.WORK_FAIL, h, magic=RES))
        self.assertNotIn(h, self.server.jobs)
        self.assertEqual(self.server.functions[b"f"].failed, 1)

    def test_failPayloadForwarded(self) -> None:
        """
        A WORK_FAIL payload with bytes after the handle is forwarded as sent.
        """
        h = self.handle
        self.server.workFail(self.worker.peer, h, b"junk")
        self.assertEqual(self.client.raw(), encode(P.WORK_FAIL, h + b"\0junk", magic=RES))

    def test_failDefaultPayload(self) -> None:
        """
        Without a payload, WORK_FAIL carries the bare handle.
        """
        self.server.workFail(self.worker.peer, self.handle)
        self.assertEqual(self.client.raw(), encode(P.WORK_FAIL, self.handle, magic=RES))

    def test_backgroundForwardsNothing(self) -> None:
        """
        A background job's WORK_* go nowhere, but its status is stored.
        """
        handle = self.client.created(background=True)
        self.worker.take()
        self.worker.data(handle)
        self.worker.status(handle, b"3", b"4")
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x001\x001\x003\x004")
        self.worker.complete(handle)
        self.assertEqual(self.client.packets(), [])
        self.assertEqual(self.worker.packets(), [])
        self.assertNotIn(handle, self.server.jobs)


class ExceptionTests(JobServerTestCase):
    """
    WORK_EXCEPTION and the C{exceptions} option (3.6).
    """

    def setUp(self) -> None:
        super().setUp()
        self.plain = self.conn()
        self.catcher = self.conn(exceptions=True)
        self.worker = self.conn()
        self.worker.canDo(b"f")
        self.handle = self.plain.created(unique=b"u")
        self.catcher.created(unique=b"u")
        self.worker.take()

    def test_exception(self) -> None:
        """
        WORK_EXCEPTION reaches exceptions clients as sent and the others as
        a WORK_FAIL with the bare handle (gearmand adds a NUL); the job
        ends.
        """
        h = self.handle
        self.server.workException(self.worker.peer, h, b"boom\0!")
        self.assertEqual(self.plain.raw(), encode(P.WORK_FAIL, h, magic=RES))
        self.assertEqual(self.catcher.raw(), encode(P.WORK_EXCEPTION, h, b"boom\0!", magic=RES))
        self.assertNotIn(h, self.server.jobs)
        self.assertEqual(self.status(), (0, 0, 1))
        self.assertEqual(self.server.functions[b"f"].exceptions, 1)
        self.assertEqual(self.worker.packets(), [])

    def test_laterFail(self) -> None:
        """
        The WORK_FAIL that Perl's worker sends right after WORK_EXCEPTION is
        accepted quietly; any other WORK_* for the ended job is not found.
        """
        h = self.handle
        self.worker.exception(h)
        self.plain.packets()
        self.worker.fail(h)
        self.assertEqual(self.worker.packets(), [])
        self.worker.fail(h)
        self.worker.complete(h)
        self.worker.data(h)
        self.assertEqual(self.worker.packets(), [NOT_FOUND_RESULT, NOT_FOUND_RESULT, NOT_FOUND_DATA])
        self.assertEqual(self.plain.packets(), [])

    def test_serverOption(self) -> None:
        """
        With the server's exceptions option (passed to new Peers by the
        protocol) every client gets WORK_EXCEPTION.
        """
        server = JobServer(self.clock, handlePrefix=b"H", exceptions=True)
        self.assertTrue(server.exceptions)
        client = Conn(server, exceptions=server.exceptions)
        worker = Conn(server)
        worker.canDo(b"f")
        handle = client.created()
        worker.take()
        worker.exception(handle, b"e")
        self.assertEqual(client.packets(), [(P.WORK_EXCEPTION, [handle, b"e"])])

    def test_backgroundException(self) -> None:
        """
        A background job's exception goes nowhere and ends it.
        """
        handle = self.plain.created(background=True)
        self.worker.take()
        self.worker.exception(handle)
        self.assertEqual(self.plain.packets(), [])
        self.assertNotIn(handle, self.server.jobs)


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
        status reset and a retry counted; clients are not told.
        """
        for data in (b"a", b"b", b"c", b"d"):
            self.client.created(data=data)
        first, _ = self.worker.take()
        second, _ = self.worker.take()
        self.worker.status(first, b"1", b"2")
        self.client.packets()
        self.worker.lose()
        self.assertEqual(self.client.packets(), [])
        self.assertEqual(statusPayload(self.server.getStatus(first)), first + b"\x001\x000\x000\x000")
        self.assertEqual(self.status(), (4, 0, 0))
        other = self.conn()
        other.canDo(b"f")
        self.assertEqual([other.take()[1] for _ in range(4)], [b"c", b"d", b"b", b"a"])
        self.assertEqual((self.server.jobs[first].retries, self.server.jobs[second].retries), (1, 1))
        self.assertEqual(self.server.jobs[b"H:3"].retries, 0)

    def test_keepsPriority(self) -> None:
        """
        A requeued job goes to the tail of its own priority's queue.
        """
        high = self.client.created(data=b"h1", priority=HIGH)
        self.client.created(data=b"h2", priority=HIGH)
        self.client.created(data=b"n", priority=NORMAL)
        self.assertEqual(self.worker.take()[0], high)
        self.worker.lose()
        other = self.conn()
        other.canDo(b"f")
        self.assertEqual([other.take()[1] for _ in range(3)], [b"h2", b"h1", b"n"])

    def test_cantDo(self) -> None:
        """
        CANT_DO requeues the jobs of that function only, newest grabbed
        first, and counts retries.
        """
        self.worker.canDo(b"g")
        self.client.created(b"f", data=b"f1")
        self.client.created(b"g", data=b"g1")
        self.client.created(b"g", data=b"g2")
        self.client.created(b"g", data=b"g3")
        self.worker.take()
        self.worker.take()
        self.worker.take()
        self.worker.take()
        self.server.cantDo(self.worker.peer, b"g")
        self.assertEqual(self.status(b"g"), (3, 0, 0))
        self.assertEqual(self.status(b"f"), (1, 1, 1))
        self.assertEqual(self.server.jobs[b"H:2"].retries, 1)
        self.assertEqual(self.server.jobs[b"H:1"].retries, 0)
        other = self.conn()
        other.canDo(b"g")
        self.assertEqual([other.take()[1] for _ in range(3)], [b"g3", b"g2", b"g1"])

    def test_resetAbilities(self) -> None:
        """
        RESET_ABILITIES requeues every held job.
        """
        self.worker.canDo(b"g")
        self.client.created(b"f")
        self.client.created(b"g")
        self.worker.take()
        self.worker.take()
        self.server.resetAbilities(self.worker.peer)
        self.assertEqual((self.status(b"f"), self.status(b"g")), ((1, 0, 0), (1, 0, 0)))
        self.assertEqual(self.worker.peer.held, {})
        self.assertEqual([j.retries for j in self.server.jobs.values()], [1, 1])

    def test_unlimitedRetries(self) -> None:
        """
        By default a job is requeued however often its worker is lost.
        """
        handle = self.client.created()
        for _ in range(5):
            worker = self.conn()
            worker.canDo(b"f")
            worker.take()
            worker.lose()
        self.assertEqual(self.server.jobs[handle].retries, 5)
        self.assertEqual(self.client.packets(), [])

    def retriesExhausted(self, lose) -> None:
        self.server.jobRetries = 2
        handle = self.client.created()
        self.worker.take()
        lose(self.worker)
        self.assertEqual(self.client.packets(), [])
        self.assertEqual(self.server.jobs[handle].retries, 1)
        if not self.worker.peer.abilities:
            self.worker.canDo(b"f")
        self.worker.take()
        lose(self.worker)
        self.assertEqual(self.client.raw(), encode(P.WORK_FAIL, handle, magic=RES))
        self.assertEqual(self.server.jobs, {})
        self.assertEqual(self.status(), (0, 0, self.server.functions[b"f"].workers))
        self.assertEqual(self.server.functions[b"f"].failed, 1)

    def test_jobRetriesDisconnect(self) -> None:
        """
        With job retries 2 the second loss by disconnection fails the job to
        its clients with a bare handle.
        """

        def lose(conn):
            conn.lose()
            self.worker = self.conn()
            self.worker.canDo(b"f")

        self.retriesExhausted(lose)

    def test_jobRetriesCantDo(self) -> None:
        """
        CANT_DO counts as a loss for job retries.
        """
        self.retriesExhausted(lambda conn: self.server.cantDo(conn.peer, b"f"))

    def test_jobRetriesReset(self) -> None:
        """
        RESET_ABILITIES counts as a loss for job retries.
        """
        self.retriesExhausted(lambda conn: self.server.resetAbilities(conn.peer))

    def test_jobRetriesTimeout(self) -> None:
        """
        A CAN_DO_TIMEOUT expiry counts as a loss for job retries.
        """
        self.server.cantDo(self.worker.peer, b"f")
        self.worker.canDo(b"f", timeout=1.0)
        self.retriesExhausted(lambda conn: self.clock.advance(1))

    def test_jobRetriesOne(self) -> None:
        """
        With job retries 1 the first loss fails the job.
        """
        self.server.jobRetries = 1
        handle = self.client.created()
        self.worker.take()
        self.worker.lose()
        self.assertEqual(self.client.packets(), [(P.WORK_FAIL, [handle])])

    def test_jobRetriesBackground(self) -> None:
        """
        A background job whose retries run out just ends.
        """
        self.server.jobRetries = 1
        handle = self.client.created(background=True)
        self.worker.take()
        self.worker.lose()
        self.assertEqual(self.client.packets(), [])
        self.assertNotIn(handle, self.server.jobs)

    def test_jobRetriesEveryAttachedClient(self) -> None:
        """
        Every attached submission gets the WORK_FAIL, and the unique key is
        free afterwards.
        """
        self.server.jobRetries = 1
        other = self.conn()
        handle = self.client.created(unique=b"u")
        other.created(unique=b"u")
        other.created(unique=b"u")
        self.worker.take()
        self.worker.lose()
        self.assertEqual(self.client.packets(), [(P.WORK_FAIL, [handle])])
        self.assertEqual(other.packets(), [(P.WORK_FAIL, [handle])] * 2)
        self.assertEqual(self.client.created(unique=b"u"), b"H:2")

    def test_timeout(self) -> None:
        """
        A job held longer than its CAN_DO_TIMEOUT goes back to the tail of
        the queue; neither side is told; the late WORK_COMPLETE is not
        found; the worker stays registered.
        """
        worker = self.conn()
        worker.canDo(b"t", timeout=1.0)
        handle = self.client.created(b"t")
        self.client.created(b"t", data=b"second")
        worker.take()
        self.clock.advance(0.9)
        self.assertEqual(self.status(b"t"), (2, 1, 1))
        self.clock.advance(0.1)
        self.assertEqual(self.status(b"t"), (2, 0, 1))
        self.assertEqual(self.server.jobs[handle].retries, 1)
        self.assertEqual(worker.packets(), [])
        worker.complete(handle)
        self.assertEqual(worker.packets(), [NOT_FOUND_RESULT])
        self.assertEqual(self.client.packets(), [])
        self.assertEqual(worker.take(), (b"H:2", b"second"))
        self.assertEqual(worker.take()[0], handle)

    def test_timeoutPerJob(self) -> None:
        """
        Each held job has its own timer, started when it was taken.
        """
        worker = self.conn()
        worker.canDo(b"t", timeout=2.0)
        first = self.client.created(b"t")
        second = self.client.created(b"t")
        worker.take()
        self.clock.advance(1)
        worker.take()
        self.clock.advance(1)
        self.assertEqual(list(worker.peer.held), [self.server.jobs[second]])
        self.clock.advance(1)
        self.assertEqual(worker.peer.held, {})
        self.assertEqual(self.server.jobs[first].retries, 1)

    def test_timeoutNotOnSleep(self) -> None:
        """
        PRE_SLEEP does not stop a held job's timer (gearmand's per-connection
        timer stops).
        """
        worker = self.conn()
        worker.canDo(b"t", timeout=1.0)
        handle = self.client.created(b"t")
        worker.take()
        worker.sleep()
        self.clock.advance(1)
        self.assertIsNone(self.server.jobs[handle].worker)

    def test_timeoutOnlyForTimedFunction(self) -> None:
        """
        Jobs of functions registered without a timeout run as long as they
        like.
        """
        self.worker.canDo(b"t", timeout=1.0)
        handle = self.client.created(b"f")
        self.server.grab(self.worker.peer, GRAB_FORMS[P.GRAB_JOB])
        self.clock.advance(100)
        self.assertIs(self.server.jobs[handle].worker, self.worker.peer)

    def test_timeoutCancelled(self) -> None:
        """
        Completing, failing, raising or losing the job cancels its timer.
        """
        worker = self.conn()
        worker.canDo(b"t", timeout=1.0)
        for end in (worker.complete, worker.fail, worker.exception):
            handle = self.client.created(b"t")
            worker.take()
            end(handle)
            self.client.packets()
            self.assertEqual(self.clock.getDelayedCalls(), [])
        self.client.created(b"t")
        worker.take()
        self.server.cantDo(worker.peer, b"t")
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ClientLossTests(JobServerTestCase):
    """
    Client disconnects (3.8).
    """

    def test_queuedJobDropped(self) -> None:
        """
        A queued job whose only client left is still counted and known,
        marked ignored, and freed at the next GRAB, which gets NO_JOB.
        """
        client, worker = self.conn(), self.conn()
        handle = client.created()
        client.lose()
        self.assertEqual(self.status(), (1, 0, 0))
        self.assertTrue(self.server.jobs[handle].ignore)
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x001\x000\x000\x000")
        worker.canDo(b"f")
        self.assertEqual(worker.grab(), [NO_JOB])
        self.assertEqual(self.status(), (0, 0, 1))
        self.assertNotIn(handle, self.server.jobs)

    def test_nextJobTried(self) -> None:
        """
        A GRAB skips (and frees) abandoned jobs and takes the next live one.
        """
        client, other, worker = self.conn(), self.conn(), self.conn()
        client.created(data=b"dead")
        other.created(data=b"live", priority=LOW)
        client.lose()
        worker.canDo(b"f")
        self.assertEqual(worker.take(), (b"H:2", b"live"))
        self.assertEqual(self.server.jobs.keys(), {b"H:2"})

    def test_runningJobFinishesSilently(self) -> None:
        """
        A running job whose client left finishes; its results are accepted
        silently.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created()
        worker.take()
        client.lose()
        self.assertTrue(self.server.jobs[handle].ignore)
        worker.data(handle)
        worker.status(handle, b"1", b"2")
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x001\x001\x001\x002")
        worker.complete(handle)
        self.assertEqual(worker.packets(), [])
        self.assertEqual(self.status(), (0, 0, 1))

    def test_runningAbandonedRequeued(self) -> None:
        """
        An abandoned running job whose worker is lost is requeued and then
        freed at the next GRAB.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created(unique=b"u")
        worker.take()
        client.lose()
        worker.lose()
        self.assertEqual(self.status(), (1, 0, 0))
        other = self.conn()
        self.assertEqual(other.created(unique=b"u", data=b"new", background=True), b"H:2")
        other.canDo(b"f")
        self.assertEqual(other.take(), (b"H:2", b"new"))
        self.assertNotIn(handle, self.server.jobs)

    def test_joinRunningAbandoned(self) -> None:
        """
        A new submission with the unique of an abandoned running job joins
        it and gets its result, as in gearmand.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created(unique=b"u")
        worker.take()
        client.lose()
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x001\x001\x000\x000\x000")
        again = self.conn()
        self.assertEqual(again.created(unique=b"u"), handle)
        worker.complete(handle, b"ok")
        self.assertEqual(again.packets(), [(P.WORK_COMPLETE, [handle, b"ok"])])

    def test_joinedAbandonedRuns(self) -> None:
        """
        An abandoned running job that a new submission joined runs again if
        its worker is lost (gearmand frees it and the new client waits
        forever).
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created(unique=b"u")
        worker.take()
        client.lose()
        again = self.conn()
        again.created(unique=b"u")
        worker.lose()
        other = self.conn()
        other.canDo(b"f")
        self.assertEqual(other.take()[0], handle)
        other.complete(handle)
        self.assertEqual(again.packets(), [(P.WORK_COMPLETE, [handle, b"r"])])

    def test_otherClientsKeepIt(self) -> None:
        """
        Another attached client keeps the job alive.
        """
        first, second, worker = self.conn(), self.conn(), self.conn()
        handle = first.created(unique=b"u")
        second.created(unique=b"u")
        first.lose()
        self.assertFalse(self.server.jobs[handle].ignore)
        worker.canDo(b"f")
        worker.take()
        worker.complete(handle)
        self.assertEqual(second.packets(), [(P.WORK_COMPLETE, [handle, b"r"])])

    def test_sameConnectionTwiceLeaves(self) -> None:
        """
        A connection attached twice leaves with both entries.
        """
        client, worker = self.conn(), self.conn()
        handle = client.created(unique=b"u")
        client.created(unique=b"u")
        client.lose()
        self.assertEqual(self.server.jobs[handle].clients, [])
        worker.canDo(b"f")
        self.assertEqual(worker.grab(), [NO_JOB])

    def test_backgroundCoalescedSurvives(self) -> None:
        """
        A background submission that coalesced onto a foreground job keeps
        it alive when the foreground client leaves (gearmand drops it).
        """
        client, bg, worker = self.conn(), self.conn(), self.conn()
        client.created(unique=b"u")
        bg.created(unique=b"u", background=True)
        client.lose()
        self.assertFalse(self.server.jobs[b"H:1"].ignore)
        worker.canDo(b"f")
        self.assertEqual(worker.take()[1], b"x")

    def test_foregroundOnBackgroundLeaves(self) -> None:
        """
        A foreground client that joined a background job leaving does not
        cancel the job.
        """
        client, worker = self.conn(), self.conn()
        handle = client.created(unique=b"u", background=True)
        other = self.conn()
        other.created(unique=b"u")
        other.lose()
        worker.canDo(b"f")
        self.assertEqual(worker.take()[0], handle)

    def test_newSubmitAfterAbandon(self) -> None:
        """
        A submission with the unique of an abandoned queued job makes a new
        job; GET_STATUS_UNIQUE no longer finds the dead one.
        """
        client = self.conn()
        client.created(unique=b"u")
        client.lose()
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x000\x000\x000\x000\x000")
        again = self.conn()
        self.assertEqual(again.created(unique=b"u"), b"H:2")

    def test_clientIsWorker(self) -> None:
        """
        A connection that is both the only client and the worker of a job:
        when it goes, the job is requeued, abandoned and never run.
        """
        both, worker = self.conn(), self.conn()
        both.canDo(b"f")
        both.created()
        both.take()
        both.lose()
        worker.canDo(b"f")
        self.assertEqual(worker.grab(), [NO_JOB])
        self.assertEqual(self.server.jobs, {})


class MaxQueueTests(JobServerTestCase):
    """
    maxqueue (3.10).
    """

    def test_limit(self) -> None:
        """
        A new job is refused when queued + running jobs of the function, all
        priorities, reach the limit of its priority.
        """
        client, worker = self.conn(), self.conn()
        self.server.function(b"f")
        self.server.setMaxQueue(b"f", (3, 2, 0))
        client.created(background=True)
        worker.canDo(b"f")
        worker.take()
        client.created(background=True, priority=HIGH)
        self.assertEqual(client.submit(), [QUEUE_FULL])
        self.assertEqual(client.submit(background=True), [QUEUE_FULL])
        client.created(priority=HIGH)
        self.assertEqual(client.submit(priority=HIGH), [QUEUE_FULL])
        self.assertEqual(client.submit(priority=HIGH, background=True), [QUEUE_FULL])
        client.created(priority=LOW)
        client.created(priority=LOW, background=True)
        self.assertEqual(self.status(), (5, 1, 1))

    def test_runningCounts(self) -> None:
        """
        Running jobs count toward the limit; ending one makes room.
        """
        client, worker = self.conn(), self.conn()
        self.server.function(b"f")
        self.server.setMaxQueue(b"f", (1, 1, 1))
        handle = client.created()
        worker.canDo(b"f")
        worker.take()
        self.assertEqual(client.submit(), [QUEUE_FULL])
        worker.complete(handle)
        client.packets()
        client.created()

    def test_coalesceNotChecked(self) -> None:
        """
        A coalescing submission is accepted even when the queue is full.
        """
        client = self.conn()
        self.server.function(b"f")
        self.server.setMaxQueue(b"f", (1, 1, 1))
        handle = client.created(unique=b"u")
        self.assertEqual(client.created(unique=b"u"), handle)
        self.assertEqual(client.created(unique=b"u", background=True), handle)
        self.assertEqual(client.submit(unique=b"v"), [QUEUE_FULL])

    def test_zeroUnlimited(self) -> None:
        """
        0 means no limit, and limits can be lifted.
        """
        client = self.conn()
        self.server.function(b"f")
        self.server.setMaxQueue(b"f", (0, 1, 0))
        client.created()
        self.assertEqual(client.submit(), [QUEUE_FULL])
        client.created(priority=HIGH)
        self.server.setMaxQueue(b"f", (0, 0, 0))
        client.created()

    def test_futureJobsCount(self) -> None:
        """
        Epoch jobs not due yet count toward the limit.
        """
        client = self.conn()
        self.server.function(b"f")
        self.server.setMaxQueue(b"f", (1, 1, 1))
        client.created(background=True, when=100)
        self.assertEqual(client.submit(), [QUEUE_FULL])

    def test_unknownFunction(self) -> None:
        """
        Limits for an unknown function are ignored, and names are
        case-sensitive.
        """
        self.server.function(b"f")
        self.server.setMaxQueue(b"nope", (1, 1, 1))
        self.server.setMaxQueue(b"F", (1, 1, 1))
        self.assertNotIn(b"nope", self.server.functions)
        self.assertEqual(self.server.functions[b"f"].maxQueue, [0, 0, 0])


class StatusTests(JobServerTestCase):
    """
    GET_STATUS and GET_STATUS_UNIQUE (3.11).
    """

    def test_unknown(self) -> None:
        """
        Unknown handles and uniques are answered with zeros, echoed as sent.
        """
        self.assertEqual(statusPayload(self.server.getStatus(b"nope")), b"nope\x000\x000\x000\x000")
        self.assertEqual(statusPayload(self.server.getStatus(b"")), b"\x000\x000\x000\x000")
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x000\x000\x000\x000\x000")
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"")), b"\x000\x000\x000\x000\x000")

    def test_known(self) -> None:
        """
        Queued: known, not running, 0/0; running: running, last status.
        """
        client, worker = self.conn(), self.conn()
        handle = client.created()
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x001\x000\x000\x000")
        worker.canDo(b"f")
        worker.take()
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x001\x001\x000\x000")
        worker.status(handle, b"7", b"8")
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x001\x001\x007\x008")
        worker.complete(handle)
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x000\x000\x000\x000")

    def test_unique(self) -> None:
        """
        By unique: known, running, status and the number of attached
        submissions (a connection twice counts twice).
        """
        a, b, worker = self.conn(), self.conn(), self.conn()
        a.created(b"g", b"u")
        b.created(b"g", b"u")
        b.created(b"g", b"u")
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x001\x000\x000\x000\x003")
        worker.canDo(b"g")
        handle, _ = worker.take()
        worker.status(handle, b"3", b"4")
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x001\x001\x003\x004\x003")
        b.lose()
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x001\x001\x003\x004\x001")
        worker.complete(handle)
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x000\x000\x000\x000\x000")

    def test_uniqueAcrossFunctions(self) -> None:
        """
        GET_STATUS_UNIQUE finds the newest live job with the unique in any
        function, then the older one once the newest ended.
        """
        client, worker = self.conn(), self.conn()
        client.created(b"f", b"u", background=True)
        client.created(b"g", b"u")
        worker.canDo(b"f")
        worker.take()
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x001\x000\x000\x000\x001")
        self.server.cancel(b"H:2")
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x001\x001\x000\x000\x000")

    def test_uniqueBackground(self) -> None:
        """
        A background job has no clients.
        """
        self.conn().created(unique=b"u", background=True)
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x001\x000\x000\x000\x000")

    def test_dashNeverFound(self) -> None:
        """
        C{-} jobs and empty uniques are never found by unique.
        """
        client = self.conn()
        client.created(unique=b"-", data=b"d")
        client.created(unique=b"")
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"-")), b"-\x000\x000\x000\x000\x000")
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"d")), b"d\x000\x000\x000\x000\x000")
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"")), b"\x000\x000\x000\x000\x000")

    def test_cancelledStillKnown(self) -> None:
        """
        A cancelled job still queued is known to GET_STATUS until reaped,
        but no longer by its unique.
        """
        client, worker = self.conn(), self.conn()
        handle = client.created(unique=b"u", background=True)
        self.assertTrue(self.server.cancel(handle))
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x001\x000\x000\x000")
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x000\x000\x000\x000\x000")
        worker.canDo(b"f")
        worker.grab()
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x000\x000\x000\x000")

    def test_afterRequeue(self) -> None:
        """
        After a requeue the job is known, not running, 0/0.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created(unique=b"u")
        worker.take()
        worker.status(handle, b"1", b"2")
        worker.lose()
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x001\x000\x000\x000")
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x001\x000\x000\x000\x001")


class EpochTests(JobServerTestCase):
    """
    Epoch jobs (3.12), woken by a timer (gearmand has none).
    """

    def test_heldUntilDue(self) -> None:
        """
        A future job counts as queued NORMAL, wakes nobody, cannot be
        grabbed, and at its time is queued and wakes sleeping workers.
        """
        self.clock.advance(1000)
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        worker.sleep()
        handle = client.created(data=b"later", background=True, when=1010)
        self.assertEqual(self.queued(), [0, 1, 0])
        self.assertEqual(self.status(), (1, 0, 1))
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x001\x000\x000\x000")
        self.assertEqual(list(self.server.pendingJobs()), [self.server.jobs[handle]])
        self.assertEqual(worker.packets(), [])
        self.clock.advance(9)
        self.assertEqual(worker.grab(), [NO_JOB])
        self.assertEqual(worker.sleep(), [])
        self.clock.advance(1)
        self.assertEqual(worker.packets(), [NOOP])
        self.assertEqual(self.queued(), [0, 1, 0])
        self.assertEqual(list(self.server.pendingJobs()), [])
        self.assertEqual(worker.take(), (handle, b"later"))

    def test_pastRunsNow(self) -> None:
        """
        An epoch in the past, or now, runs at once.
        """
        self.clock.advance(1000)
        client, worker = self.conn(), self.conn()
        client.created(data=b"past", background=True, when=5)
        client.created(data=b"now", background=True, when=1000)
        worker.canDo(b"f")
        self.assertEqual([worker.take()[1] for _ in range(2)], [b"past", b"now"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_queuedAtTailWhenDue(self) -> None:
        """
        A due job goes to the tail of the NORMAL queue, behind jobs
        submitted while it waited.
        """
        client, worker = self.conn(), self.conn()
        client.created(data=b"future", background=True, when=10)
        client.created(data=b"now")
        self.clock.advance(10)
        client.created(data=b"after")
        worker.canDo(b"f")
        self.assertEqual([worker.take()[1] for _ in range(3)], [b"now", b"future", b"after"])

    def test_doesNotBlockLow(self) -> None:
        """
        A future NORMAL job does not keep LOW jobs from running, nor does
        PRE_SLEEP NOOP for it.
        """
        client, worker = self.conn(), self.conn()
        client.created(data=b"future", background=True, when=10**9)
        worker.canDo(b"f")
        self.assertEqual(worker.sleep(), [])
        client.created(data=b"low", priority=LOW, background=True)
        self.assertEqual(worker.packets(), [NOOP])
        self.assertEqual(worker.take()[1], b"low")
        self.assertEqual(worker.grab(), [NO_JOB])

    def test_timerRearmed(self) -> None:
        """
        An earlier job submitted later moves the timer forward; a later one
        leaves it.
        """
        client = self.conn()
        client.created(data=b"b", background=True, when=100)
        client.created(data=b"a", background=True, when=50)
        client.created(data=b"c", background=True, when=200)
        self.clock.advance(50)
        self.assertEqual(len(self.server.functions[b"f"].queues[NORMAL]), 1)
        self.clock.advance(50)
        self.assertEqual(len(self.server.functions[b"f"].queues[NORMAL]), 2)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(100)
        self.assertEqual(len(self.server.functions[b"f"].queues[NORMAL]), 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_sameTime(self) -> None:
        """
        Jobs due at the same second are released together, in submission
        order.
        """
        client, worker = self.conn(), self.conn()
        for data in (b"1", b"2", b"3"):
            client.created(data=data, background=True, when=10)
        self.clock.advance(10)
        worker.canDo(b"f")
        self.assertEqual([worker.take()[1] for _ in range(3)], [b"1", b"2", b"3"])

    def test_sameTimePersisted(self) -> None:
        """
        Future jobs with the same time stored together by a persistent
        queue are all held and released.
        """
        server = JobServer(self.clock, handlePrefix=b"H", queue=StoringQueue())
        client, worker = Conn(server), Conn(server)
        server.submit(client.peer, b"f", b"a", b"1", NORMAL, True, 10)
        server.submit(client.peer, b"f", b"b", b"2", NORMAL, True, 10)
        self.clock.advance(0)
        self.assertEqual(client.packets(), [(P.JOB_CREATED, [b"H:1"]), (P.JOB_CREATED, [b"H:2"])])
        self.clock.advance(10)
        worker.canDo(b"f")
        self.assertEqual([worker.take()[1] for _ in range(2)], [b"1", b"2"])

    def test_coalesces(self) -> None:
        """
        A future job coalesces like any other.
        """
        client = self.conn()
        handle = client.created(unique=b"u", background=True, when=10)
        self.assertEqual(client.created(unique=b"u"), handle)

    def test_cancelledFuture(self) -> None:
        """
        A cancelled future job is still counted until it falls due and a
        GRAB reaps it.
        """
        client, worker = self.conn(), self.conn()
        handle = client.created(background=True, when=10)
        self.server.cancel(handle)
        self.assertEqual(self.status(), (1, 0, 0))
        self.clock.advance(10)
        worker.canDo(b"f")
        self.assertEqual(worker.grab(), [NO_JOB])
        self.assertEqual(self.status(), (0, 0, 1))


class CancelTests(JobServerTestCase):
    """
    C{cancel job} (4.2), with clients detached (our fix).
    """

    def test_cancelQueued(self) -> None:
        """
        Cancelling fails the job to its clients (once: they are detached);
        a queued job stays counted and is reaped at the next GRAB.
        """
        client, worker = self.conn(), self.conn()
        handle = client.created()
        client.created(unique=b"u")
        self.assertTrue(self.server.cancel(handle))
        self.assertTrue(self.server.cancel(handle))
        self.assertEqual(client.raw(), encode(P.WORK_FAIL, handle, magic=RES))
        self.assertEqual(self.status(), (2, 0, 0))
        self.assertTrue(self.server.jobs[handle].ignore)
        worker.canDo(b"f")
        self.assertEqual(worker.take()[0], b"H:2")
        self.assertFalse(self.server.cancel(handle))
        self.assertEqual(self.status(), (1, 1, 1))

    def test_cancelOneUniqueManyFunctions(self) -> None:
        """
        Cancelling the jobs of one unique key spread over many functions,
        newest first, costs each cancel a constant number of comparisons of
        jobs, not one per job sharing the key (quadratic in all: 0.29 ms a
        cancel at 20,000 such jobs).
        """
        from gearman_tw.server.jobs import Job

        client = self.conn()
        handles = [client.created(name=b"f%d" % i, unique=b"shared", background=True) for i in range(2000)]
        compared = [0]

        def counting(job: object, other: object) -> bool:
            compared[0] += 1
            return job is other

        Job.__eq__ = counting  # type: ignore[assignment, method-assign]
        self.addCleanup(delattr, Job, "__eq__")
        for handle in reversed(handles):
            self.assertTrue(self.server.cancel(handle))
        self.assertLess(compared[0], 10 * len(handles))
        self.assertIsNone(self.server._findUnique(b"shared"))

    def test_cancelRunning(self) -> None:
        """
        A running job keeps running after a cancel; its results reach nobody
        and are accepted silently.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created()
        worker.take()
        self.assertTrue(self.server.cancel(handle))
        self.assertEqual(client.packets(), [(P.WORK_FAIL, [handle])])
        self.assertEqual(self.status(), (1, 1, 1))
        self.assertEqual(statusPayload(self.server.getStatus(handle)), handle + b"\x001\x001\x000\x000")
        worker.data(handle)
        worker.complete(handle)
        self.assertEqual(worker.packets(), [])
        self.assertEqual(client.packets(), [])
        self.assertEqual(self.status(), (0, 0, 1))

    def test_cancelRunningThenLost(self) -> None:
        """
        A cancelled running job whose worker is lost is requeued and never
        run.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        handle = client.created(unique=b"u")
        worker.take()
        self.server.cancel(handle)
        client.packets()
        self.assertEqual(client.created(unique=b"u", data=b"new"), b"H:2")
        worker.lose()
        other = self.conn()
        other.canDo(b"f")
        self.assertEqual(other.take(), (b"H:2", b"new"))
        self.assertEqual(other.grab(), [NO_JOB])

    def test_cancelBackground(self) -> None:
        """
        A cancelled background job is no longer persisted.
        """
        handle = self.conn().created(background=True)
        job = self.server.lookup(handle)
        assert job is not None
        self.assertTrue(job.persisted)
        self.server.cancel(handle)
        job = self.server.lookup(handle)
        assert job is not None
        self.assertEqual((job.ignore, job.persisted, job.background), (True, False, False))

    def test_unknown(self) -> None:
        """
        Unknown handles are not cancelled; handles are case-sensitive.
        """
        self.conn().created()
        self.assertFalse(self.server.cancel(b"h:1"))
        self.assertFalse(self.server.cancel(b"H:2"))


class DropTests(JobServerTestCase):
    """
    C{drop function} (4.2), refusing with queued jobs (our fix).
    """

    def test_drop(self) -> None:
        """
        An idle function is dropped; the name matches in any case.
        """
        self.server.function(b"Idle")
        self.assertIs(self.server.dropFunction(b"iDLE"), True)
        self.assertNotIn(b"Idle", self.server.functions)
        self.assertIsNone(self.server.dropFunction(b"idle"))

    def test_busy(self) -> None:
        """
        A function with workers, or running, queued or future jobs is kept
        (gearmand drops one with queued jobs and orphans them).
        """
        client, worker = self.conn(), self.conn()
        client.created(b"queued", background=True)
        client.created(b"future", background=True, when=100)
        worker.canDo(b"w")
        for name in (b"queued", b"future", b"w"):
            self.assertIs(self.server.dropFunction(name), False, name)
        self.assertEqual(self.server.dropFunction(b"QUEUED"), False)
        self.assertIn(b"queued", self.server.functions)

    def test_running(self) -> None:
        """
        A function with a running job is kept until the job ends and the
        worker gives the function up.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f", b"g")
        handle = client.created(b"f")
        worker.take()
        self.assertIs(self.server.dropFunction(b"f"), False)
        worker.complete(handle)
        self.assertIs(self.server.dropFunction(b"f"), False)
        self.server.cantDo(worker.peer, b"f")
        self.assertIs(self.server.dropFunction(b"f"), True)

    def test_recreated(self) -> None:
        """
        A dropped function comes back, empty, on next use.
        """
        self.server.function(b"f")
        self.server.setMaxQueue(b"f", (1, 1, 1))
        self.server.dropFunction(b"f")
        self.conn().created()
        self.assertEqual(self.server.functions[b"f"].maxQueue, [0, 0, 0])


class IdleTests(JobServerTestCase):
    """
    whenIdle, hasWork and runningCount (graceful stops).
    """

    def setUp(self) -> None:
        super().setUp()
        self.client, self.worker = self.conn(), self.conn()
        self.worker.canDo(b"f", timeout=5)
        self.called: List[bool] = []

    def waitIdle(self) -> None:
        self.server.whenIdle(lambda: self.called.append(True))

    def test_idleAtOnce(self) -> None:
        """
        With no running job the callback runs at once, even with jobs
        queued.
        """
        self.client.created()
        self.waitIdle()
        self.assertEqual(self.called, [True])

    def test_afterComplete(self) -> None:
        """
        The callback runs once no job is running, and only once.
        """
        first = self.client.created()
        second = self.client.created()
        self.worker.take()
        self.worker.take()
        self.assertEqual(self.server.runningCount(), 2)
        self.waitIdle()
        self.worker.complete(first)
        self.assertEqual(self.called, [])
        self.worker.fail(second)
        self.assertEqual(self.called, [True])
        self.client.packets()
        self.client.created()
        self.worker.take()
        self.worker.complete(b"H:3")
        self.assertEqual(self.called, [True])

    def test_afterRequeue(self) -> None:
        """
        Running jobs going back to the queue (lost worker, CANT_DO,
        RESET_ABILITIES, timeout) make the server idle too.
        """
        for requeue in (
            lambda: self.server.cantDo(self.worker.peer, b"f"),
            lambda: self.server.resetAbilities(self.worker.peer),
            lambda: self.clock.advance(5),
            self.worker.lose,
        ):
            self.called = []
            self.worker.canDo(b"f", timeout=5)
            self.client.created()
            self.worker.take()
            self.waitIdle()
            self.assertEqual(self.called, [])
            requeue()
            self.assertEqual(self.called, [True])

    def test_afterRetriesExhausted(self) -> None:
        """
        A job failed for running out of retries makes the server idle.
        """
        self.server.jobRetries = 1
        self.client.created()
        self.worker.take()
        self.waitIdle()
        self.server.resetAbilities(self.worker.peer)
        self.assertEqual(self.called, [True])

    def test_hasWork(self) -> None:
        """
        hasWork: a running job or a live queued one; cancelled, abandoned
        and future jobs do not count.
        """
        self.assertFalse(self.server.hasWork())
        handle = self.client.created(background=True)
        self.assertTrue(self.server.hasWork())
        self.server.cancel(handle)
        self.client.created(background=True, when=100)
        self.assertFalse(self.server.hasWork())
        other = self.conn()
        other.created()
        other.lose()
        self.assertFalse(self.server.hasWork())
        self.client.created()
        self.assertTrue(self.server.hasWork())
        self.assertEqual(self.worker.take()[0], b"H:4")
        self.assertTrue(self.server.hasWork())


class StatsTests(JobServerTestCase):
    """
    The counters kept per function.
    """

    def test_counters(self) -> None:
        """
        New jobs per priority (not coalesced ones) and how jobs ended.
        """
        client, worker = self.conn(), self.conn()
        worker.canDo(b"f")
        for priority in (HIGH, NORMAL, NORMAL, LOW):
            client.created(priority=priority)
        client.created(unique=b"u")
        client.created(unique=b"u")
        for end in (worker.complete, worker.fail, worker.exception, worker.complete):
            end(worker.take()[0])
        function = self.server.functions[b"f"]
        self.assertEqual(function.submitted, [1, 3, 1])
        self.assertEqual((function.completed, function.failed, function.exceptions), (2, 1, 1))
        self.assertEqual(self.server.stats.connections, 2)


class StoringQueue(MemoryQueue):
    """
    A persistent queue that acknowledges every store at once and keeps
    nothing, so it has nothing to replay.
    """

    name = "storing"
    persistent = True
