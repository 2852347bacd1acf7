"""
Stored results (L{gearman_tw.server.results}): kept per policy, found by
handle and unique, bounded, expired, persisted, and the unique window.
"""

import base64
from typing import List

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw.errors import QueueError
from gearman_tw.protocol import PacketType
from gearman_tw.queues import RESULTS
from gearman_tw.server.admin import AdminCommands
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.lifecycle import Policies
from gearman_tw.server.model import NORMAL
from gearman_tw.server.results import COMPLETE, EXCEPTION, FAIL, Results, StoredResult
from tests.test_server_jobs import Conn
from tests.test_server_persistence import FakeQueue

P = PacketType

POLICIES = """
[default]
keep-results = 60
results = 3

[functions.window]
unique-window = 30

[functions.both]
keep-results = 60
unique-window = 10

[functions.retried]
keep-results = 60
max-attempts = 2
"""


def stored(n: int, function: bytes = b"f", **changes: object) -> StoredResult:
    fields = dict(
        function=function,
        handle=b"H:%d" % n,
        unique=b"u%d" % n,
        key=b"u%d" % n,
        outcome=COMPLETE,
        data=b"r\0%d" % n,
        finished=float(n),
        expires=100.0 + n,
    )
    fields.update(changes)
    return StoredResult(**fields)  # type: ignore[arg-type]


class ResultsStoreTests(SynchronousTestCase):
    """
    L{Results} on its own.
    """

    def test_lookups(self) -> None:
        results = Results()
        one, two = stored(1), stored(2, unique=b"u1", key=b"u1", function=b"g")
        results.add(one, None)
        results.add(two, None)
        self.assertEqual(results.byHandle(b"H:1", 0), one)
        self.assertEqual(results.byUnique(b"u1", 0), two)
        self.assertEqual(results.byKey(b"f", b"u1", 0), one)
        self.assertEqual(results.byKey(b"g", b"u1", 0), two)
        self.assertIsNone(results.byHandle(b"H:9", 0))
        self.assertIsNone(results.byHandle(b"H:1", 101.0))

    def test_uniqueFallsBack(self) -> None:
        """
        When the newest result with a unique expires or goes, the one
        before it (of any function) is found by the unique again.
        """
        results = Results()
        older = stored(1, unique=b"u", expires=60.0)
        newer = stored(2, unique=b"u", function=b"g", handle=b"H:2", expires=5.0)
        results.add(older, None)
        results.add(newer, None)
        self.assertEqual(results.byUnique(b"u", 1.0), newer)
        # Expired, not yet taken away: already the older.
        self.assertEqual(results.byUnique(b"u", 6.0), older)
        self.assertEqual(results.expire(6.0), [newer])
        self.assertEqual(results.byUnique(b"u", 6.0), older)
        results.add(stored(3, unique=b"u", handle=b"H:3", expires=70.0), None)
        results.add(stored(1, unique=b"v", expires=70.0), None)  # H:1 replaced
        self.assertEqual(results.byUnique(b"u", 6.0).handle, b"H:3")  # type: ignore[union-attr]
        self.assertEqual(sorted(r.handle for r in results.expire(80.0)), [b"H:1", b"H:3"])
        self.assertEqual((results._byUnique, len(results)), ({}, 0))

    def test_boundedOldestDropped(self) -> None:
        results = Results()
        kept = [stored(n) for n in range(5)]
        dropped: List[StoredResult] = []
        for result in kept:
            dropped.extend(results.add(result, 3))
        self.assertEqual(dropped, kept[:2])
        self.assertEqual(results.of(b"f"), kept[2:])
        self.assertIsNone(results.byUnique(b"u0", 0))
        self.assertEqual(results.functions(), {b"f": 3})

    def test_expiryEntriesBounded(self) -> None:
        """
        Results dropped for room do not pile up in the expiry heap until
        they would have expired.
        """
        results = Results()
        for n in range(10000):
            results.add(stored(n, expires=10**6), 10)
        self.assertEqual(len(results), 10)
        self.assertLessEqual(len(results._expiring), 2 * 10 + 64 + 1)
        self.assertEqual(results.nextExpiry(), 10**6)

    def test_sameHandleReplaced(self) -> None:
        results = Results()
        results.add(stored(1), None)
        newer = stored(1, data=b"new", unique=b"v", key=b"v")
        results.add(newer, None)
        self.assertEqual((len(results), results.byHandle(b"H:1", 0)), (1, newer))
        self.assertIsNone(results.byUnique(b"u1", 0))

    def test_expire(self) -> None:
        results = Results()
        for n in (3, 1, 2):
            results.add(stored(n), None)
        self.assertEqual(results.nextExpiry(), 101.0)
        self.assertEqual([r.handle for r in results.expire(102.0)], [b"H:1", b"H:2"])
        self.assertEqual(results.nextExpiry(), 103.0)
        results.add(stored(3, data=b"again", expires=500.0), None)
        self.assertEqual(results.nextExpiry(), 500.0)
        self.assertEqual(results.expire(499.0), [])
        self.assertEqual(len(results.expire(500.0)), 1)
        self.assertIsNone(results.nextExpiry())

    def test_encoding(self) -> None:
        for result in (stored(1), stored(2, unique=b"", key=b"", data=b"", outcome=EXCEPTION)):
            self.assertEqual(StoredResult.decode(result.encode()), result)
        encoded = stored(1).encode()
        for bad in (encoded[:-1], encoded[:5], encoded + b"x"):
            self.assertRaises(QueueError, StoredResult.decode, bad)
        self.assertRaises(QueueError, StoredResult.decode, stored(1, outcome=7).encode())


class ServerResultsTests(SynchronousTestCase):
    """
    The job server keeps results per policy.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.server = JobServer(self.clock, handlePrefix=b"H", policies=Policies.fromText(POLICIES))
        self.admin = AdminCommands(self.server)
        self.client = Conn(self.server)
        self.worker = Conn(self.server)
        self.worker.canDo(b"f", b"window", b"retried")

    def line(self, line: bytes) -> bytes:
        reply = self.admin.execute(self.client.peer, line)
        assert isinstance(reply, bytes)
        return reply

    def test_backgroundKept(self) -> None:
        """
        A background job's WORK_COMPLETE data, WORK_FAIL words and
        WORK_EXCEPTION data are kept for keep-results seconds.
        """
        handles = [self.client.created(b"f", unique=b"k%d" % n, background=True) for n in range(3)]
        handle, _ = self.worker.take()
        self.worker.complete(handle, b"done\0!")
        handle, _ = self.worker.take()
        self.server.workFail(self.worker.peer, handle, b"bad input")
        handle, _ = self.worker.take()
        self.worker.exception(handle, b"boom")
        outcomes = [(r.outcome, r.data, r.expires) for r in map(self.server.resultOf, handles)]  # type: ignore[union-attr]
        self.assertEqual(
            outcomes, [(COMPLETE, b"done\0!", 1060.0), (FAIL, b"bad input", 1060.0), (EXCEPTION, b"boom", 1060.0)]
        )
        self.assertEqual(self.server.resultOfUnique(b"k1").handle, handles[1])  # type: ignore[union-attr]
        self.clock.advance(60)
        self.assertIsNone(self.server.resultOf(handles[0]))
        self.assertEqual(len(self.server.results), 0)

    def test_foregroundNotKept(self) -> None:
        """
        A foreground job's result went to its clients: it is not kept
        (without a unique window).
        """
        self.client.submit(b"f", unique=b"x")
        handle, _ = self.worker.take()
        self.worker.complete(handle)
        self.assertIsNone(self.server.resultOf(handle))

    def test_givenUp(self) -> None:
        """
        A job given up after its attempts keeps why as a failure.
        """
        handle = self.client.created(b"retried", background=True)
        for _ in range(2):
            worker = Conn(self.server)
            worker.canDo(b"retried")
            worker.take()
            worker.lose()
        result = self.server.resultOf(handle)
        assert result is not None
        self.assertEqual((result.outcome, result.data), (FAIL, b"worker lost"))

    def test_bounded(self) -> None:
        """
        At most C{results} per function; the oldest go.
        """
        handles = []
        for _ in range(5):
            handles.append(self.client.created(b"f", background=True))
            handle, _ = self.worker.take()
            self.worker.complete(handle)
        self.assertEqual([r.handle for r in self.server.results.of(b"f")], handles[2:])

    def test_stopTimers(self) -> None:
        """
        stopTimers leaves the clock with no call of the server's: results
        expiring, backoffs and epoch jobs coming due, rates refilling.
        """
        self.server.changePolicy(b"f", {"max-rate": 1})
        handle = self.client.created(b"f", background=True)
        self.client.created(b"f", background=True)
        self.client.created(b"f", background=True, when=5000)
        self.worker.take()
        self.worker.complete(handle)
        self.assertEqual(self.worker.grab(), [(P.NO_JOB, [])])
        self.assertGreaterEqual(len(self.clock.getDelayedCalls()), 3)
        self.server.stopTimers()
        self.assertEqual([call for call in self.clock.getDelayedCalls() if call.active()], [])

    def test_offByDefault(self) -> None:
        server = JobServer(self.clock, handlePrefix=b"H")
        client, worker = Conn(server), Conn(server)
        worker.canDo(b"f")
        handle = client.created(b"f", unique=b"u", background=True)
        worker.take()
        worker.complete(handle)
        self.assertEqual(len(server.results), 0)

    def test_adminResult(self) -> None:
        """
        C{result HANDLE} and C{result unique UNIQUE} show a live job's
        state or a stored result, data in base64 lines.
        """
        handle = self.client.created(b"f", unique=b"key", background=True, data=b"in")
        self.assertEqual(self.line(b"result " + handle), b"function f\nhandle H:1\nunique key\noutcome queued\n.\n")
        self.worker.take()
        self.assertIn(b"outcome running\n", self.line(b"result unique key"))
        self.worker.complete(handle, b"\xffout")
        self.assertEqual(
            self.line(b"result " + handle),
            b"function f\nhandle H:1\nunique key\noutcome complete\nfinished 1000.000\nexpires 1060.000\n"
            b"data " + base64.b64encode(b"\xffout") + b"\n.\n",
        )
        self.assertEqual(self.line(b"result unique key"), self.line(b"result " + handle))
        self.assertEqual(self.line(b"result H:99"), b"ERR UNKNOWN_JOB\r\n")
        self.assertEqual(self.line(b"result unique nothing"), b"ERR UNKNOWN_JOB\r\n")
        self.assertTrue(self.line(b"result").startswith(b"ERR INVALID_ARGUMENTS"))

    def test_adminLongData(self) -> None:
        """
        Data longer than one line's worth comes in several data lines.
        """
        handle = self.client.created(b"f", background=True)
        self.worker.take()
        data = bytes(range(256)) * 1000
        self.worker.complete(handle, data)
        lines = self.line(b"result " + handle).split(b"\n")
        chunks = [line[5:] for line in lines if line.startswith(b"data ")]
        self.assertEqual(len(chunks), 6)
        self.assertEqual(base64.b64decode(b"".join(chunks)), data)

    def test_aclTarget(self) -> None:
        protocol = GearmanServerFactory(self.server).buildProtocol(None)
        assert protocol is not None
        handle = self.client.created(b"f", unique=b"key", background=True)
        self.assertEqual(protocol._adminTarget(b"result " + handle), b"f")
        self.worker.take()
        self.worker.complete(handle)
        self.assertEqual(protocol._adminTarget(b"result " + handle), b"f")
        self.assertEqual(protocol._adminTarget(b"result unique key"), b"f")
        self.assertEqual(protocol._adminTarget(b"result H:77"), b"*")


class UniqueWindowTests(SynchronousTestCase):
    """
    A submission with the unique of a job that completed within the
    window is answered from its result.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.server = JobServer(self.clock, handlePrefix=b"H", policies=Policies.fromText(POLICIES))
        self.client = Conn(self.server)
        self.worker = Conn(self.server)
        self.worker.canDo(b"window")

    def completeOnce(self, unique: bytes = b"u", data: bytes = b"x") -> bytes:
        handle = self.client.created(b"window", unique=unique, data=data)
        self.worker.take()
        self.worker.complete(handle, b"result")
        self.client.packets()
        return handle

    def test_foregroundAnswered(self) -> None:
        handle = self.completeOnce()
        self.clock.advance(29)
        self.assertEqual(
            self.client.submit(b"window", unique=b"u"),
            [(P.JOB_CREATED, [handle]), (P.WORK_COMPLETE, [handle, b"result"])],
        )
        self.assertEqual(self.worker.grab(), [(P.NO_JOB, [])])
        self.assertEqual(self.server.functions[b"window"].answeredFromResults, 1)

    def test_backgroundAnswered(self) -> None:
        handle = self.completeOnce()
        self.assertEqual(self.client.submit(b"window", unique=b"u", background=True), [(P.JOB_CREATED, [handle])])
        self.assertEqual(self.worker.grab(), [(P.NO_JOB, [])])

    def test_metrics(self) -> None:
        """
        /metrics counts submissions answered from results, and results
        kept, per function.
        """
        from twisted.web.test.requesthelper import DummyRequest

        from gearman_tw.server.metrics import JobServerCollector, MetricsResource
        from tests.test_server_metrics import samples

        self.completeOnce()
        self.client.submit(b"window", unique=b"u")
        body = MetricsResource(JobServerCollector(self.server)).render_GET(DummyRequest([b""]))  # type: ignore[arg-type]
        assert isinstance(body, bytes)
        found = samples(body.decode("utf-8"))
        label = (("function", "window"),)
        self.assertEqual(found[("gearman_jobs_answered_from_results_total", label)], 1)
        self.assertEqual(found[("gearman_stored_results", label)], 1)

    def test_afterWindowRunsAgain(self) -> None:
        self.completeOnce()
        self.clock.advance(30)
        [(ptype, _)] = self.client.submit(b"window", unique=b"u")
        self.assertEqual(ptype, P.JOB_CREATED)
        self.assertEqual(self.worker.take()[1], b"x")

    def test_windowShorterThanKeeping(self) -> None:
        """
        A result kept longer than the window (keep-results) answers only
        within the window.
        """
        self.worker.canDo(b"both")
        handle = self.client.created(b"both", unique=b"u", background=True)
        self.worker.take()
        self.worker.complete(handle, b"result")
        self.clock.advance(9)
        self.assertEqual(
            self.client.submit(b"both", unique=b"u"),
            [(P.JOB_CREATED, [handle]), (P.WORK_COMPLETE, [handle, b"result"])],
        )
        self.clock.advance(1)
        [(ptype, [again])] = self.client.submit(b"both", unique=b"u")
        self.assertNotEqual(again, handle)
        self.assertIsNotNone(self.server.resultOf(handle))

    def test_otherUniqueRuns(self) -> None:
        self.completeOnce()
        self.client.submit(b"window", unique=b"v")
        self.assertEqual(len(self.worker.grab()), 1)

    def test_dashUniqueByData(self) -> None:
        """
        With unique C{-}, the data is the key: the same data is answered,
        other data runs.
        """
        handle = self.completeOnce(b"-", b"same")
        self.assertEqual(self.client.submit(b"window", unique=b"-", data=b"same")[0], (P.JOB_CREATED, [handle]))
        self.client.submit(b"window", unique=b"-", data=b"other")
        self.assertEqual(self.worker.take()[1], b"other")

    def test_failureRunsAgain(self) -> None:
        """
        Only a completed job answers: after a failure the job runs again.
        """
        self.client.created(b"window", unique=b"u")
        handle, _ = self.worker.take()
        self.worker.fail(handle)
        self.client.packets()
        self.client.submit(b"window", unique=b"u")
        self.assertEqual(len(self.worker.grab()), 1)

    def test_otherFunctionRuns(self) -> None:
        """
        The window is per function.
        """
        self.completeOnce()
        self.worker.canDo(b"f")
        self.client.submit(b"f", unique=b"u")
        self.assertEqual(len(self.worker.grab()), 1)

    def test_liveJobJoined(self) -> None:
        """
        A live job with the unique is joined as ever, window or not.
        """
        self.completeOnce()
        self.clock.advance(31)
        handle = self.client.created(b"window", unique=b"u")
        other = Conn(self.server)
        self.assertEqual(other.submit(b"window", unique=b"u"), [(P.JOB_CREATED, [handle])])


class StoredResultsPersistenceTests(SynchronousTestCase):
    """
    With a persistent queue, a result is stored in the change that
    forgets its job, dropped when it expires or makes room, and restored.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.queue = FakeQueue()
        self.server = JobServer(self.clock, handlePrefix=b"H", policies=Policies.fromText(POLICIES), queue=self.queue)
        self.client = Conn(self.server)
        self.worker = Conn(self.server)
        self.worker.canDo(b"f")

    def runJob(self, data: bytes) -> bytes:
        self.server.submit(self.client.peer, b"f", b"", data, NORMAL, True)
        self.clock.advance(0)
        self.queue.commit()
        handle, _ = self.worker.take()
        self.worker.complete(handle, b"out:" + data)
        return handle

    def test_storedWithDone(self) -> None:
        handle = self.runJob(b"a")
        [(kind, [(ident, value)], done, dropped)] = self.queue.changes
        self.assertEqual((kind, ident, done, dropped), (RESULTS, handle, [1], []))
        self.assertEqual(StoredResult.decode(value), self.server.resultOf(handle))
        self.clock.advance(0)
        self.assertEqual(self.queue.dones, [1])

    def test_droppedForRoomAndExpiry(self) -> None:
        handles = [self.runJob(b"%d" % n) for n in range(4)]
        self.assertEqual(self.queue.changes[-1][3], [handles[0]])
        self.clock.advance(60)
        self.assertEqual(self.queue.changes[-1], (RESULTS, [], [], handles[1:]))

    def test_restore(self) -> None:
        """
        Restored results are found again; expired ones are dropped; new
        handles are numbered above theirs.
        """
        server = JobServer(self.clock, handlePrefix=b"H", queue=self.queue)
        live = stored(41, handle=b"H:41", expires=2000.0)
        old = stored(7, handle=b"H:7", expires=900.0)
        foreign = stored(9, handle=b"Other:99999", expires=2000.0)
        server.restoreResults([(r.handle, r.encode()) for r in (live, old, foreign)])
        self.assertEqual(server.resultOf(b"H:41"), live)
        self.assertEqual(server.resultOf(b"Other:99999"), foreign)
        self.assertIsNone(server.resultOf(b"H:7"))
        self.assertEqual(self.queue.changes, [(RESULTS, [], [], [b"H:7"])])
        self.assertEqual(Conn(server).created(b"f"), b"H:42")
        self.clock.advance(1000)
        self.assertIsNone(server.resultOf(b"H:41"))

    def test_restoreCorrupt(self) -> None:
        self.assertRaises(QueueError, self.server.restoreResults, [(b"H:1", b"junk")])
