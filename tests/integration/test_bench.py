"""
The benchmark (benchmarks/bench.py) runs every scenario against both
servers, checks their results and prints its table: a smoke run at a tiny
scale, so the tool cannot rot.  Its figures are not judged here.
"""

import importlib.util
import os
import re
import socket
import sys
import threading
import time
from types import ModuleType
from typing import List

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.servers import REPO, requireProgram, run

BENCH = os.path.join(REPO, "benchmarks", "bench.py")


def loadBench() -> ModuleType:
    """
    benchmarks/bench.py as a module (it is a script, not on the path).
    """
    spec = importlib.util.spec_from_file_location("gearman_tw_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BenchmarkTests(SynchronousTestCase):
    """
    A tiny run of the benchmark.
    """

    def test_everyScenario(self) -> None:
        """
        Every scenario runs (with its warm-up) on gearmand and on ours and
        gets a row with a ratio.
        """
        requireProgram("gearmand")
        result = run([sys.executable, BENCH, "--runs", "1", "--scale", "0.01"], timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace")[-2000:])
        out = result.stdout.decode()
        self.assertIn("after a warm-up", out)
        rows = re.findall(r"^\| (\w+) \| ([^|]+) \| [\d.]+ \| [\d.]+ \| ([\d.]+|inf) \|$", out, re.M)
        self.assertEqual(
            sorted({row[0] for row in rows}),
            ["connections", "drain", "echo1m", "foreground", "memory", "submit", "wakeup"],
        )
        metrics = {(row[0], row[1].strip()) for row in rows}
        self.assertIn(("submit", "jobs/s"), metrics)
        self.assertIn(("foreground", "p99 ms"), metrics)
        for name in ("submit", "drain", "foreground"):
            self.assertIn((name, "server CPU us/job"), metrics)
            self.assertIn((name, "server user CPU us/job"), metrics)
        self.assertIn(("memory", "RSS B/queued job"), metrics)
        self.assertIn(("connections", "RSS B/idle connection"), metrics)

    def test_serverStatsPerJob(self) -> None:
        """
        L{bench.ServerStats.perJob} gives a process's CPU time per job since
        a L{bench.ServerStats.times}: all of it, and its user part.
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
            accepted = []
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
