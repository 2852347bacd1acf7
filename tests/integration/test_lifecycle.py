"""
Lifecycle policies on a real server: a job held past its time limit by a
raw worker comes back after its backoff and is completed by libgearman's
C{gearman -w}; stored results are fetched by our client and answer
libgearman's client within the unique window; a bad policy file stops
twistd with one line.
"""

import os
import subprocess
import time

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gearman_tw.client import GearmanClient
from tests.integration.servers import requireProgram, startOurs, stopProcess, twistdArgv, waitFor

JOB_ASSIGN, SUBMIT_JOB_BG, JOB_CREATED, CAN_DO, GRAB_JOB = 11, 18, 8, 1, 9

POLICIES = """
[functions.flaky]
time-limit = 1
max-attempts = 3
backoff = { base = 1.0, factor = 1.0, cap = 1.0, jitter = 0.0 }
"""


RESULTS = """
[functions.echo]
keep-results = 60
unique-window = 30
"""


def policyFile(testCase, text: str) -> str:
    path = testCase.mktemp()
    with open(path, "w") as f:
        f.write(text)
    return path


def runWorker(testCase, port: int, function: str) -> None:
    """
    libgearman's C{gearman -w} does one job of C{function} with C{cat}.
    """
    gearman = requireProgram("gearman")
    worker = subprocess.Popen(
        [gearman, "-h", "127.0.0.1", "-p", str(port), "-w", "-f", function, "-c", "1", "--", "cat"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    testCase.addCleanup(stopProcess, worker)
    testCase.assertEqual(worker.wait(15), 0)


class StoredResultProcessTests(TestCase):
    """
    Stored results on a real server, with libgearman's worker and client
    and ours.
    """

    timeout = 60

    @inlineCallbacks
    def test_resultAndWindow(self):
        """
        The result of a background job libgearman's worker did is fetched
        by handle and unique with GearmanClient.getResult; within the
        window libgearman's foreground client with that unique gets it
        without any worker.
        """
        server = startOurs(self, "--policies", policyFile(self, RESULTS))
        raw = server.connect()
        self.addCleanup(raw.close)
        raw.sendPacket(SUBMIT_JOB_BG, b"echo", b"img-7", b"payload\0bytes")
        ptype, handle = raw.readPacket()
        self.assertEqual(ptype, JOB_CREATED)
        client = GearmanClient(["127.0.0.1:%d" % (server.port,)], reactor=reactor)
        client.startService()
        self.addCleanup(client.stopService)
        yield client.whenConnected()
        pending = yield client.getResult(handle)
        self.assertEqual((pending.outcome, pending.done, pending.unique), ("queued", False, b"img-7"))
        runWorker(self, server.port, "echo")
        result = yield client.getResult(handle)
        self.assertEqual((result.outcome, result.data, result.function), ("complete", b"payload\0bytes", b"echo"))
        self.assertGreater(result.expires, result.finished)
        byUnique = yield client.getResult(unique="img-7", function="echo")
        self.assertEqual(byUnique, result)
        self.assertIsNone((yield client.getResult(b"H:nothing:1")))
        gearman = requireProgram("gearman")
        answered = subprocess.run(
            [gearman, "-h", "127.0.0.1", "-p", str(server.port), "-f", "echo", "-u", "img-7", "--", "other"],
            capture_output=True,
            timeout=15,
        )
        self.assertEqual(answered.stdout, b"payload\0bytes")
        self.assertEqual(raw.admin(b"status\n"), b"echo\t0\t0\t0\n.\n")


OURS = """
[functions.flaky]
max-attempts = 3
retry-failures = true
backoff = { base = 0.2, factor = 1, jitter = 0 }
dead-letters = 10
keep-results = 60
"""


class OurLibraryProcessTests(TestCase):
    """
    The lifecycle with our worker and client against a real server.
    """

    timeout = 60

    @inlineCallbacks
    def test_retriedThenDeadThenRetried(self):
        """
        Our worker's exceptions are attempts: the job is tried three times,
        0.2 s apart, then kept as a dead letter (and its exception as its
        result); retried through the admin command, it completes, and our
        client's getResult finds the new result by unique.
        """
        from gearman_tw.admin import connectAdmin
        from gearman_tw.worker import GearmanWorker

        server = startOurs(self, "--policies", policyFile(self, OURS))
        address = "127.0.0.1:%d" % (server.port,)
        calls = []
        healthy = []

        def flaky(job):
            calls.append(reactor.seconds())
            if not healthy:
                raise ValueError("not yet")
            return b"fine:" + job.data

        worker = GearmanWorker([address], reactor=reactor)
        worker.register("flaky", flaky)
        worker.startService()
        self.addCleanup(worker.stopService)
        client = GearmanClient([address], reactor=reactor)
        client.startService()
        self.addCleanup(client.stopService)
        yield client.whenConnected()
        task = client.submit("flaky", b"x", unique="job-1", background=True)
        yield task.whenCreated()
        admin = yield connectAdmin(address, reactor=reactor, timeout=10)
        self.addCleanup(admin.close)
        for _ in range(100):
            letters = yield admin.command(b"deadletters flaky", True, list)
            if letters:
                break
            yield deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(len(calls), 3)
        self.assertGreaterEqual(calls[2] - calls[0], 0.35)
        [letter] = letters
        self.assertEqual(letter.split(b"\t")[1], b"3")
        self.assertIn(b"not yet", letter)
        failed = yield client.getResult(task.handle)
        # Given up after its attempts: a failure, with why the last ended.
        self.assertEqual((failed.outcome, failed.data), ("fail", b"not yet"))
        healthy.append(True)
        reply = yield admin.command(b"retry deadletters flaky", False, list)
        self.assertEqual(reply, [b"OK 1"])
        for _ in range(100):
            result = yield client.getResult(unique="job-1", function="flaky")
            if result.outcome == "complete":
                break
            yield deferLater(reactor, 0.1, lambda: None)
        self.assertEqual((result.data, len(calls)), (b"fine:x", 4))
        self.assertNotEqual(result.handle, task.handle)
        self.assertEqual((yield admin.command(b"deadletters flaky", True, list)), [])
        self.flushLoggedErrors(ValueError)


# Workers that take 2 s a job and note each run in a file named for it
# (appended, so a job run twice shows).
_PERL_SLOW_WORKER = r"""
use strict; use warnings;
use Gearman::Worker;
my ($port, $dir) = @ARGV;
my $w = Gearman::Worker->new;
$w->job_servers("127.0.0.1:$port");
$w->register_function(slow_perl => sub {
    my $arg = $_[0]->arg; sleep 2;
    open(my $f, ">>", "$dir/$arg") or die; print $f "ran\n"; close($f);
    return "done";
});
$w->work while 1;
"""

_PHP_SLOW_WORKER = r"""
$port = (int) $argv[1]; $dir = $argv[2];
$w = new GearmanWorker();
$w->addServer("127.0.0.1", $port);
$w->addFunction("slow_php", function ($job) use ($dir) {
    $arg = $job->workload(); sleep(2);
    file_put_contents("$dir/$arg", "ran\n", FILE_APPEND);
    return "done";
});
while ($w->work()) {}
fwrite(STDERR, "work() ended: " . $w->returnCode() . "\n");
exit(1);
"""


class LifecycleProcessTests(SynchronousTestCase):
    """
    C{twistd gearman --policies FILE}.
    """

    def policyFile(self, text: str) -> str:
        return policyFile(self, text)

    def test_timeLimitThenBackoff(self) -> None:
        """
        A worker that never answers loses the job after the time limit; the
        job is queued again a second later, and a libgearman worker
        completes it.
        """
        server = startOurs(self, "--policies", self.policyFile(POLICIES))
        client = server.connect()
        self.addCleanup(client.close)
        client.sendPacket(SUBMIT_JOB_BG, b"flaky", b"", b"payload")
        ptype, handle = client.readPacket()
        self.assertEqual(ptype, JOB_CREATED)
        stuck = server.connect()
        self.addCleanup(stuck.close)
        stuck.sendPacket(CAN_DO, b"flaky")
        stuck.sendPacket(GRAB_JOB)
        self.assertEqual(stuck.readPacket(), (JOB_ASSIGN, handle + b"\0flaky\0payload"))
        grabbed = time.monotonic()
        self.assertTrue(waitFor(lambda: client.admin(b"status\n") == b"flaky\t1\t0\t1\n.\n", 10))
        # Taken back after the limit (1 s), waiting its backoff (1 s).
        self.assertGreaterEqual(time.monotonic() - grabbed, 0.9)
        gearman = requireProgram("gearman")
        worker = subprocess.Popen(
            [gearman, "-h", "127.0.0.1", "-p", str(server.port), "-w", "-f", "flaky", "-c", "1", "--", "cat"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(stopProcess, worker)
        self.assertEqual(worker.wait(15), 0)
        self.assertGreaterEqual(time.monotonic() - grabbed, 1.9)
        # Done; the stuck worker is still registered.
        self.assertEqual(client.admin(b"status\n"), b"flaky\t0\t0\t1\n.\n")

    def test_lateResultsOfPerlAndPHP(self) -> None:
        """
        Perl's and PHP's workers, which set no limit of their own and die on
        an ERROR for a result (as gearmand never sends one unasked), finish
        a job after the policy's time limit took it back: they are not
        answered ERROR and serve on, and each job runs to completion once
        (its late result ends it, since the backoff kept anyone from taking
        it again).
        """
        perl, php = requireProgram("perl"), requireProgram("php")
        server = startOurs(
            self,
            "--policies",
            self.policyFile('[functions."slow_*"]\ntime-limit = 1\nbackoff = { base = 30, jitter = 0 }\n'),
        )
        ran = self.mktemp()
        os.mkdir(ran)
        workers = {
            "slow_perl": [perl, "-e", _PERL_SLOW_WORKER, str(server.port), ran],
            "slow_php": [php, "-r", _PHP_SLOW_WORKER, "--", str(server.port), ran],
        }
        processes = {}
        for function, argv in workers.items():
            processes[function] = process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.addCleanup(stopProcess, process)
        client = server.connect()
        self.addCleanup(client.close)
        self.assertTrue(waitFor(lambda: client.admin(b"status\n").count(b"\t1\n") == 2, 20))
        for function in workers:
            for n in range(2):
                client.sendPacket(SUBMIT_JOB_BG, function.encode(), b"", b"%s-%d" % (function.encode(), n))
                self.assertEqual(client.readPacket()[0], JOB_CREATED)
        expected = sorted("%s-%d" % (function, n) for function in workers for n in range(2))
        self.assertTrue(waitFor(lambda: sorted(os.listdir(ran)) == expected, 30), sorted(os.listdir(ran)))
        done = {b"slow_perl\t0\t0\t1", b"slow_php\t0\t0\t1", b"."}
        self.assertTrue(waitFor(lambda: set(client.admin(b"status\n").splitlines()) == done, 10))
        for function, process in processes.items():
            self.assertIsNone(process.poll(), function)
        for name in expected:
            with open(os.path.join(ran, name)) as f:
                self.assertEqual(f.read(), "ran\n", name)

    def test_badFile(self) -> None:
        """
        An invalid file stops twistd before it listens, saying where.
        """
        path = self.policyFile("[default]\nbackoff = { factor = 0.5 }\n")
        result = subprocess.run(
            twistdArgv("gearman", "--port", "0", "--policies", path),
            capture_output=True,
            timeout=60,
            env=dict(os.environ),
        )
        self.assertNotEqual(result.returncode, 0)
        message = b"the policy file %s: [default] backoff.factor must be at least 1" % (path.encode(),)
        self.assertIn(message, result.stderr + result.stdout)
