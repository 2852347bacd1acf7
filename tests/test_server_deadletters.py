"""
Tests for dead letters (L{gearman_tw.server.deadletters}), their policy and
their admin commands.
"""

from typing import List

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from gearman_tw.protocol import PacketType
from gearman_tw.server.admin import AdminCommands
from gearman_tw.server.deadletters import DeadLetter, DeadLetters
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.lifecycle import Policies, PoliciesError
from gearman_tw.server.metrics import JobServerCollector, MetricsResource
from tests.test_server_jobs import Conn
from tests.test_server_metrics import samples

P = PacketType

POLICIES = """
[default]
max-attempts = 2
dead-letters = 3

[functions.fragile]
dead-letters = 2
retry-failures = false

[functions.nothing]
dead-letters = 0
"""


class DeadLettersStoreTests(SynchronousTestCase):
    """
    L{DeadLetters} on its own.
    """

    def letter(self, store: DeadLetters, function: bytes = b"f") -> DeadLetter:
        return DeadLetter(store.nextIdent(), function, b"H:1", b"", b"d", 1, 1, b"why", 1.0, 2.0)

    def test_boundedOldestDropped(self) -> None:
        store = DeadLetters()
        letters = [self.letter(store) for _ in range(5)]
        for letter in letters:
            store.add(letter, 3)
        self.assertEqual(store.of(b"f"), letters[2:])
        self.assertEqual((store.dropped, store.functions(), len(store)), ({b"f": 2}, {b"f": 3}, 3))

    def test_remove(self) -> None:
        store = DeadLetters()
        letters = [self.letter(store) for _ in range(3)]
        for letter in letters:
            store.add(letter, 10)
        self.assertEqual(store.remove(b"f", [letters[1].ident, 999]), [letters[1]])
        self.assertEqual(store.remove(b"g"), [])
        self.assertEqual(store.remove(b"f"), [letters[0], letters[2]])
        self.assertEqual(store.functions(), {})


class DeadLetterServerTests(SynchronousTestCase):
    """
    The job server keeps background jobs it gives up, per policy.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.server = JobServer(self.clock, handlePrefix=b"H", policies=Policies.fromText(POLICIES))
        self.admin = AdminCommands(self.server)
        self.client = Conn(self.server)

    def loseTwice(self, name: bytes) -> None:
        for _ in range(2):
            worker = Conn(self.server)
            worker.canDo(name)
            worker.take()
            self.clock.advance(1)
            worker.lose()

    def command(self, line: bytes) -> bytes:
        reply = self.admin.execute(Conn(self.server).peer, line)
        assert isinstance(reply, bytes), reply
        return reply

    def test_attemptsUsedUp(self) -> None:
        """
        A background job whose attempts are used up is kept with its data,
        unique, attempts and why; the admin lists it.
        """
        handle = self.client.created(b"f", background=True, unique=b"u1", data=b"payload")
        self.loseTwice(b"f")
        [letter] = self.server.deadLetters.of(b"f")
        self.assertEqual(
            (letter.handle, letter.unique, letter.data, letter.attempts, letter.error, letter.submitted, letter.failed),
            (handle, b"u1", b"payload", 2, b"worker lost", 1000.0, 1002.0),
        )
        self.assertEqual(self.command(b"deadletters"), b"f\t1\t0\n.\n")
        self.assertEqual(
            self.command(b"deadletters f"), b"%d\t2\t1002\t%s\tu1\tworker lost\n.\n" % (letter.ident, handle)
        )
        self.assertEqual(self.command(b"deadletters other"), b".\n")

    def test_foregroundNotKept(self) -> None:
        """
        A job only foreground clients waited for fails to them and is not
        kept.
        """
        handle = self.client.created(b"f")
        self.loseTwice(b"f")
        self.assertEqual(self.client.packets(), [(P.WORK_FAIL, [handle])])
        self.assertEqual(len(self.server.deadLetters), 0)

    def test_failureKept(self) -> None:
        """
        Without retried failures, a background job that fails is kept with
        the worker's words; an exception too.
        """
        first = self.client.created(b"fragile", background=True, data=b"1")
        second = self.client.created(b"fragile", background=True, data=b"2")
        worker = Conn(self.server)
        worker.canDo(b"fragile")
        worker.take()
        self.server.workFail(worker.peer, first, b"disk\tfull\n")
        worker.take()
        worker.exception(second, b"Traceback")
        errors = [(letter.handle, letter.error, letter.attempts) for letter in self.server.deadLetters.of(b"fragile")]
        self.assertEqual(errors, [(first, b"disk\tfull\n", 1), (second, b"Traceback", 1)])
        self.assertIn(b"disk full ", self.command(b"deadletters fragile"))

    def test_noneKept(self) -> None:
        """
        C{dead-letters = 0}: dropped as in gearmand.
        """
        self.client.created(b"nothing", background=True)
        self.loseTwice(b"nothing")
        self.assertEqual((len(self.server.deadLetters), self.command(b"deadletters")), (0, b".\n"))

    def test_bounded(self) -> None:
        """
        Beyond its limit a function drops its oldest, counted.
        """
        for index in range(3):
            self.client.created(b"fragile", background=True, data=b"%d" % index)
            worker = Conn(self.server)
            worker.canDo(b"fragile")
            handle, _ = worker.take()
            worker.fail(handle)
        self.assertEqual([letter.data for letter in self.server.deadLetters.of(b"fragile")], [b"1", b"2"])
        self.assertEqual(self.command(b"deadletters"), b"fragile\t2\t1\n.\n")

    def test_namesCannotForgeLines(self) -> None:
        """
        The list of functions writes a name's newlines as C{status} does,
        so no name can end the listing early or add lines to it.
        """
        name = b"evil\n.\nOK 99"
        self.client.created(name, background=True)
        worker = Conn(self.server)
        worker.canDo(name)
        worker.fail(worker.take()[0])
        self.assertEqual(self.command(b"deadletters"), b"evil\\n.\\nOK 99\t1\t0\n.\n")

    def test_retry(self) -> None:
        """
        C{retry deadletters F [ID]} submits them again as new background
        jobs and forgets them.
        """
        for unique in (b"a", b"b"):
            self.client.created(b"f", background=True, unique=unique, data=unique)
            self.loseTwice(b"f")
        first, second = self.server.deadLetters.of(b"f")
        self.assertEqual(self.command(b"retry deadletters f %d" % (first.ident,)), b"OK 1\n")
        self.assertEqual(self.server.deadLetters.of(b"f"), [second])
        worker = Conn(self.server)
        worker.canDo(b"f")
        handle, data = worker.take()
        self.assertEqual(data, b"a")
        self.assertNotEqual(handle, first.handle)
        self.assertEqual(self.command(b"RETRY DEADLETTERS f"), b"OK 1\n")
        self.assertEqual(worker.take()[1], b"b")
        self.assertEqual(self.command(b"retry deadletters f"), b"OK 0\n")
        self.assertEqual(self.client.packets(), [])

    def test_purge(self) -> None:
        self.client.created(b"f", background=True)
        self.loseTwice(b"f")
        [letter] = self.server.deadLetters.of(b"f")
        self.assertEqual(self.command(b"purge deadletters f 99"), b"OK 0\n")
        self.assertEqual(self.command(b"purge deadletters f %d" % (letter.ident,)), b"OK 1\n")
        self.assertEqual(self.command(b"deadletters"), b".\n")

    def test_badArguments(self) -> None:
        for line in (b"retry", b"retry jobs f", b"purge deadletters", b"deadletters a b"):
            self.assertTrue(self.command(line).startswith(b"ERR INVALID_ARGUMENTS"), line)
        for line in (b"retry deadletters f x", b"purge deadletters f -1", b"retry deadletters f " + b"9" * 30):
            self.assertTrue(self.command(line).startswith(b"ERR INVALID_ARGUMENTS dead+letter"), line)

    def test_policyValues(self) -> None:
        with self.assertRaises(PoliciesError) as caught:
            Policies.fromText("[default]\ndead-letters = -1\n")
        self.assertIn("dead-letters must be a whole number, 0 or more (0: none kept)", str(caught.exception))


class DeadLetterACLTests(SynchronousTestCase):
    """
    The access policy sees the function a dead-letter command acts on.
    """

    def test_targets(self) -> None:
        from gearman_tw.server.factory import GearmanServerFactory

        factory = GearmanServerFactory(JobServer(Clock()))
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        targets: List[object] = [
            protocol._adminTarget(line)
            for line in (
                b"deadletters f",
                b"deadletters",
                b"retry deadletters g 3",
                b"purge deadletters h",
                b"retry x y",
            )
        ]
        self.assertEqual(targets, [b"f", b"*", b"g", b"h", b"*"])


class LifecycleMetricsTests(SynchronousTestCase):
    """
    /metrics counts retries, time limits and dead letters per function.
    """

    def test_counted(self) -> None:
        clock = Clock()
        server = JobServer(
            clock,
            handlePrefix=b"H",
            policies=Policies.fromText("[default]\nmax-attempts = 3\ntime-limit = 5\ndead-letters = 1\n"),
        )
        client = Conn(server)
        for data in (b"1", b"2"):
            client.created(b"f", background=True, data=data)
        worker = Conn(server)
        worker.canDo(b"f")
        for _ in range(3):
            worker.take()
            clock.advance(5)
        for _ in range(3):
            worker.take()
            worker.lose()
            worker = Conn(server)
            worker.canDo(b"f")
        request = DummyRequest([b""])
        body = MetricsResource(JobServerCollector(server)).render_GET(request)  # type: ignore[arg-type]
        assert isinstance(body, bytes)
        found = samples(body.decode("utf-8"))
        f = (("function", "f"),)
        self.assertEqual(found[("gearman_jobs_timed_out_total", f)], 3)
        self.assertEqual(found[("gearman_jobs_retried_total", f)], 4)
        self.assertEqual(found[("gearman_jobs_dead_lettered_total", f)], 2)
        self.assertEqual(found[("gearman_dead_letters", f)], 1)
        self.assertEqual(found[("gearman_dead_letters_dropped_total", f)], 1)


class PolicyCommandTests(SynchronousTestCase):
    """
    C{policy FUNCTION} shows the lifecycle policy that applies.
    """

    def test_policy(self) -> None:
        server = JobServer(
            Clock(),
            jobRetries=7,
            policies=Policies.fromText(
                '[functions."r*"]\nmax-attempts = 3\nbackoff = { base = 0.5 }\n'
                "time-limit = 2.5\nretry-failures = true\n"
            ),
        )
        admin = AdminCommands(server)
        peer = Conn(server).peer
        self.assertEqual(
            admin.execute(peer, b"policy resize"),
            b"backoff base=0.5 cap=300 factor=2 jitter=0.1\n"
            b"dead-letters 0\n"
            b"keep-results 0\n"
            b"max-attempts 3\n"
            b"max-rate 0\n"
            b"max-running 0\n"
            b"results 1000\n"
            b"retry-failures true\n"
            b"retry-foreground false\n"
            b"time-limit 2.5\n"
            b"unique-window 0\n"
            b".\n",
        )
        self.assertIn(b"max-attempts 7\n", admin.execute(peer, b"policy other"))  # type: ignore[operator]
        self.assertIn(b"backoff false\n", admin.execute(peer, b"policy other"))  # type: ignore[operator]
        self.assertTrue(admin.execute(peer, b"policy").startswith(b"ERR INVALID_ARGUMENTS"))  # type: ignore[union-attr]


class DeadLetterRetryEdgeTests(SynchronousTestCase):
    """
    Retrying dead letters when the retry is refused, and reduce jobs.
    """

    def test_refusedKept(self) -> None:
        """
        A retry into a full queue is refused: the letter stays, saying so,
        and the reply counts it out.
        """
        server = JobServer(Clock(), handlePrefix=b"H", policies=Policies.fromText(POLICIES))
        client, worker = Conn(server), Conn(server)
        worker.canDo(b"fragile")
        handle = client.created(b"fragile", background=True, unique=b"u1")
        worker.take()
        worker.fail(handle)
        server.setMaxQueue(b"fragile", (1, 1, 1))
        client.created(b"fragile", background=True, unique=b"u2")
        admin = AdminCommands(server)
        self.assertEqual(admin.execute(client.peer, b"retry deadletters fragile"), b"OK 0\n")
        [letter] = server.deadLetters.of(b"fragile")
        self.assertEqual((letter.unique, letter.error), (b"u1", b"retry refused: Job queue is full; before: WORK_FAIL"))
        # Refused again: the newest refusal, and still why it failed.
        self.assertEqual(admin.execute(client.peer, b"retry deadletters fragile"), b"OK 0\n")
        [letter] = server.deadLetters.of(b"fragile")
        self.assertEqual(letter.error, b"retry refused: Job queue is full; before: WORK_FAIL")

    def test_refusedKeptBeyondLoweredLimit(self) -> None:
        """
        Letters put back after a refused retry stay, all of them, when the
        function's limit was lowered since: the limit applies to new ones.
        """
        server = JobServer(Clock(), handlePrefix=b"H", policies=Policies.fromText(POLICIES))
        client, worker = Conn(server), Conn(server)
        worker.canDo(b"fragile")
        for index in range(2):
            handle = client.created(b"fragile", background=True, unique=b"u%d" % index)
            worker.take()
            worker.fail(handle)
        server.changePolicy(b"fragile", {"dead-letters": 1})
        server.setMaxQueue(b"fragile", (1, 1, 1))
        client.created(b"fragile", background=True, unique=b"other")
        admin = AdminCommands(server)
        self.assertEqual(admin.execute(client.peer, b"retry deadletters fragile"), b"OK 0\n")
        self.assertEqual([letter.unique for letter in server.deadLetters.of(b"fragile")], [b"u0", b"u1"])
        self.assertEqual(server.deadLetters.dropped, {})

    def test_reducerKept(self) -> None:
        """
        A background reduce job comes back with its reducer.
        """
        server = JobServer(Clock(), handlePrefix=b"H", policies=Policies.fromText(POLICIES))
        client, worker = Conn(server), Conn(server)
        worker.canDo(b"fragile")
        handle = client.created(b"fragile", background=True, unique=b"r", reducer=b"sum")
        worker.take()
        worker.fail(handle)
        self.assertEqual(server.deadLetters.of(b"fragile")[0].reducer, b"sum")
        self.assertEqual(server.retryDeadLetters(b"fragile"), 1)
        [job] = [job for job in server.liveJobs() if job.unique == b"r"]
        self.assertEqual(job.reducer, b"sum")


class AgeAndAttemptsMetricsTests(SynchronousTestCase):
    """
    /metrics: attempts per function and the oldest queued job's age.
    """

    def test_ageAndAttempts(self) -> None:
        clock = Clock()
        clock.advance(100)
        server = JobServer(clock, handlePrefix=b"H")
        client, worker = Conn(server), Conn(server)
        client.created(b"f", background=True, data=b"record")
        clock.advance(5)
        client.created(b"f", data=b"job", priority=0)
        client.created(b"g", background=True, unique=b"u")
        clock.advance(10)
        worker.canDo(b"f")
        worker.take()
        worker.lose()
        request = DummyRequest([b""])
        body = MetricsResource(JobServerCollector(server)).render_GET(request)  # type: ignore[arg-type]
        assert isinstance(body, bytes)
        found = samples(body.decode("utf-8"))
        self.assertEqual(found[("gearman_jobs_started_total", (("function", "f"),))], 1)
        # f's HIGH job was taken and requeued at the tail: its head is the
        # record submitted at 100; g's job was submitted at 105.
        self.assertEqual(found[("gearman_oldest_queued_seconds", (("function", "f"),))], 15.0)
        self.assertEqual(found[("gearman_oldest_queued_seconds", (("function", "g"),))], 10.0)
