"""
The benchmark (benchmarks/bench.py) runs every scenario against both
servers, checks their results and prints its table: a smoke run at a tiny
scale, so the tool cannot rot.  Its figures are not judged here; that its
C load generator catches wrong results is.
"""

import importlib.util
import os
import re
import signal
import socket
import sys
import threading
import time
from typing import Any, List

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.integration.servers import REPO, requireProgram, run, startGearmand, startOurs

BENCH = os.path.join(REPO, "benchmarks", "bench.py")

#: What the load generator includes from libgearman-dev.
LIBGEARMAN_HEADER = "/usr/include/libgearman-1.0/gearman.h"


def loadBench() -> Any:
    """
    benchmarks/bench.py as a module (it is a script, not on the path);
    C{Any}, as mypy does not know the attributes the tests read and set.
    """
    spec = importlib.util.spec_from_file_location("gearman_tw_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def requireLoadGenerator() -> None:
    """
    Skip the test without a C compiler or libgearman-dev, or fail in CI.
    """
    requireProgram(os.environ.get("CC", "cc"))
    if not os.path.exists(LIBGEARMAN_HEADER):
        message = "libgearman-dev is not installed (Debian packages: see the Makefile)"
        if os.environ.get("CI"):
            raise AssertionError(message)
        raise SkipTest(message)


#: Scenarios whose load comes from the C load generator.
GENERATED = ("submit", "drain", "foreground", "libgearman", "echo1m")


class BenchmarkTests(SynchronousTestCase):
    """
    A tiny run of the benchmark.
    """

    def test_everyScenario(self) -> None:
        """
        Every scenario runs (with its warm-up) on gearmand and on ours and
        gets its rows: a ratio for the servers' figures, none for the
        load's; every scenario driven by the load generator reports jobs/s,
        the server's CPU time per job (all, user, system), the load's CPU
        time per job and the load's share of a core.
        """
        requireProgram("gearmand")
        requireLoadGenerator()
        result = run([sys.executable, BENCH, "--runs", "1", "--scale", "0.01"], timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace")[-2000:])
        out = result.stdout.decode()
        self.assertIn("after a warm-up", out)
        rows = re.findall(r"^\| (\w+) \| ([^|]+) \| [\d.]+ \| [\d.]+ \| ([\d.]+|inf|-) \|$", out, re.M)
        self.assertEqual(
            sorted({row[0] for row in rows}),
            ["connections", "drain", "echo1m", "foreground", "libgearman", "memory", "submit", "wakeup"],
        )
        ratios = {(row[0], row[1].strip()): row[2] for row in rows}
        self.assertIn(("foreground", "p99 ms"), ratios)
        self.assertIn(("libgearman", "p99 ms"), ratios)
        self.assertIn(("echo1m", "MB/s"), ratios)
        for name in GENERATED:
            for metric in ("jobs/s", "server CPU us/job", "server user CPU us/job", "server system CPU us/job"):
                self.assertNotEqual(ratios[name, metric], "-")
            for metric in ("load CPU us/job", "load user CPU us/job", "load share of a core", "server share of a core"):
                self.assertEqual(ratios[name, metric], "-")
        self.assertIn(("memory", "RSS B/queued job"), ratios)
        self.assertIn(("connections", "RSS B/idle connection"), ratios)

    def test_wrongResultsFail(self) -> None:
        """
        The load generator fails its run, naming the fault, when a result
        is wrong (its self-test: a worker returns a wrong payload, a job's
        number is queued twice, a handle repeats), on either server; a
        correct run of the same load passes.
        """
        requireProgram("gearmand")
        requireLoadGenerator()
        bench = loadBench()
        faults = [
            ("foreground", dict(clients=4, workers=2, jobs=20), "wrong result"),
            ("libgearman", dict(clients=4, workers=2, jobs=20), "wrong result"),
            ("drain", dict(workers=2, jobs=200), "handed out twice"),
            ("submit", dict(clients=2, jobs=200, window=50), "given twice"),
        ]
        for server in (startGearmand(self), startOurs(self)):
            for mode, options, fault in faults:
                function = "%s-%s" % (mode, server.name)
                good = bench.LoadGenerator(mode, server.port, timeout=30, function=function, **options)
                self.addCleanup(good.close)
                good.ready()
                good.go()
                result = good.result()
                expected = options["jobs"] * options.get("clients", 1)
                self.assertEqual(result["jobs"], expected, (server.name, mode))
                bad = bench.LoadGenerator(
                    mode, server.port, timeout=30, function=function + "-bad", corrupt=17, **options
                )
                self.addCleanup(bad.close)
                bad.ready()
                bad.go()
                with self.assertRaises(bench.LoadGeneratorError) as caught:
                    bad.result()
                self.assertIn(fault, str(caught.exception), (server.name, mode))

    def test_buildLoadGenerator(self) -> None:
        """
        L{bench.buildLoadGenerator} compiles the load generator into
        benchmarks/build once and then reuses it while its source is not
        newer; a compiler that fails is a L{bench.LoadGeneratorError}
        naming the Debian packages the build needs.
        """
        requireLoadGenerator()
        bench = loadBench()
        path = bench.buildLoadGenerator()
        self.assertEqual(path, os.path.join(REPO, "benchmarks", "build", "loadgen"))
        self.assertTrue(os.access(path, os.X_OK))
        built = os.path.getmtime(path)
        self.assertEqual(bench.buildLoadGenerator("/nonexistent/cc"), path)
        self.assertEqual(os.path.getmtime(path), built)
        bench.LOADGEN = os.path.join(self.mktemp(), "loadgen")
        with self.assertRaises(bench.LoadGeneratorError) as caught:
            bench.buildLoadGenerator("false")
        self.assertIn("libgearman-dev", str(caught.exception))

    def test_serverStatsPerJob(self) -> None:
        """
        L{bench.ServerStats.perJob} gives a process's CPU time per job since
        a L{bench.ServerStats.times}: all of it, its user part and its
        system part.
        """
        bench = loadBench()
        stats = bench.ServerStats(os.getpid())
        before = stats.times()
        # Burn user time until the kernel's clock tick has counted some.
        deadline = time.monotonic() + 10
        while stats.times()[0] == before[0] and time.monotonic() < deadline:
            sum(range(10000))
        user, system = stats.times()
        perJob = stats.perJob(before, 4)
        self.assertGreater(user, before[0])
        # The clock may tick between the two reads: allow a few ticks.
        slack = 1e6 / stats.tick
        self.assertAlmostEqual(perJob["server user CPU us/job"], (user - before[0]) / 4 * 1e6, delta=slack)
        self.assertAlmostEqual(perJob["server CPU us/job"], (user + system - sum(before)) / 4 * 1e6, delta=slack)
        self.assertAlmostEqual(perJob["server system CPU us/job"], (system - before[1]) / 4 * 1e6, delta=slack)
        # Both are differences of floats: equal when no system time passed,
        # give or take the rounding.
        self.assertGreaterEqual(perJob["server CPU us/job"], perJob["server user CPU us/job"] - 1e-6)

    def test_connectMany(self) -> None:
        """
        L{bench.connectMany} opens L{bench.CONNECT_BATCH} connections, then
        waits for the reply to an ECHO on the last of them before opening
        more (and does the same after the very last one): the server has
        then accepted every connection so far.
        """
        bench = loadBench()
        batch = bench.CONNECT_BATCH
        count = batch * 2 + 3
        hello = bench.packet(bench.CAN_DO, b"paced")
        echo = bench.packet(bench.ECHO_REQ, b"paced")
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(count + 1)
        listener.settimeout(30)
        self.addCleanup(listener.close)
        echoedAt: List[int] = []
        earlyConnects: List[int] = []
        received: List[bytes] = []

        def serve() -> None:
            accepted: List[socket.socket] = []
            while len(accepted) < count:
                sock, _ = listener.accept()
                sock.settimeout(30)
                accepted.append(sock)
                last = len(accepted) % batch == 0 or len(accepted) == count
                expected = hello + echo if last else hello
                data = b""
                while len(data) < len(expected):
                    chunk = sock.recv(len(expected) - len(data))
                    if not chunk:
                        break
                    data += chunk
                received.append(data)
                if last:
                    echoedAt.append(len(accepted))
                    # Not answered yet: the client must not connect again.
                    time.sleep(0.1)
                    listener.setblocking(False)
                    try:
                        extra, _ = listener.accept()
                    except BlockingIOError:
                        pass
                    else:
                        earlyConnects.append(len(accepted))
                        accepted.append(extra)
                    listener.settimeout(30)
                    sock.sendall(bench.HEADER.pack(bench.RES, bench.ECHO_RES, 5) + b"paced")
            for sock in accepted:
                sock.close()

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        socket.setdefaulttimeout(30)
        self.addCleanup(socket.setdefaulttimeout, None)
        socks = bench.connectMany(listener.getsockname()[1], count, hello)
        for sock in socks:
            sock.close()
        server.join(30)
        self.assertEqual(earlyConnects, [])
        self.assertEqual(echoedAt, [batch, batch * 2, count])
        self.assertEqual(
            received, [hello + echo if i % batch == 0 or i == count else hello for i in range(1, count + 1)]
        )


#: The rows of the queue benchmark's table: queue, then the other columns.
QUEUE_ROW = re.compile(r"^\| (gearmand [\w]+|gearman_tw \w+) \| (.*) \|$", re.M)


class QueueBenchmarkTests(SynchronousTestCase):
    """
    C{bench.py queues}: submit and drain with every persistent queue.
    """

    def test_everyQueue(self) -> None:
        """
        A tiny run starts its own database servers, measures submit and
        drain on ours with each queue and on gearmand with each queue it
        was built with, and prints a row for each: jobs/s, the ratios to
        gearmand's libsqlite3 queue and to our memory queue, and CPU per
        job of the server, the database server and the load.  A database
        that is not installed is named and its queues left out; whatever it
        started, it stops.
        """
        requireProgram("gearmand")
        requireLoadGenerator()
        bench = loadBench()
        result = run([sys.executable, BENCH, "--runs", "1", "--scale", "0.01", "queues"], timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace")[-2000:])
        out = result.stdout.decode()
        rows = {name: cells.split(" | ") for name, cells in QUEUE_ROW.findall(out)}
        expected = [setup.name for setup in bench.QUEUE_SETUPS]
        for setup in bench.QUEUE_SETUPS:
            if setup.name not in rows:
                leftOut = setup.plugin is not None and "gearmand has no %s queue" % (setup.plugin,) in out
                notInstalled = setup.database is not None and "%s: not installed" % (setup.database,) in out
                self.assertTrue(leftOut or notInstalled, "%s: no row and no reason\n%s" % (setup.name, out))
                expected.remove(setup.name)
        self.assertEqual(list(rows), expected)
        for name in ("gearmand libsqlite3", "gearman_tw memory", "gearman_tw sqlite"):
            self.assertIn(name, rows)
        for name, cells in rows.items():
            self.assertEqual(len(cells), 11, (name, cells))
            self.assertGreater(float(cells[2].replace(",", "")), 0, name)
            self.assertGreater(float(cells[5].replace(",", "")), 0, name)
            self.assertRegex(cells[8], r"^[\d.]+ \([\d.]+\) / [\d.]+ \([\d.]+\)$", name)
            if name.endswith(("redis", "postgresql", "mysql", "Postgres", "MySQL")):
                self.assertRegex(cells[9], r"^[\d.]+ / [\d.]+$", name)
            else:
                self.assertEqual(cells[9], "-", name)
        self.assertEqual(rows["gearmand libsqlite3"][3], "1.00")
        self.assertEqual(rows["gearman_tw memory"][4], "1.00 (1.00)")
        self.assertIn("medians of 1 run(s)", out)

    def test_queueTable(self) -> None:
        """
        L{bench.queueTable} shows medians, the ratios of the medians to
        gearmand's libsqlite3 queue and to our memory queue, and for the
        latter the median of the ratios within each run too.
        """
        bench = loadBench()
        setups = [s for s in bench.QUEUE_SETUPS if s.name in ("gearmand libsqlite3", "gearman_tw memory")]
        setups.append(bench.QueueSetup("gearman_tw redis", "ours", "appendfsync always", lambda s, d, t: [], "redis"))

        def figures(submit: List[float], drain: List[float]) -> dict:
            return {
                "submit jobs": [100.0] * 3,
                "drain jobs": [50.0] * 3,
                "submit jobs/s": submit,
                "drain jobs/s": drain,
                "submit server CPU us/job": [2.0, 1.0, 3.0],
                "submit server user CPU us/job": [1.0, 1.0, 1.0],
                "drain server CPU us/job": [4.0, 4.0, 4.0],
                "drain server user CPU us/job": [2.0, 2.0, 2.0],
                "submit load CPU us/job": [0.5, 0.5, 0.5],
                "submit load user CPU us/job": [0.25, 0.25, 0.25],
                "drain load CPU us/job": [1.0, 1.0, 1.0],
                "drain load user CPU us/job": [0.5, 0.5, 0.5],
            }

        results = {
            "gearmand libsqlite3": figures([10.0, 20.0, 30.0], [5.0, 5.0, 5.0]),
            "gearman_tw memory": figures([1000.0, 2000.0, 4000.0], [100.0, 100.0, 100.0]),
            "gearman_tw redis": figures([800.0, 500.0, 1000.0], [20.0, 50.0, 30.0]),
        }
        results["gearman_tw redis"]["submit database CPU us/job"] = [3.0, 3.0, 3.0]
        results["gearman_tw redis"]["drain database CPU us/job"] = [6.0, 6.0, 6.0]
        lines = bench.queueTable(setups, results, 3, 1.0)
        rows = {name: cells.split(" | ") for name, cells in QUEUE_ROW.findall("\n".join(lines))}
        self.assertEqual(
            rows["gearman_tw redis"],
            [
                "appendfsync always",
                "100 / 50",
                "800",
                "40",
                "0.40 (0.25)",
                "30",
                "6.00",
                "0.30 (0.30)",
                "2.00 (1.00) / 4.00 (2.00)",
                "3.00 / 6.00",
                "0.50 (0.25) / 1.00 (0.50)",
            ],
        )
        self.assertEqual(rows["gearmand libsqlite3"][2:5], ["20", "1.00", "0.01 (0.01)"])
        self.assertEqual(rows["gearmand libsqlite3"][9], "-")
        self.assertIn("medians of 3 run(s)", lines[-1])

    def test_processTreeStats(self) -> None:
        """
        L{bench.descendants} finds a process's children and their children;
        L{bench.ProcessTreeStats} adds up the CPU time of them all, as a
        database server's processes (PostgreSQL's backends) need.
        """
        import subprocess

        bench = loadBench()
        child = subprocess.Popen(
            ["sh", "-c", "sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30' & wait"],
            stdout=subprocess.DEVNULL,
        )
        self.addCleanup(child.wait)

        def killAll() -> None:
            for pid in bench.descendants(child.pid) + [child.pid]:
                os.kill(pid, signal.SIGKILL)

        self.addCleanup(killAll)
        deadline = time.monotonic() + 10
        while len(bench.descendants(child.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        found = bench.descendants(child.pid)
        self.assertGreaterEqual(len(found), 2)
        self.assertNotIn(child.pid, found)
        # The grandchild's loop is what burns CPU: the tree's time counts it.
        while sum(bench.ProcessTreeStats(child.pid).times()) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreater(sum(bench.ProcessTreeStats(child.pid).times()), sum(bench.ServerStats(child.pid).times()))
