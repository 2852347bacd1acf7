"""
Tests for L{gearman_tw.server.lifecycle} and the job server's use of it:
attempts, backoff, retried failures and time limits per function.
"""

import os
from typing import Any, Dict, List, Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel
from twisted.trial.unittest import SynchronousTestCase

from gearman_tw import tap
from gearman_tw.protocol import PacketType
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.lifecycle import DEFAULT_POLICY, Backoff, Policies, PoliciesError, Policy
from gearman_tw.server.model import HIGH, LOW
from gearman_tw.server.tomlfile import TOMLFileError, readTOML
from tests.test_server_jobs import NO_JOB, Conn

P = PacketType

EXAMPLE = """
[default]
max-attempts = 4
backoff = { base = 2.0, factor = 3.0, cap = 60.0, jitter = 0.0 }

[functions."resize_*"]
time-limit = 30
retry-failures = true

[functions.report]
max-attempts = 0
backoff = false
retry-failures = true
retry-foreground = true
"""


class PolicyFileTests(SynchronousTestCase):
    """
    Reading policy files.
    """

    def test_example(self) -> None:
        """
        A table gives what differs from the default; the first matching
        glob applies; other functions get the default.
        """
        policies = Policies.fromText(EXAMPLE)
        default = Policy(maxAttempts=4, backoff=Backoff(2.0, 3.0, 60.0, 0.0))
        self.assertEqual(policies.default, default)
        self.assertEqual(
            policies.forFunction(b"resize_png"),
            Policy(maxAttempts=4, backoff=Backoff(2.0, 3.0, 60.0, 0.0), retryFailures=True, timeLimit=30.0),
        )
        self.assertEqual(
            policies.forFunction(b"report"),
            Policy(maxAttempts=0, backoff=None, retryFailures=True, retryForeground=True),
        )
        self.assertEqual(policies.forFunction(b"other"), default)
        self.assertEqual(policies.forFunction(b"\xff\xfe"), default)

    def test_firstMatchWins(self) -> None:
        """
        Of several matching tables, the first in the file applies.
        """
        policies = Policies.fromText('[functions."a*"]\ntime-limit = 1\n[functions."*"]\ntime-limit = 2\n')
        self.assertEqual(
            (policies.forFunction(b"ab").timeLimit, policies.forFunction(b"b").timeLimit), (1.0, 2.0)
        )

    def test_empty(self) -> None:
        """
        An empty file is gearmand's behaviour for everything.
        """
        self.assertEqual(Policies.fromText("").forFunction(b"f"), DEFAULT_POLICY)

    def test_errors(self) -> None:
        """
        Every mistake is one line naming where it is.
        """
        for text, message in (
            ("[defaults]\n", "unknown table [defaults] (expected [default] and [functions])"),
            ("default = 3\n", "[default] must be a table"),
            ("[default]\nmax-tries = 3\n", "[default]: unknown key max-tries (expected max-attempts,"),
            ("[default]\nmax-attempts = -1\n", "[default] max-attempts must be a whole number, 0 or more"),
            ("[default]\nmax-attempts = 1.5\n", "[default] max-attempts must be a whole number"),
            ("[default]\nmax-attempts = true\n", "[default] max-attempts must be a whole number"),
            ("[default]\ntime-limit = -1\n", "[default] time-limit must be a finite number of at least 0"),
            ("[default]\ntime-limit = inf\n", "[default] time-limit must be a finite number"),
            ("[default]\ntime-limit = nan\n", "[default] time-limit must be a number"),
            ('[default]\ntime-limit = "10"\n', "[default] time-limit must be a number"),
            ("[default]\nretry-failures = 1\n", "[default] retry-failures must be true or false"),
            ("[default]\nbackoff = 5\n", "[default] backoff must be a table"),
            ("[default]\nbackoff = { base = 1, step = 2 }\n", "[default] backoff: unknown key step"),
            ("[default]\nbackoff = { factor = 0.5 }\n", "[default] backoff.factor must be at least 1"),
            ("[default]\nbackoff = { jitter = 2 }\n", "[default] backoff.jitter must be a fraction"),
            ("[functions]\nf = 1\n", "[functions.f] must be a table"),
            ('[functions."a b"]\nbad = 1\n', '[functions."a b"]: unknown key bad'),
            ("[default\n", "not valid TOML:"),
            # Beyond what a float or Python's int reading holds, or nested
            # past its recursion limit: still one line, no traceback.
            ("[default]\ntime-limit = %s\n" % ("9" * 400,), "[default] time-limit must be a finite number"),
            ("[default]\nbackoff = { cap = %s }\n" % ("9" * 400,), "[default] backoff.cap must be a finite number"),
            ("[default]\nmax-attempts = %s\n" % ("9" * 5000,), "not a TOML file this server reads: "),
            ("[default]\nx = %s1%s\n" % ("[" * 5000, "]" * 5000), "nested too deep"),
        ):
            with self.assertRaises(PoliciesError, msg=text) as caught:
                Policies.fromText(text)
            self.assertIn(message, str(caught.exception), text)
            self.assertNotIn("\n", str(caught.exception))

    def test_backoffTableMerges(self) -> None:
        """
        A function's C{backoff} table (and a run-time change of it) gives
        only the keys that differ from the backoff it would otherwise have.
        """
        policies = Policies.fromText(
            "[default]\nbackoff = { base = 5, cap = 60, factor = 3, jitter = 0.2 }\n"
            "[functions.f]\nbackoff = { jitter = 0 }\n"
            "[functions.g]\nbackoff = false\n"
            '[functions."h"]\nmax-attempts = 2\n'
        )
        self.assertEqual(policies.forFunction(b"f").backoff, Backoff(5.0, 3.0, 60.0, 0.0))
        self.assertIsNone(policies.forFunction(b"g").backoff)
        self.assertEqual(policies.forFunction(b"h").backoff, Backoff(5.0, 3.0, 60.0, 0.2))
        server = JobServer(Clock(), policies=policies)
        self.assertEqual(server.changePolicy(b"h", {"backoff": {"base": 0.5}}).backoff, Backoff(0.5, 3.0, 60.0, 0.2))
        # Without a backoff to start from, the built-in values.
        self.assertEqual(server.changePolicy(b"g", {"backoff": {"cap": 9}}).backoff, Backoff(cap=9.0))
        with self.assertRaises(PoliciesError) as caught:
            Policies.fromText("[default]\nbackoff = { factor = 3 }\n[functions.f]\nbackoff = { jitter = 5 }\n")
        self.assertIn("[functions.f] backoff.jitter must be a fraction", str(caught.exception))

    def test_files(self) -> None:
        """
        A file that cannot be read, is not UTF-8 or not valid says which
        file; a valid one is read.
        """
        directory = self.mktemp()
        os.mkdir(directory)
        good, bad, binary = (os.path.join(directory, name) for name in ("good.toml", "bad.toml", "bin.toml"))
        with open(good, "w") as f:
            f.write(EXAMPLE)
        with open(bad, "w") as f:
            f.write("[default]\nmax-attempts = -2\n")
        with open(binary, "wb") as f:
            f.write(b"\xff\xfe")
        self.assertEqual(Policies.fromFile(good).default.maxAttempts, 4)
        for path, message in (
            (os.path.join(directory, "missing.toml"), "cannot read the policy file %s: No such file"),
            (bad, "the policy file %s: [default] max-attempts must be"),
            (binary, "the policy file %s: not UTF-8 text"),
        ):
            with self.assertRaises(PoliciesError) as caught:
                Policies.fromFile(path)
            self.assertIn(message % (path,), str(caught.exception))
        with self.assertRaises(TOMLFileError):
            readTOML(directory, "a directory")

    def test_tapOption(self) -> None:
        """
        C{--policies} with an invalid file is a usage error of one line.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[default]\ntime-limit = -3\n")
        options = tap.Options()
        with self.assertRaises(Exception) as caught:
            options.parseOptions(["--policies", path])
        self.assertIn("time-limit must be a finite number of at least 0", str(caught.exception))


class BackoffTests(SynchronousTestCase):
    """
    L{Backoff.delay}.
    """

    def test_exponential(self) -> None:
        """
        Without jitter: base, base * factor, ... up to the cap.
        """
        backoff = Backoff(base=1.0, factor=2.0, cap=10.0, jitter=0.0)
        self.assertEqual([backoff.delay(n, lambda a, b: 0.0) for n in range(1, 7)], [1, 2, 4, 8, 10, 10])

    def test_huge(self) -> None:
        """
        A huge attempt count gives the cap, not an overflow.
        """
        self.assertEqual(Backoff(cap=60.0, jitter=0.0).delay(10**6, lambda a, b: 0.0), 60.0)

    @given(
        attempts=st.integers(min_value=1, max_value=5000),
        base=st.floats(min_value=0, max_value=1e6),
        factor=st.floats(min_value=1, max_value=100),
        cap=st.floats(min_value=0, max_value=1e6),
        jitter=st.floats(min_value=0, max_value=1),
        draw=st.floats(min_value=0, max_value=1),
    )
    def test_bounds(
        self, attempts: int, base: float, factor: float, cap: float, jitter: float, draw: float
    ) -> None:
        """
        Any delay is within the jitter of min(cap, base * factor ** (n - 1)),
        and never negative.
        """
        backoff = Backoff(base, factor, cap, jitter)
        seen: List[Tuple[float, float]] = []

        def uniform(low: float, high: float) -> float:
            seen.append((low, high))
            return low + (high - low) * draw

        delay = backoff.delay(attempts, uniform)
        plain = Backoff(base, factor, cap, 0.0).delay(attempts, uniform)
        self.assertGreaterEqual(delay, 0.0)
        self.assertLessEqual(plain, cap)
        self.assertLessEqual(delay, plain * (1 + jitter) + 1e-9)
        self.assertGreaterEqual(delay, plain * (1 - jitter) - 1e-9)
        if jitter:
            self.assertEqual(seen, [(-jitter, jitter)])


class LifecycleServerTestCase(SynchronousTestCase):
    """
    A job server on a Clock with the L{EXAMPLE} policies, a client and a
    worker.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.server = JobServer(self.clock, handlePrefix=b"H", policies=Policies.fromText(EXAMPLE))
        self.client = Conn(self.server)
        self.worker = Conn(self.server)

    def take(self, name: bytes) -> bytes:
        """
        A new worker connection for C{name} takes a job: its handle.
        """
        self.worker = Conn(self.server)
        self.worker.canDo(name)
        handle, _ = self.worker.take()
        return handle


class BackoffServerTests(LifecycleServerTestCase):
    """
    A job whose worker is lost waits out the backoff, then runs again; once
    its attempts are used up its clients get WORK_FAIL.
    """

    def test_waitsThenRuns(self) -> None:
        handle = self.client.created(b"f", data=b"d")
        delays = []
        for attempt in range(1, 4):
            self.assertEqual(self.take(b"f"), handle)
            started = self.clock.seconds()
            self.worker.lose()
            other = Conn(self.server)
            other.canDo(b"f")
            # Not before the backoff, which counts as queued (NORMAL).
            self.assertEqual(other.grab(), [NO_JOB])
            self.assertEqual(self.server.functions[b"f"].queued, [0, 1, 0])
            self.clock.advance(2.0 * 3 ** (attempt - 1) - 0.01)
            self.assertEqual(other.grab(), [NO_JOB])
            self.clock.advance(0.01)
            delays.append(self.clock.seconds() - started)
            other.lose()
        self.assertEqual(delays, [2.0, 6.0, 18.0])
        self.assertEqual(self.server.lookup(handle).retries, 3)  # type: ignore[union-attr]
        self.take(b"f")
        self.worker.lose()
        # The fourth attempt was the last.
        self.assertEqual(self.client.packets(), [(P.WORK_FAIL, [handle])])
        self.assertIsNone(self.server.lookup(handle))
        self.assertEqual(self.server.functions[b"f"].failed, 1)

    def test_sleepersWoken(self) -> None:
        """
        A sleeping worker is woken when the backoff ends.
        """
        self.client.created(b"f")
        self.take(b"f")
        self.worker.lose()
        sleeper = Conn(self.server)
        sleeper.canDo(b"f")
        self.assertEqual(sleeper.sleep(), [])
        self.clock.advance(2.0)
        self.assertEqual(sleeper.packets(), [(P.NOOP, [])])

    def test_cancelledWhileWaiting(self) -> None:
        """
        A job cancelled during its backoff is not run.
        """
        handle = self.client.created(b"f", background=True, unique=b"u")
        self.take(b"f")
        self.worker.lose()
        self.assertTrue(self.server.cancel(handle))
        self.clock.advance(2.0)
        worker = Conn(self.server)
        worker.canDo(b"f")
        self.assertEqual(worker.grab(), [NO_JOB])

    def test_unlimitedAttempts(self) -> None:
        """
        C{max-attempts = 0} with no backoff requeues at once, for ever.
        """
        handle = self.client.created(b"report")
        for _ in range(10):
            self.assertEqual(self.take(b"report"), handle)
            self.worker.lose()
        self.assertEqual(self.client.packets(), [])

    def test_noPolicies(self) -> None:
        """
        Without policies, --job-retries still bounds attempts and a lost
        job is queued again at once (gearmand's behaviour).
        """
        server = JobServer(self.clock, handlePrefix=b"H", jobRetries=2)
        client = Conn(server)
        handle = client.created()
        worker = Conn(server)
        worker.canDo(b"f")
        worker.take()
        worker.lose()
        again = Conn(server)
        again.canDo(b"f")
        self.assertEqual(again.take()[0], handle)
        again.lose()
        self.assertEqual(client.packets(), [(P.WORK_FAIL, [handle])])


class FailureRetryTests(LifecycleServerTestCase):
    """
    C{retry-failures}: WORK_FAIL and WORK_EXCEPTION count as attempts.
    """

    def test_backgroundFailRetried(self) -> None:
        handle = self.client.created(b"resize_a", background=True)
        self.take(b"resize_a")
        self.worker.fail(handle)
        self.assertEqual(self.server.functions[b"resize_a"].failed, 0)
        self.clock.advance(2.0)
        self.assertEqual(self.take(b"resize_a"), handle)
        self.worker.exception(handle)
        self.assertEqual(self.worker.packets(), [])
        self.clock.advance(6.0)
        self.assertEqual(self.take(b"resize_a"), handle)
        self.worker.complete(handle)
        self.assertIsNone(self.server.lookup(handle))
        self.assertEqual(self.server.functions[b"resize_a"].completed, 1)

    def test_foregroundNotRetried(self) -> None:
        """
        Without C{retry-foreground}, a job clients wait for fails to them
        as in gearmand.
        """
        handle = self.client.created(b"resize_a")
        self.take(b"resize_a")
        self.worker.fail(handle)
        self.assertEqual(self.client.packets(), [(P.WORK_FAIL, [handle])])
        self.assertIsNone(self.server.lookup(handle))

    def test_foregroundOptIn(self) -> None:
        """
        With C{retry-foreground}, clients hear only of the last failure,
        or of a success.
        """
        handle = self.client.created(b"report")
        for _ in range(3):
            self.assertEqual(self.take(b"report"), handle)
            self.worker.fail(handle)
        self.assertEqual(self.client.packets(), [])
        self.take(b"report")
        self.worker.complete(handle, b"done")
        self.assertEqual(self.client.packets(), [(P.WORK_COMPLETE, [handle, b"done"])])

    def test_attemptsUsedUp(self) -> None:
        """
        Failures use up the attempts like lost workers; the clients of the
        last get WORK_FAIL.
        """
        server = JobServer(
            self.clock,
            handlePrefix=b"H",
            policies=Policies.fromText("[default]\nmax-attempts = 2\nretry-failures = true\nretry-foreground = true"),
        )
        client = Conn(server)
        handle = client.created(b"g")
        for _ in range(2):
            worker = Conn(server)
            worker.canDo(b"g")
            worker.take()
            worker.fail(handle)
        self.assertEqual(client.packets(), [(P.WORK_FAIL, [handle])])
        self.assertEqual(server.functions[b"g"].failed, 1)


class TimeLimitTests(LifecycleServerTestCase):
    """
    C{time-limit}: a job held longer is taken back and attempted again.
    """

    def test_expires(self) -> None:
        handle = self.client.created(b"resize_b", background=True)
        self.take(b"resize_b")
        self.clock.advance(29.9)
        self.assertEqual(self.server.functions[b"resize_b"].running, 1)
        self.clock.advance(0.1)
        self.assertEqual(self.server.functions[b"resize_b"].running, 0)
        self.assertEqual(self.worker.peer.held, {})
        self.clock.advance(2.0)
        self.assertEqual(self.take(b"resize_b"), handle)
        self.worker.complete(handle)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_workerTimeoutWins(self) -> None:
        """
        A worker's own CAN_DO_TIMEOUT is the limit for its jobs.
        """
        self.client.created(b"resize_c", background=True)
        worker = Conn(self.server)
        worker.canDo(b"resize_c", timeout=5)
        worker.take()
        self.clock.advance(5)
        self.assertEqual(worker.peer.held, {})

    def test_reloaded(self) -> None:
        """
        New policies apply to known functions' next jobs.
        """
        self.client.created(b"plain", background=True)
        self.server.setPolicies(Policies.fromText("[default]\ntime-limit = 1"))
        self.take(b"plain")
        self.clock.advance(1)
        self.assertEqual(self.worker.peer.held, {})


class LateResultTests(LifecycleServerTestCase):
    """
    A worker whose job the time limit took back, and which never asked for
    a limit, may still end the job: nothing it sends for the job then is
    answered ERROR (which ends Perl's and PHP's workers); a late
    WORK_COMPLETE ends a job nobody took again (it is not run twice); once
    another worker took it, it is ignored.
    """

    def late(self, background: bool = True) -> Tuple[Conn, bytes]:
        """
        A job of C{resize_b} taken back from its worker by the time limit:
        that worker and the handle.
        """
        client = Conn(self.server) if background else self.client
        handle = client.created(b"resize_b", background=background, unique=b"u")
        self.take(b"resize_b")
        slow = self.worker
        self.clock.advance(30)
        self.assertEqual(slow.peer.held, {})
        return slow, handle

    def test_completesWaitingJob(self) -> None:
        """
        Completed during its backoff: the job ends, its client is told
        once (and only of the result), and nobody is given it again.
        """
        slow, handle = self.late(background=False)
        slow.data(handle, b"partial")
        slow.status(handle, b"1", b"2")
        slow.complete(handle, b"done")
        self.assertEqual(slow.packets(), [])
        # Its late data and status are ignored; its result is the job's.
        self.assertEqual(self.client.packets(), [(P.WORK_COMPLETE, [handle, b"done"])])
        function = self.server.functions[b"resize_b"]
        self.assertEqual((function.completed, function.total, function.pending), (1, 0, 0))
        self.assertFalse(self.server.hasWork())
        self.clock.advance(60)
        worker = Conn(self.server)
        worker.canDo(b"resize_b")
        self.assertEqual(worker.grab(), [(P.NO_JOB, [])])
        self.assertIsNone(self.server.lookup(handle))
        # Its unique is free: a new submission runs anew.
        self.assertNotEqual(self.client.created(b"resize_b", unique=b"u"), handle)

    def test_completesQueuedJob(self) -> None:
        """
        Completed late while queued again (no backoff): taken out of its
        queue at once, the others left.
        """
        self.server.changePolicy(b"resize_b", {"backoff": False})
        slow, handle = self.late()
        last = self.client.created(b"resize_b", background=True, data=b"last")
        self.assertEqual(self.server.functions[b"resize_b"].total, 2)
        slow.complete(handle, b"done")
        self.assertEqual(self.server.functions[b"resize_b"].total, 1)
        worker = Conn(self.server)
        worker.canDo(b"resize_b")
        self.assertEqual(worker.take()[0], last)
        self.assertEqual(worker.grab(), [(P.NO_JOB, [])])

    def test_ignoredOnceTakenAgain(self) -> None:
        """
        Once another worker holds the job, the late result is ignored,
        quietly, and the job goes on with that worker.
        """
        slow, handle = self.late()
        self.clock.advance(2)
        self.assertEqual(self.take(b"resize_b"), handle)
        slow.complete(handle, b"late")
        self.assertEqual(slow.packets(), [])
        self.worker.complete(handle, b"mine")
        self.assertEqual(self.server.functions[b"resize_b"].completed, 1)

    def test_lateFailureIgnored(self) -> None:
        """
        A late WORK_FAIL or WORK_EXCEPTION changes nothing (the attempt was
        counted when the limit took it back), and is not answered; a second
        packet for the same job is answered as in gearmand.
        """
        for end in (Conn.fail, Conn.exception):
            slow, handle = self.late()
            end(slow, handle)
            self.assertEqual(slow.packets(), [])
            self.clock.advance(2)
            self.assertEqual(self.take(b"resize_b"), handle)
            self.worker.complete(handle)
            slow.complete(handle)
            self.assertEqual([ptype for ptype, _ in slow.packets()], [P.ERROR])

    def test_workerTimeoutAnsweredAsGearmand(self) -> None:
        """
        A worker that set its own limit with CAN_DO_TIMEOUT is answered
        ERROR for a late result, as gearmand answers it.
        """
        handle = self.client.created(b"plain", background=True)
        worker = Conn(self.server)
        worker.canDo(b"plain", timeout=5)
        worker.take()
        self.clock.advance(5)
        worker.complete(handle)
        self.assertEqual([ptype for ptype, _ in worker.packets()], [P.ERROR])

    def test_takenBackTwice(self) -> None:
        """
        A worker that held the same job twice, each time taken back, may
        end both attempts late: neither is answered ERROR; the first ends
        the job.
        """
        self.server.changePolicy(b"resize_b", {"backoff": False})
        slow, handle = self.late()
        self.assertEqual(slow.take()[0], handle)
        self.clock.advance(30)
        slow.complete(handle, b"first")
        slow.complete(handle, b"second")
        self.assertEqual(slow.packets(), [])
        self.assertEqual(self.server.functions[b"resize_b"].completed, 1)
        self.assertIsNone(slow.peer.takenBack.get(handle) if slow.peer.takenBack else None)

    def test_farFromTheTail(self) -> None:
        """
        A job completed late with many queued after it is not searched
        for through them all: it ends as a cancelled job does (its client
        told once, freed when its queue reaches it, nobody given it).
        """
        from gearman_tw.server import jobs

        self.patch(jobs, "_WITHDRAW_SCAN", 2)
        self.server.changePolicy(b"resize_b", {"backoff": False})
        slow, handle = self.late(background=False)
        later = [Conn(self.server).created(b"resize_b", background=True, data=b"%d" % n) for n in range(3)]
        slow.complete(handle, b"done")
        self.assertEqual(self.client.packets(), [(P.WORK_COMPLETE, [handle, b"done"])])
        worker = Conn(self.server)
        worker.canDo(b"resize_b")
        self.assertEqual([worker.take()[0] for _ in later], later)
        self.assertEqual(worker.grab(), [(P.NO_JOB, [])])
        self.assertEqual(self.server.functions[b"resize_b"].total, 3)

    def test_bounded(self) -> None:
        """
        A worker remembers the newest few jobs taken back from it.
        """
        from gearman_tw.server import jobs

        self.patch(jobs, "_TAKEN_BACK", 2)
        worker = Conn(self.server)
        worker.canDo(b"resize_b")
        handles = [self.client.created(b"resize_b", background=True, data=b"%d" % n) for n in range(3)]
        for _ in handles:
            worker.take()
        self.clock.advance(30)
        self.assertEqual(list(worker.peer.takenBack or {}), handles[1:])


class ReloadTests(SynchronousTestCase):
    """
    SIGHUP's reload of the policy file (C{tap._reloadPolicies}).
    """

    def test_reload(self) -> None:
        """
        A valid file replaces the policies; an invalid one is logged and the
        policies in force are kept.
        """
        path = self.mktemp()
        server = JobServer(Clock(), policies=Policies.fromText(EXAMPLE))
        function = server.function(b"f")
        with open(path, "w") as f:
            f.write("[default]\ntime-limit = 7\n")
        self.assertTrue(tap._reloadPolicies(server, path))
        self.assertEqual(function.policy, Policy(timeLimit=7.0))
        events: List[Dict[str, Any]] = []
        server.log = Logger(observer=events.append)  # type: ignore[arg-type]
        with open(path, "w") as f:
            f.write("[default]\ntime-limit = -1\n")
        self.assertFalse(tap._reloadPolicies(server, path))
        self.assertEqual(function.policy, Policy(timeLimit=7.0))
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.error)
        self.assertIn("time-limit must be a finite number", event["why"])


class PriorityScopeTests(SynchronousTestCase):
    """
    C{--priority-scope}: gearmand 1.1's per-function order by default,
    2.0's global order as an option.
    """

    def grabbed(self, globalPriority: bool) -> List[bytes]:
        server = JobServer(Clock(), handlePrefix=b"H", globalPriority=globalPriority)
        client = Conn(server)
        client.created(b"old", data=b"old-high", priority=HIGH)
        client.created(b"new", data=b"new-normal")
        client.created(b"new", data=b"new-low", priority=LOW)
        client.created(b"other", data=b"other-high", priority=HIGH)
        worker = Conn(server)
        worker.canDo(b"old", b"new")
        return [worker.take()[1] for _ in range(3)]

    def test_perFunction(self) -> None:
        """
        By default the newest registration's jobs come first, whatever
        another function queued.
        """
        self.assertEqual(self.grabbed(False), [b"new-normal", b"new-low", b"old-high"])

    def test_global(self) -> None:
        """
        Global: a HIGH job of any function first; among equal priorities,
        the newest registration first.
        """
        self.assertEqual(self.grabbed(True), [b"old-high", b"new-normal", b"new-low"])

    def test_option(self) -> None:
        """
        The option takes function or global, nothing else.
        """
        options = tap.Options()
        options.parseOptions(["--priority-scope", "global"])
        self.assertEqual(options["priority-scope"], "global")
        with self.assertRaises(Exception) as caught:
            tap.Options().parseOptions(["--priority-scope", "everything"])
        self.assertIn("--priority-scope must be function or global", str(caught.exception))


class MaxRunningTests(SynchronousTestCase):
    """
    C{max-running}: at most N of a function's jobs run at once across all
    workers; the others wait queued and go to a sleeping worker when room
    comes.
    """

    def setUp(self) -> None:
        self.server = JobServer(
            Clock(), handlePrefix=b"H", policies=Policies.fromText('[functions."lim*"]\nmax-running = 2\n')
        )
        self.client = Conn(self.server)
        self.handles = [self.client.created(b"limited", background=True, data=b"%d" % i) for i in range(4)]
        self.workers = [Conn(self.server) for _ in range(3)]
        for worker in self.workers:
            worker.canDo(b"limited")

    def test_limit(self) -> None:
        first, second, third = self.workers
        self.assertEqual([first.take()[1], second.take()[1]], [b"0", b"1"])
        self.assertEqual(third.grab(), [NO_JOB])
        # Still queued, not refused.
        self.assertEqual(self.server.functions[b"limited"].queued, [0, 2, 0])
        self.assertEqual(third.sleep(), [])
        first.complete(self.handles[0])
        self.assertEqual(third.packets(), [(P.NOOP, [])])
        self.assertEqual(third.take()[1], b"2")
        self.assertEqual(first.grab(), [NO_JOB])

    def test_otherFunctionsRun(self) -> None:
        """
        A worker passes a full function by for its other functions' jobs.
        """
        first, second, third = self.workers
        first.take()
        second.take()
        self.client.created(b"free", background=True, data=b"f")
        third.canDo(b"free")
        self.assertEqual(third.take()[1], b"f")

    def test_globalScope(self) -> None:
        """
        The global order passes a full function by too.
        """
        server = JobServer(
            Clock(),
            handlePrefix=b"H",
            globalPriority=True,
            policies=Policies.fromText("[functions.a]\nmax-running = 1\n"),
        )
        client = Conn(server)
        client.created(b"a", data=b"a1", priority=HIGH)
        client.created(b"a", data=b"a2", priority=HIGH)
        client.created(b"b", data=b"b1")
        one, two = Conn(server), Conn(server)
        one.canDo(b"a", b"b")
        two.canDo(b"a", b"b")
        self.assertEqual([one.take()[1], two.take()[1]], [b"a1", b"b1"])


class LifecycleEdgeTests(SynchronousTestCase):
    """
    Edge cases found in review: wake-ups under a limit, reloads, draining.
    """

    def server(self, text: str) -> JobServer:
        return JobServer(Clock(), handlePrefix=b"H", policies=Policies.fromText(text), random=lambda a, b: 0.0)

    def test_eachSlotWakes(self) -> None:
        """
        Two jobs ending under max-running = 2 wake two sleepers: one-shot
        workers leave no job stranded.
        """
        server = self.server("[default]\nmax-running = 2\n")
        a, b, c, d, client = (Conn(server, fd=i) for i in range(1, 6))
        for worker in (a, b, c, d):
            worker.canDo(b"f")
        handles = [client.created(background=True, data=b"%d" % i) for i in range(4)]
        a.take()
        b.take()
        for worker in (c, d):
            self.assertEqual((worker.grab(), worker.sleep()), ([NO_JOB], []))
        a.complete(handles[0])
        a.lose()
        b.complete(handles[1])
        b.lose()
        self.assertEqual([c.packets(), d.packets()], [[(P.NOOP, [])]] * 2)

    def test_reloadOpensRoom(self) -> None:
        """
        Raising or removing max-running on reload wakes sleepers for the
        room it makes.
        """
        for text in ("[default]\nmax-running = 3\n", ""):
            server = self.server("[default]\nmax-running = 1\n")
            a, b, client = Conn(server), Conn(server), Conn(server)
            a.canDo(b"f")
            b.canDo(b"f")
            client.created(background=True, data=b"1")
            client.created(background=True, data=b"2")
            a.take()
            self.assertEqual((b.grab(), b.sleep()), ([NO_JOB], []))
            server.setPolicies(Policies.fromText(text))
            self.assertEqual(b.packets(), [(P.NOOP, [])], text)

    def test_backoffIsWork(self) -> None:
        """
        A job waiting out its backoff keeps a graceful stop waiting.
        """
        server = self.server("[default]\nbackoff = { base = 5.0 }\n")
        worker, client = Conn(server), Conn(server)
        worker.canDo(b"f")
        client.created()
        worker.take()
        worker.lose()
        self.assertTrue(server.hasWork())
        epoch = self.server("")
        Conn(epoch).created(background=True, when=10**9)
        self.assertFalse(epoch.hasWork())

    def test_cancelledNotRetried(self) -> None:
        """
        A job cancelled while running that its worker then fails is not
        counted as retried.
        """
        server = self.server("[default]\nretry-failures = true\n")
        worker, client = Conn(server), Conn(server)
        worker.canDo(b"f")
        handle = client.created(background=True)
        worker.take()
        server.cancel(handle)
        worker.fail(handle)
        self.assertEqual(server.functions[b"f"].retried, 0)
        self.assertEqual(worker.grab(), [NO_JOB])


class MaxRateTests(SynchronousTestCase):
    """
    C{max-rate}: at most R of a function's jobs start per second (a bucket
    of max(1, R) starts refilled at R a second); the others wait queued and
    a sleeping worker is woken when a start is allowed again.
    """

    def test_rate(self) -> None:
        clock = Clock()
        server = JobServer(clock, handlePrefix=b"H", policies=Policies.fromText("[default]\nmax-rate = 2\n"))
        client = Conn(server)
        for index in range(5):
            client.created(background=True, data=b"%d" % index)
        workers = [Conn(server) for _ in range(4)]
        for worker in workers:
            worker.canDo(b"f")
        # The bucket holds two starts.
        self.assertEqual([workers[0].take()[1], workers[1].take()[1]], [b"0", b"1"])
        self.assertEqual(workers[2].grab(), [NO_JOB])
        self.assertEqual(workers[2].sleep(), [])
        self.assertEqual(server.functions[b"f"].queued, [0, 3, 0])
        clock.advance(0.49)
        self.assertEqual(workers[2].packets(), [])
        clock.advance(0.01)
        self.assertEqual(workers[2].packets(), [(P.NOOP, [])])
        self.assertEqual(workers[2].take()[1], b"2")
        self.assertEqual(workers[3].grab(), [NO_JOB])
        clock.advance(1.0)
        self.assertEqual([workers[3].take()[1], workers[0].take()[1]], [b"3", b"4"])

    def test_slowRate(self) -> None:
        """
        A rate below one a second allows one start, then one every 1/R s.
        """
        clock = Clock()
        server = JobServer(clock, handlePrefix=b"H", policies=Policies.fromText("[default]\nmax-rate = 0.25\n"))
        client, worker = Conn(server), Conn(server)
        for index in range(2):
            client.created(background=True, data=b"%d" % index)
        worker.canDo(b"f")
        self.assertEqual(worker.take()[1], b"0")
        clock.advance(3.9)
        self.assertEqual(worker.grab(), [NO_JOB])
        clock.advance(0.1)
        self.assertEqual(worker.take()[1], b"1")

    def test_badValue(self) -> None:
        with self.assertRaises(PoliciesError) as caught:
            Policies.fromText("[default]\nmax-rate = -1\n")
        self.assertIn("max-rate must be a finite number of at least 0", str(caught.exception))


class RateReloadTests(SynchronousTestCase):
    """
    A reload that lifts C{max-rate} and a later one that sets it again
    start from a full bucket: starts made without a limit are not owed.
    """

    def test_changeWakesSleepers(self) -> None:
        """
        Lifting or raising C{max-rate} (by a reload or a run-time change)
        wakes the sleepers it lets start jobs, and the old bucket's refill
        timer goes with it.
        """
        for change in (
            lambda server: server.setPolicies(Policies.fromText("")),
            lambda server: server.changePolicy(b"f", {"max-rate": 0}),
            lambda server: server.changePolicy(b"f", {"max-rate": 1000}),
        ):
            clock = Clock()
            server = JobServer(clock, handlePrefix=b"H", policies=Policies.fromText("[default]\nmax-rate = 0.01\n"))
            client, a, b, c = Conn(server), Conn(server), Conn(server), Conn(server)
            for worker in (a, b, c):
                worker.canDo(b"f")
            for index in range(3):
                client.created(background=True, data=b"%d" % index)
            a.take()
            for worker in (b, c):
                self.assertEqual((worker.grab(), worker.sleep()), ([NO_JOB], []))
            self.assertEqual(len(clock.getDelayedCalls()), 1)
            change(server)
            self.assertEqual([b.packets(), c.packets()], [[(P.NOOP, [])]] * 2)
            self.assertEqual(clock.getDelayedCalls(), [])
            self.assertEqual([b.take()[1], c.take()[1]], [b"1", b"2"])

    def test_keptWhenForgotten(self) -> None:
        """
        A function forgotten as idle while its bucket refills gets that
        bucket back when it comes again: one-shot workers cannot start
        more than the rate; once refilled, nothing is kept.
        """
        clock = Clock()
        server = JobServer(
            clock, handlePrefix=b"H", idleFunctions=0, policies=Policies.fromText("[default]\nmax-rate = 0.2\n")
        )
        client = Conn(server)
        starts = []
        for _ in range(4):
            client.created(background=True)
            worker = Conn(server)
            worker.canDo(b"f")
            packets = worker.grab()
            if packets[0][0] != P.NO_JOB:
                starts.append(clock.seconds())
                worker.complete(packets[0][1][0])
            else:
                clock.advance(5)
                handle, _ = worker.take()
                starts.append(clock.seconds())
                worker.complete(handle)
            worker.lose()
            self.assertNotIn(b"f", server.functions)
            clock.advance(0.3)
        self.assertEqual(starts, [0.0, 5.3, 10.6, 15.9])
        # Forgotten once refilled: nothing kept.
        client.created(background=True)
        clock.advance(5)
        worker = Conn(server)
        worker.canDo(b"f")
        handle, _ = worker.take()
        worker.complete(handle)
        clock.advance(5)
        worker.lose()
        self.assertNotIn(b"f", server.functions)
        self.assertEqual(server._rates, {})

    def test_forgottenThenRateChanged(self) -> None:
        """
        A rate changed while its function is forgotten starts full, as for
        a function the server knows.
        """
        clock = Clock()
        server = JobServer(
            clock, handlePrefix=b"H", idleFunctions=0, policies=Policies.fromText("[default]\nmax-rate = 0.05\n")
        )
        client = Conn(server)
        for _ in range(2):
            client.created(background=True)
            worker = Conn(server)
            worker.canDo(b"f")
            handle, _ = worker.take()
            worker.complete(handle)
            worker.lose()
            server.setPolicies(Policies.fromText("[default]\nmax-rate = 0.5\n"))

    def test_reloadResetsBucket(self) -> None:
        clock = Clock()
        server = JobServer(clock, handlePrefix=b"H", policies=Policies.fromText("[default]\nmax-rate = 1\n"))
        client, worker = Conn(server), Conn(server)
        worker.canDo(b"f")
        for index in range(12):
            client.created(background=True, data=b"%d" % index)
        worker.take()
        server.setPolicies(Policies.fromText(""))
        for _ in range(10):
            worker.take()
        server.setPolicies(Policies.fromText("[default]\nmax-rate = 1\n"))
        self.assertEqual(worker.take()[1], b"11")
