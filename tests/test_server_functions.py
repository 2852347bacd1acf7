"""
Tests for what a function costs a L{gearman_tw.server.jobs.JobServer}: the
functions it keeps and frees, their memory, and the work a worker of many
functions makes for each PRE_SLEEP.
"""

import gc
import random
import time
import tracemalloc
from typing import Dict, List

from gearman_tw.errors import QueueError
from gearman_tw.protocol import PacketType
from gearman_tw.queues import QueuedJob
from gearman_tw.server import model
from gearman_tw.server.jobs import IDLE_FUNCTIONS, JobServer
from gearman_tw.server.model import Peer
from gearman_tw.server.protocol import statusPayload
from tests.test_server_jobs import NO_JOB, NOOP, Conn, JobServerTestCase
from tests.test_server_persistence import FakeQueue

P = PacketType


class FunctionsTestCase(JobServerTestCase):
    """
    A job server with handle prefix C{H} on a fake clock, keeping
    C{idleFunctions} idle functions.
    """

    idleFunctions = IDLE_FUNCTIONS

    def setUp(self) -> None:
        super().setUp()
        self.server = JobServer(self.clock, handlePrefix=b"H", idleFunctions=self.idleFunctions)

    def known(self) -> List[bytes]:
        """
        The names of the functions the server knows, sorted.
        """
        return sorted(self.server.functions)

    def churn(self, conn: Conn, name: bytes) -> None:
        """
        Make C{name} a function with a worker and a job, then leave it
        without either: a job submitted, taken and completed.
        """
        conn.canDo(name)
        handle = conn.created(name, background=True)
        self.assertEqual(conn.take()[0], handle)
        conn.complete(handle)
        self.server.cantDo(conn.peer, name)
        conn.out.clear()

    def assertForgotten(self, name: bytes, function: model.Function) -> None:
        """
        Nothing of the server refers to C{function} any more.
        """
        server = self.server
        self.assertNotIn(name, server.functions)
        self.assertNotIn(function, server._idle)
        self.assertNotIn(function, server.runQueue._runnable)
        self.assertNotIn(function.ident, server.runQueue._byIdent)
        self.assertNotIn(function, [f for others in server._folded.values() for f in others])


class IdleFunctionTests(FunctionsTestCase):
    """
    A function without workers, jobs or limits is kept (and listed by
    C{status}, as gearmand keeps every function) until more than
    C{idleFunctions} functions are idle; then the one idle for longest is
    forgotten.
    """

    idleFunctions = 2

    def test_keptWhileFew(self) -> None:
        """
        Functions whose worker left, whose last job ended, or that were
        created by the admin are kept, with nothing counted.
        """
        worker = self.conn()
        worker.canDo(b"left")
        worker.lose()
        self.churn(self.conn(), b"done")
        self.assertEqual(self.known(), [b"done", b"left"])
        for function in self.server.functions.values():
            self.assertEqual((function.total, function.running, function.workers), (0, 0, 0))

    def test_oldestIdleForgotten(self) -> None:
        """
        Past C{idleFunctions}, the function idle for longest is forgotten:
        however it became idle, and including those C{create function}
        made.
        """
        conn = self.conn()
        self.churn(conn, b"a")
        a = self.server.functions[b"a"]
        conn.canDo(b"b")
        self.server.cantDo(conn.peer, b"b")
        self.server.createFunction(b"c")
        self.assertEqual(self.known(), [b"b", b"c"])
        self.assertForgotten(b"a", a)
        conn.canDo(b"b", b"d")
        conn.lose()
        self.assertEqual(self.known(), [b"b", b"d"])

    def test_createExisting(self) -> None:
        """
        C{create function} of an idle function makes it the newest idle
        one; of a busy one, changes nothing.
        """
        for name in (b"a", b"b"):
            self.server.createFunction(name)
        worker = self.conn()
        worker.canDo(b"busy")
        self.server.createFunction(b"a")
        self.server.createFunction(b"busy")
        self.server.createFunction(b"c")
        self.assertEqual(self.known(), [b"a", b"busy", b"c"])

    def test_busyKept(self) -> None:
        """
        A function with a worker, a queued, running or scheduled job, or
        queue limits is never forgotten, however many others go idle.
        """
        client, worker, other = self.conn(), self.conn(), self.conn()
        worker.canDo(b"worker", b"running")
        client.created(b"queued", background=True)
        client.created(b"running")
        worker.take()
        self.clock.advance(10)
        client.created(b"scheduled", background=True, when=1000)
        self.server.createFunction(b"limited")
        self.server.setMaxQueue(b"limited", (0, 5, 0))
        for number in range(10):
            self.churn(other, b"idle%d" % (number,))
        self.assertEqual(
            self.known(), [b"idle8", b"idle9", b"limited", b"queued", b"running", b"scheduled", b"worker"]
        )

    def test_busyAgain(self) -> None:
        """
        An idle function that gets work again is not forgotten with the
        idle ones, and becomes the newest idle one when it is idle again.
        """
        client, worker = self.conn(), self.conn()
        self.server.createFunction(b"f")
        handle = client.created(b"f")
        for name in (b"a", b"b", b"c"):
            self.server.createFunction(name)
        self.assertEqual(self.known(), [b"b", b"c", b"f"])
        worker.canDo(b"f")
        worker.complete(worker.take()[0])
        self.assertEqual(client.packets(), [(P.WORK_COMPLETE, [handle, b"r"])])
        worker.lose()
        self.server.createFunction(b"d")
        self.assertEqual(self.known(), [b"d", b"f"])

    def test_scheduledThenIdle(self) -> None:
        """
        A function whose only job was scheduled is kept until the job has
        run.
        """
        client, worker = self.conn(), self.conn()
        client.created(b"f", background=True, when=100)
        for name in (b"a", b"b", b"c"):
            self.server.createFunction(name)
        self.assertIn(b"f", self.server.functions)
        self.clock.advance(100)
        worker.canDo(b"f")
        worker.complete(worker.take()[0])
        worker.lose()
        self.server.createFunction(b"d")
        self.assertEqual(self.known(), [b"d", b"f"])

    def test_limitsCleared(self) -> None:
        """
        Clearing a function's limits (C{maxqueue f}) leaves it idle.
        """
        self.server.createFunction(b"f")
        self.server.setMaxQueue(b"f", (1, 1, 1))
        for name in (b"a", b"b"):
            self.server.createFunction(name)
        self.assertEqual(self.known(), [b"a", b"b", b"f"])
        self.server.setMaxQueue(b"f", (0, 0, 0))
        self.assertEqual(self.known(), [b"b", b"f"])

    def test_duplicateAbilities(self) -> None:
        """
        A worker that registered a function twice, and another once, frees
        it when the last of them goes.
        """
        first, second = self.conn(), self.conn()
        first.canDo(b"f", b"f", b"g")
        second.canDo(b"f")
        first.lose()
        self.server.createFunction(b"a")
        self.server.createFunction(b"b")
        self.assertEqual(self.known(), [b"a", b"b", b"f"])
        second.lose()
        self.assertEqual(self.known(), [b"b", b"f"])

    def test_storeFailed(self) -> None:
        """
        A function whose only job the persistent queue failed to store is
        idle.
        """
        queue = FakeQueue()
        server = self.server = JobServer(self.clock, handlePrefix=b"H", queue=queue, idleFunctions=0)
        Conn(server).submit(b"f", background=True)
        self.clock.advance(0)
        self.assertIn(b"f", server.functions)
        [(_, d)] = queue.adds
        d.errback(QueueError("disk full"))
        self.assertEqual(self.known(), [])


class ForgottenTests(FunctionsTestCase):
    """
    A function forgotten with nothing left comes back whole on next use.
    """

    idleFunctions = 0

    def test_nothingKept(self) -> None:
        """
        With C{idleFunctions} 0 a function is forgotten as soon as it is
        idle, and nothing refers to it.
        """
        conn = self.conn()
        conn.canDo(b"F")
        function = self.server.functions[b"F"]
        conn.created(b"F", unique=b"u")
        conn.sleep()
        conn.complete(conn.take()[0])
        self.assertIn(b"F", self.server.functions)
        conn.lose()
        self.assertForgotten(b"F", function)

    def test_recreated(self) -> None:
        """
        A forgotten function's name makes a new function, with a new
        number, that queues jobs of every kind, wakes and serves workers,
        and finds its queued records by handle.
        """
        client, worker = self.conn(), self.conn()
        self.churn(worker, b"f")
        self.assertEqual(self.known(), [])
        first = self.server._lastFunctionIdent
        worker.canDo(b"f")
        self.assertEqual(worker.sleep(), [])
        record = client.created(b"f", background=True, data=b"record")
        self.assertEqual(worker.packets(), [NOOP])
        looked = client.created(b"f", background=True, data=b"looked up")
        unique = client.created(b"f", unique=b"u", data=b"unique")
        self.assertEqual(client.created(b"f", unique=b"u"), unique)
        self.clock.advance(10)
        scheduled = client.created(b"f", background=True, when=20, data=b"scheduled")
        function = self.server.functions[b"f"]
        self.assertGreater(function.ident, first)
        self.assertEqual(statusPayload(self.server.getStatus(looked)), b"%s\x001\x000\x000\x000" % (looked,))
        job = self.server.lookup(looked)
        assert job is not None
        self.assertEqual(job.function, function)
        self.clock.advance(10)
        taken = [worker.take() for _ in range(4)]
        self.assertEqual(
            taken, [(record, b"record"), (looked, b"looked up"), (unique, b"unique"), (scheduled, b"scheduled")]
        )
        for handle, _ in taken:
            worker.complete(handle)
        self.assertEqual(client.packets(), [(P.WORK_COMPLETE, [unique, b"r"])] * 2)
        self.assertEqual(function.submitted, [0, 4, 0])
        self.assertEqual(worker.grab(), [NO_JOB])
        worker.lose()
        self.assertForgotten(b"f", function)

    def test_recreatedWithPersistence(self) -> None:
        """
        With a persistent queue, jobs of a forgotten and recreated function
        are stored and forgotten by name, and records replayed for a
        function the server does not know make it.
        """
        queue = FakeQueue()
        server = self.server = JobServer(self.clock, handlePrefix=b"H", queue=queue, idleFunctions=0)
        client, worker = Conn(server), Conn(server)
        for data in (b"1", b"2"):
            worker.canDo(b"f")
            server.submit(client.peer, b"f", b"", data, model.NORMAL, True)
            self.clock.advance(0)
            self.assertEqual([job.function for job, _ in queue.adds], [b"f"])
            queue.commit()
            [(_, [handle])] = client.packets()
            self.assertEqual(worker.take(), (handle, data))
            worker.complete(handle)
            self.clock.advance(0)
            server.cantDo(worker.peer, b"f")
            self.assertEqual(self.known(), [])
        self.assertEqual(queue.dones, [1, 2])
        server.restore(QueuedJob(b"g", 7, b"", b"replayed", model.LOW, 0))
        worker.canDo(b"g")
        self.assertEqual(worker.take()[1], b"replayed")


class FunctionMemoryTests(FunctionsTestCase):
    """
    What functions cost in memory.
    """

    def setUp(self) -> None:
        super().setUp()
        gc.collect()
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)

    def measure(self, work) -> int:
        """
        Bytes still allocated after C{work()}, that were not before.
        """
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before

    def test_idleFunctionSmall(self) -> None:
        """
        A function without workers or jobs costs about 400 bytes, its name
        and the server's dictionaries included (it was 3 KB: three empty
        deques, lists and dictionaries of its own).
        """
        self.server.idleFunctions = 20000
        conn = self.conn()

        def work() -> None:
            for number in range(10000):
                name = b"function-%d" % (number,)
                conn.canDo(name)
                self.server.cantDo(conn.peer, name)

        used = self.measure(work)
        self.assertEqual(len(self.server.functions), 10000)
        self.assertLess(used / 10000, 600)

    def test_churnFlat(self) -> None:
        """
        100,000 new names used once each, by workers (CAN_DO, CANT_DO) or by
        jobs (submitted, run and completed), leave the memory as it was
        once C{idleFunctions} functions are idle (each kept 3 KB before).
        """
        self.server.idleFunctions = 1000
        conn = self.conn()

        def byWorkers(names) -> None:
            for name in names:
                conn.canDo(name)
                self.server.cantDo(conn.peer, name)

        def byJobs(names) -> None:
            server, peer = self.server, conn.peer
            for name in names:
                server.canDo(peer, name)
                server.submit(peer, name, b"", b"x", model.NORMAL, True)
                server.grab(peer, P.GRAB_JOB)
                [handle] = peer.held
                server.workComplete(peer, handle.handle, handle.handle + b"\0")
                server.cantDo(peer, name)
                conn.out.clear()

        byWorkers(b"first-%d" % (number,) for number in range(1000))
        byJobs(b"first-job-%d" % (number,) for number in range(1000))
        self.assertEqual(len(self.server.functions), 1000)
        grown = self.measure(lambda: byWorkers(b"w%d" % (number,) for number in range(80000)))
        grown += self.measure(lambda: byJobs(b"j%d" % (number,) for number in range(20000)))
        self.assertEqual(len(self.server.functions), 1000)
        self.assertEqual(self.server.jobCount(), 0)
        # As large as they were, or resized meanwhile: the server's
        # dictionaries of 1,000 functions take about 100 KB.
        self.assertLess(grown, 200000)


class CountingDict(Dict[Peer, None]):
    """
    A dictionary that counts the entries written to it.
    """

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.writes = 0

    def __setitem__(self, key, value) -> None:
        self.writes += 1
        super().__setitem__(key, value)


class PreSleepCostTests(FunctionsTestCase):
    """
    A worker of 20,000 functions: each PRE_SLEEP costs the same whatever
    their number (it wrote the worker into each function's sleepers: 0.7 ms
    a PRE_SLEEP), and the worker is still woken by a job of any of them.
    """

    def setUp(self) -> None:
        super().setUp()
        self.worker = self.conn()
        self.names = [b"f%d" % (number,) for number in range(20000)]
        self.worker.canDo(*self.names)
        self.functions = [self.server.functions[name] for name in self.names]
        for function in self.functions:
            function.sleepers = CountingDict(function.sleepers)
        self.looked = self.watchLooks()

    def writes(self) -> int:
        """
        Sleeper entries written since the last call.
        """
        total = 0
        for function in self.functions:
            sleepers = function.sleepers
            assert isinstance(sleepers, CountingDict)
            total += sleepers.writes
            sleepers.writes = 0
        return total

    def test_sleepCostsNothingPerFunction(self) -> None:
        """
        PRE_SLEEP then GRAB, again and again, with no job anywhere, writes
        no sleeper entry and looks at no function.
        """
        for _ in range(100):
            self.assertEqual(self.worker.sleep(), [])
            self.assertEqual(self.worker.grab(), [NO_JOB])
        self.assertEqual((self.writes(), self.looked), (0, []))

    def test_wokenByAnyFunction(self) -> None:
        """
        A job of any of its functions wakes the sleeping worker, once until
        its next GRAB; going back to sleep, it is put back only on the
        sleepers of the functions whose jobs woke it or passed it by.
        """
        client = self.conn()
        self.worker.sleep()
        first = client.created(b"f777", background=True)
        self.assertEqual(self.worker.packets(), [NOOP])
        client.created(b"f5", background=True)
        self.assertEqual(self.worker.packets(), [])
        self.assertEqual(self.worker.take()[0], first)
        self.assertEqual(self.worker.take()[0], b"H:2")
        self.assertEqual(self.worker.sleep(), [])
        self.assertEqual(self.writes(), 2)
        for name in (b"f777", b"f5", b"f19999", b"f0"):
            client.created(name, background=True)
            self.assertEqual(self.worker.packets(), [NOOP], name)
            self.assertEqual(self.worker.grab()[0][0], P.JOB_ASSIGN_UNIQ)
            self.assertEqual(self.worker.sleep(), [])
        self.assertEqual(self.writes(), 4)

    def test_otherSleepersStillWoken(self) -> None:
        """
        With several workers of a function, jobs wake those asleep one per
        job, whether they registered before or after the many-function
        worker, asleep or awake.
        """
        before, after, client = self.conn(), self.conn(), self.conn()
        before.canDo(b"f3")
        self.worker.sleep()
        after.canDo(b"f3")
        after.sleep()
        client.created(b"f3", background=True)
        client.created(b"f3", background=True)
        self.assertEqual([len(c.packets()) for c in (self.worker, before, after)], [1, 0, 1])
        self.worker.take()
        after.take()
        self.assertEqual(before.sleep(), [])
        client.created(b"f3", background=True)
        self.assertEqual([len(c.packets()) for c in (self.worker, before, after)], [0, 1, 0])


class ClientLossCostTests(FunctionsTestCase):
    """
    Many clients waiting on one job leave: each departure costs about the
    same whatever their number (it rebuilt the job's list of clients).
    """

    def test_manyLeave(self) -> None:
        """
        20,000 clients of one job leave in random order in well under a
        second (5 s before, for the list rebuilt at each departure); the
        job counts its live clients all along, results reach those left,
        and it is abandoned when the last one goes.
        """
        server = self.server
        worker = self.conn()
        clients = [self.conn() for _ in range(20000)]
        for client in clients:
            client.created(unique=b"u")
        random.Random(17).shuffle(clients)
        started = time.perf_counter()
        for client in clients[:19990]:
            client.lose()
        self.assertLess(time.perf_counter() - started, 1.0)
        self.assertEqual(statusPayload(server.getStatusUnique(b"u")), b"u\x001\x000\x000\x000\x0010")
        worker.canDo(b"f")
        handle = worker.take()[0]
        worker.data(handle)
        self.assertEqual([len(c.packets()) for c in clients[19990:]], [1] * 10)
        self.assertEqual(sum(len(c.out) for c in clients[:19990]), 0)
        for client in clients[19990:]:
            client.lose()
        self.assertEqual(statusPayload(server.getStatusUnique(b"u")), b"u\x001\x001\x000\x000\x000")
        self.assertTrue(server.jobs[handle].ignore)

    def test_queuedAbandoned(self) -> None:
        """
        A queued job of many clients is abandoned when the last leaves and
        never runs; one submitted twice by a client counts twice.
        """
        clients = [self.conn() for _ in range(40)]
        for client in clients:
            client.created(unique=b"u")
        clients[0].created(unique=b"u")
        for client in clients[1:]:
            client.lose()
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u")), b"u\x001\x000\x000\x000\x002")
        clients[0].lose()
        worker = self.conn()
        worker.canDo(b"f")
        self.assertEqual(worker.grab(), [NO_JOB])
        self.assertEqual(self.server.jobCount(), 0)

    def test_rejoined(self) -> None:
        """
        Clients joining a job after others left are counted and answered.
        """
        clients = [self.conn() for _ in range(40)]
        for client in clients:
            handle = client.created(unique=b"u")
        for client in clients[:15]:
            client.lose()
        late = self.conn()
        late.created(unique=b"u")
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u"))[-3:], b"\x0026")
        worker = self.conn()
        worker.canDo(b"f")
        worker.take()
        worker.complete(handle)
        self.assertEqual(late.packets(), [(P.WORK_COMPLETE, [handle, b"r"])])
        self.assertEqual(sum(len(c.packets()) for c in clients[15:]), 25)
        self.assertEqual(statusPayload(self.server.getStatusUnique(b"u"))[-2:], b"\x000")


class SharedEmptyValuesTests(FunctionsTestCase):
    """
    Functions share empty queues, sleepers, uniques and limits until they
    need their own; nothing ever writes the shared ones.
    """

    def test_untouched(self) -> None:
        """
        After workers, sleepers, jobs of every kind, limits, cancels and
        drops, the shared values are still empty.
        """
        client, worker = self.conn(), self.conn()
        worker.sleep()
        worker.canDo(b"a", b"b")
        worker.packets()
        self.server.createFunction(b"c")
        self.server.setMaxQueue(b"c", (1, 2, 3))
        for name in (b"a", b"b", b"c", b"d"):
            client.created(name, unique=b"u", priority=model.HIGH)
            client.created(name, background=True, priority=model.LOW)
        self.server.cancel(b"H:1")
        worker.sleep()
        worker.take()
        self.server.setMaxQueue(b"c", (0, 0, 0))
        self.server.dropFunction(b"c")
        worker.lose()
        client.lose()
        self.assertEqual((model.NO_SLEEPERS, model.NO_UNIQUES, model.NO_LIMITS), ({}, {}, [0, 0, 0]))
        self.assertEqual(model.NO_QUEUES, ((), (), ()))
