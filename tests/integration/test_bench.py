"""
The benchmark (benchmarks/bench.py) runs every scenario against both
servers, checks their results and prints its table: a smoke run at a tiny
scale, so the tool cannot rot.  Its figures are not judged here; that its
C load generator catches wrong results is.
"""

import importlib.util
import os
import re
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
