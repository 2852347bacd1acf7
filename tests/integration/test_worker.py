"""
C{twistd gearman-worker} against real job servers (ours and C gearmand),
with jobs submitted by independent clients: the libgearman CLI and PHP.
"""

import os
import signal
import subprocess
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import (
    REPO,
    requireProgram,
    run,
    startGearmand,
    startOurs,
    stopProcess,
    twistdArgv,
    waitFor,
)
from tests.mixins import SynchronousTestCaseMixin

PHP_CLIENT = r"""
$client = new GearmanClient();
$client->addServer('127.0.0.1', (int)$argv[1]);
$events = [];
$client->setDataCallback(function ($t) use (&$events) { $events[] = 'data:' . $t->data(); });
$client->setWarningCallback(function ($t) use (&$events) { $events[] = 'warning:' . $t->data(); });
$client->setStatusCallback(function ($t) use (&$events) {
    $events[] = 'status:' . $t->taskNumerator() . '/' . $t->taskDenominator(); });
$client->setCompleteCallback(function ($t) use (&$events) { $events[] = 'complete:' . $t->data(); });
$client->setFailCallback(function ($t) use (&$events) { $events[] = 'fail'; });
$client->setExceptionCallback(function ($t) use (&$events) { $events[] = 'exception:' . $t->data(); });
$client->addTask($argv[2], $argv[3]);
$client->runTasks();
echo implode("\n", $events), "\n";
"""


class WorkerMixin(SynchronousTestCaseMixin):
    """
    Tests of the worker process against the server L{start} returns.
    """

    def start(self):
        raise NotImplementedError()

    def setUp(self) -> None:
        self.server = self.start()
        self.gearman = requireProgram("gearman")

    def startWorker(self, *args: str, functions=("reverse", "stream", "refuse", "explode", "slow")):
        argv = twistdArgv(
            "gearman-worker", "--server", "127.0.0.1:%d" % (self.server.port,), "--client-id", "tw-worker"
        )
        for name in functions:
            argv += ["--function", "%s=tests.integration.functions:%s" % (name, name)]
        log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False)
        process = subprocess.Popen(
            argv + list(args),
            env=dict(os.environ, PYTHONPATH=REPO),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def stop() -> None:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            log.close()
            os.unlink(log.name)

        self.addCleanup(stop)
        self.waitForWorkers(functions[0], 1)
        return process

    def admin(self, line: bytes) -> bytes:
        conn = self.server.connect()
        try:
            return conn.admin(line)
        finally:
            conn.close()

    def status(self) -> dict:
        rows = {}
        for line in self.admin(b"status\n").splitlines()[:-1]:
            name, total, running, workers = line.split(b"\t")
            rows[name.decode()] = (int(total), int(running), int(workers))
        return rows

    def waitForWorkers(self, function: str, count: int) -> None:
        self.assertTrue(
            waitFor(lambda: self.status().get(function, (0, 0, 0))[2] >= count),
            "no %d workers for %s: %r" % (count, function, self.status()),
        )

    def client(self, *args: str, input: bytes = b"") -> bytes:
        result = run(
            [self.gearman, "-h", "127.0.0.1", "-p", str(self.server.port), *args], input=input
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_cliClient(self) -> None:
        """
        The libgearman CLI gets a foreground result, and a background job
        and a job with a unique key are run too.
        """
        self.startWorker()
        self.assertEqual(self.client("-f", "reverse", input=b"hello"), b"olleh")
        self.assertEqual(self.client("-f", "reverse", "-u", "key1", input=b"abc"), b"cba")
        self.client("-b", "-f", "slow", input=b"0.01")
        self.assertTrue(waitFor(lambda: self.status()["slow"][0] == 0))

    def test_workersListing(self) -> None:
        """
        The server lists the worker with its client id and functions.
        """
        self.startWorker(functions=("reverse", "slow"))
        lines = [line for line in self.admin(b"workers\n").splitlines() if b" tw-worker " in line]
        self.assertEqual(len(lines), 1)
        self.assertEqual(sorted(lines[0].split(b" : ")[1].split()), [b"reverse", b"slow"])

    def test_phpEvents(self) -> None:
        """
        A PHP client receives the worker's data, status and warning, then the
        result; an explicit fail and an exception reach it too.
        """
        php = requireProgram("php")
        self.startWorker()

        def phpRun(function: str, data: str) -> list:
            result = run([php, "-r", PHP_CLIENT, "--", str(self.server.port), function, data])
            self.assertEqual(result.returncode, 0, result.stderr)
            return result.stdout.decode().splitlines()

        self.assertEqual(
            phpRun("stream", "x"),
            ["data:chunk1", "status:1/2", "warning:careful", "data:chunk2", "complete:done:x"],
        )
        self.assertEqual(phpRun("refuse", "x"), ["fail"])
        self.assertEqual(phpRun("explode", "y"), ["exception:exploded on y"])

    def test_concurrency(self) -> None:
        """
        With --concurrency 3, three slow jobs run at once.
        """
        self.startWorker("--concurrency", "3", functions=("slow",))
        self.waitForWorkers("slow", 3)
        for _ in range(3):
            self.client("-b", "-f", "slow", input=b"2")
        self.assertTrue(waitFor(lambda: self.status()["slow"][1] == 3, 5))

    def test_threaded(self) -> None:
        """
        With --threaded, a blocking function runs without blocking the other
        jobs of the worker.
        """
        self.startWorker("--threaded", "--concurrency", "2", functions=("blocking",))
        self.waitForWorkers("blocking", 2)
        for _ in range(2):
            self.client("-b", "-f", "blocking", input=b"1.5")
        self.assertTrue(waitFor(lambda: self.status()["blocking"][1] == 2, 5))

    def test_sigtermFinishesJob(self) -> None:
        """
        SIGTERM lets the running job finish and deliver its result, then the
        worker leaves; no job is lost.
        """
        process = self.startWorker(functions=("slow",))
        client = subprocess.Popen(
            [self.gearman, "-h", "127.0.0.1", "-p", str(self.server.port), "-f", "slow"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.addCleanup(client.kill)
        assert client.stdin is not None and client.stdout is not None
        client.stdin.write(b"1")
        client.stdin.close()
        self.assertTrue(waitFor(lambda: self.status()["slow"][1] == 1))
        process.send_signal(signal.SIGTERM)
        self.assertTrue(waitFor(lambda: client.poll() is not None, 15))
        self.assertEqual(client.stdout.read(), b"slept 1")
        process.wait(15)
        self.assertEqual(self.status()["slow"], (0, 0, 0))

    def test_exampleTac(self) -> None:
        """
        examples/worker.tac serves reverse and countdown.
        """
        process = subprocess.Popen(
            twistdArgv("-y", os.path.join(REPO, "examples", "worker.tac")),
            env=dict(os.environ, PYTHONPATH=REPO, GEARMAN_SERVER="127.0.0.1:%d" % self.server.port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(stopProcess, process)
        self.waitForWorkers("countdown", 2)
        self.assertEqual(self.client("-f", "reverse", input=b"tac"), b"cat")
        # The CLI prints each WORK_STATUS as it comes, after the result.
        self.assertEqual(
            self.client("-f", "countdown", input=b"3"),
            b"counted 30% Complete\n33% Complete\n66% Complete\n100% Complete\n",
        )


class OursWorkerTests(WorkerMixin, SynchronousTestCase):
    def start(self):
        return startOurs(self)


class GearmandWorkerTests(WorkerMixin, SynchronousTestCase):
    def start(self):
        return startGearmand(self)
