"""
The gearman_tw benchmark: our server against C gearmand, same run, same
machine, every result verified.

    python benchmarks/bench.py                 # every scenario, 3 runs each
    python benchmarks/bench.py --runs 5 submit drain
    python benchmarks/bench.py --quick         # smaller counts, one run
    python benchmarks/bench.py --cold          # no warm-up run first

Load comes from separate processes on raw sockets (pipelined where the
scenario allows), so the generator's own cost is small next to the
server's.  A scenario whose results do not check out fails the run: a fast
wrong server does not score.  Figures are medians over the runs; the last
column is ours divided by gearmand's (for times and memory, gearmand's
divided by ours), so above 1.0 means faster or leaner than gearmand.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import selectors
import socket
import statistics
import struct
import sys
import time
from typing import Callable, Dict, List, Optional, Set, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from gearman_tw.server.allocator import keepFreedMemory  # noqa: E402
from tests.integration.servers import startGearmand, startOurs  # noqa: E402

HEADER = struct.Struct(">4sII")
REQ, RES = b"\0REQ", b"\0RES"

CAN_DO, PRE_SLEEP, NOOP, SUBMIT_JOB, JOB_CREATED = 1, 4, 6, 7, 8
ECHO_REQ, ECHO_RES = 16, 17
GRAB_JOB, NO_JOB, JOB_ASSIGN, WORK_COMPLETE, SUBMIT_JOB_BG = 9, 10, 11, 13, 18


def packet(ptype: int, *args: bytes) -> bytes:
    payload = b"\0".join(args)
    return HEADER.pack(REQ, ptype, len(payload)) + payload


class Reader:
    """
    Blocking packet reader over one socket.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.pos = 0

    def fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("server closed the connection")
        self.buf = self.buf[self.pos :] + data
        self.pos = 0

    def packet(self) -> Tuple[int, bytes]:
        while True:
            if len(self.buf) - self.pos >= 12:
                _, ptype, size = HEADER.unpack_from(self.buf, self.pos)
                end = self.pos + 12 + size
                if len(self.buf) >= end:
                    payload = self.buf[self.pos + 12 : end]
                    self.pos = end
                    return ptype, payload
            self.fill()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


#: Connections opened before waiting for the server to have accepted them:
#: well under the listen backlog (gearmand's is 32).  A single-threaded
#: server busy accepting thousands of connections lets its accept queue
#: fill; the kernel then drops SYNs, and a client retrying with backoff can
#: wait minutes for one connection.
CONNECT_BATCH = 16


def connectMany(port: int, count: int, hello: bytes) -> List[socket.socket]:
    """
    Open C{count} connections, sending C{hello} on each, at the pace the
    server accepts them: after each L{CONNECT_BATCH}, an ECHO round trip on
    the last one (the server accepts in order, so all before it are in).
    """
    socks = []
    for index in range(count):
        sock = connect(port)
        sock.sendall(hello)
        socks.append(sock)
        if (index + 1) % CONNECT_BATCH == 0 or index + 1 == count:
            sock.sendall(packet(ECHO_REQ, b"paced"))
            if Reader(sock).packet() != (ECHO_RES, b"paced"):
                raise AssertionError("expected only ECHO_RES while connecting")
    return socks


def admin(port: int, line: bytes) -> bytes:
    with connect(port) as sock:
        sock.sendall(line)
        reply = b""
        while not (reply.endswith(b"\n.\n") or reply == b".\n" or reply.startswith(b"OK")):
            data = sock.recv(1 << 20)
            if not data:
                break
            reply += data
        return reply


def statusOf(port: int, function: bytes) -> Tuple[int, int, int]:
    for line in admin(port, b"status\n").splitlines():
        fields = line.split(b"\t")
        if fields[0] == function:
            return int(fields[1]), int(fields[2]), int(fields[3])
    return (0, 0, 0)


class ServerStats:
    """
    CPU seconds and RSS of a process, from /proc.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")

    def times(self) -> Tuple[float, float]:
        """
        CPU seconds so far: C{(user, system)}.
        """
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / self.tick, int(fields[12]) / self.tick

    def perJob(self, before: Tuple[float, float], jobs: int) -> Dict[str, float]:
        """
        CPU microseconds per job since C{before} (a L{times}): all of it,
        and the server's own part (user time; the rest is the kernel's,
        mostly moving packets over loopback TCP).
        """
        user, system = self.times()
        return {
            "server CPU us/job": (user + system - sum(before)) / jobs * 1e6,
            "server user CPU us/job": (user - before[0]) / jobs * 1e6,
        }

    def rss(self) -> int:
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


# Load-generating processes.


def _submitter(port: int, function: bytes, count: int, size: int, window: int, start, out) -> None:
    sock = connect(port)
    payload = b"x" * size
    one = packet(SUBMIT_JOB_BG, function, b"", payload)
    handles: Set[bytes] = set()
    start.wait()
    cpu = time.process_time()
    sent = 0
    while sent < count:
        batch = min(window, count - sent)
        sock.sendall(one * batch)
        handles.update(readCreated(sock, batch))
        sent += batch
    out.put((len(handles), time.process_time() - cpu))
    sock.close()


_CREATED_HEADER = HEADER.pack(RES, JOB_CREATED, 0)[:8]


def readCreated(sock: socket.socket, count: int) -> List[bytes]:
    """
    Read exactly C{count} JOB_CREATED replies, checked with whole-buffer
    scans instead of Python code per packet: the generator of the submit
    scenario must cost little next to gearmand's ~0.7 us per job.

    @return: one entry per reply, its handle with the 4-byte size in front
        (distinct handles give distinct entries).
    """
    buf = b""
    while True:
        data = sock.recv(1 << 20)
        if not data:
            raise EOFError("server closed the connection")
        buf += data
        created = buf.count(_CREATED_HEADER)
        if buf.count(RES) != created or not buf.startswith(_CREATED_HEADER):
            raise AssertionError("expected only JOB_CREATED, got %r" % (buf[:200],))
        if created < count:
            continue
        last = buf.rfind(_CREATED_HEADER)
        if len(buf) - last < 12:
            continue
        end = last + 12 + int.from_bytes(buf[last + 8 : last + 12], "big")
        if len(buf) < end:
            continue
        if created > count or len(buf) > end:
            raise AssertionError("more replies than submissions")
        entries = buf.split(_CREATED_HEADER)
        del entries[0]
        return entries


def _drainer(port: int, function: bytes, start, out) -> None:
    sock = connect(port)
    reader = Reader(sock)
    sock.sendall(packet(CAN_DO, function))
    start.wait()
    sock.sendall(packet(GRAB_JOB))
    done = []
    while True:
        ptype, payload = reader.packet()
        if ptype == NO_JOB:
            break
        if ptype != JOB_ASSIGN:
            continue
        handle, _, data = payload.split(b"\0", 2)
        if len(data) != 100:
            raise AssertionError("job data mangled")
        done.append(handle)
        sock.sendall(packet(WORK_COMPLETE, handle, b"") + packet(GRAB_JOB))
    out.put(done)
    sock.close()


def _echoWorker(port: int, function: bytes, ready) -> None:
    sock = connect(port)
    reader = Reader(sock)
    sock.sendall(packet(CAN_DO, function) + packet(GRAB_JOB))
    ready.put(True)
    while True:
        try:
            ptype, payload = reader.packet()
        except (EOFError, OSError):
            return
        if ptype == JOB_ASSIGN:
            handle, _, data = payload.split(b"\0", 2)
            sock.sendall(packet(WORK_COMPLETE, handle, data) + packet(GRAB_JOB))
        elif ptype == NO_JOB:
            sock.sendall(packet(PRE_SLEEP))
        elif ptype == NOOP:
            sock.sendall(packet(GRAB_JOB))


def _syncClient(port: int, function: bytes, count: int, size: int, seed: int, start, out) -> None:
    sock = connect(port)
    reader = Reader(sock)
    latencies = []
    start.wait()
    for i in range(count):
        data = (b"%d:%d:" % (seed, i)).ljust(size, b"y")
        began = time.perf_counter()
        sock.sendall(packet(SUBMIT_JOB, function, b"", data))
        handle = None
        while True:
            ptype, payload = reader.packet()
            if ptype == JOB_CREATED:
                handle = payload
            elif ptype == WORK_COMPLETE:
                got, result = payload.split(b"\0", 1)
                if got != handle or result != data:
                    raise AssertionError("wrong result for job %d" % (i,))
                break
        latencies.append(time.perf_counter() - began)
    out.put(latencies)
    sock.close()


def _sleepers(port: int, function: bytes, count: int, ready, quit) -> None:
    """
    C{count} sleeping workers on one selector; whoever is woken grabs.
    """
    selector = selectors.DefaultSelector()
    readers = {}
    for sock in connectMany(port, count, packet(CAN_DO, function) + packet(PRE_SLEEP)):
        sock.setblocking(False)
        readers[sock] = b""
        selector.register(sock, selectors.EVENT_READ)
    ready.put(True)
    while quit.empty():
        for key, _ in selector.select(0.05):
            sock = key.fileobj
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                continue
            if not data:
                selector.unregister(sock)
                continue
            buf = readers[sock] + data
            while len(buf) >= 12:
                _, ptype, size = HEADER.unpack_from(buf)
                if len(buf) < 12 + size:
                    break
                payload, buf = buf[12 : 12 + size], buf[12 + size :]
                sock.setblocking(True)
                if ptype == NOOP:
                    sock.sendall(packet(GRAB_JOB))
                elif ptype == JOB_ASSIGN:
                    handle = payload.split(b"\0", 1)[0]
                    sock.sendall(packet(WORK_COMPLETE, handle, b"woke") + packet(PRE_SLEEP))
                elif ptype == NO_JOB:
                    sock.sendall(packet(PRE_SLEEP))
                sock.setblocking(False)
            readers[sock] = buf
    for sock in readers:
        sock.close()


def _idle(port: int, count: int, ready, quit) -> None:
    socks = connectMany(port, count, packet(CAN_DO, b"idle") + packet(PRE_SLEEP))
    ready.put(True)
    quit.get()
    for sock in socks:
        sock.close()


def spawn(target: Callable, *args) -> multiprocessing.Process:
    process = multiprocessing.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def joinAll(processes: List[multiprocessing.Process]) -> None:
    for process in processes:
        process.join(600)
        if process.exitcode != 0:
            raise AssertionError("a load process failed (exit %s)" % (process.exitcode,))


# Scenarios: each returns {metric: value}.


def scenarioSubmit(port: int, stats: ServerStats, scale: float, function: bytes = b"bench") -> Dict[str, float]:
    """
    Background submit: 4 clients pipelining 100-byte jobs.
    """
    clients, count = 4, int(50000 * scale)
    start, out = multiprocessing.Event(), multiprocessing.Queue()
    processes = [spawn(_submitter, port, function, count, 100, 500, start, out) for _ in range(clients)]
    time.sleep(0.5)
    before = stats.times()
    began = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in processes]
    elapsed = time.perf_counter() - began
    joinAll(processes)
    created = sum(handles for handles, _ in results)
    if created != clients * count or statusOf(port, function)[0] != clients * count:
        raise AssertionError("submit: %d handles for %d jobs" % (created, clients * count))
    return {
        "jobs/s": created / elapsed,
        **stats.perJob(before, created),
        # What the load itself costs: it must stay small next to the servers'.
        "load CPU us/job": sum(spent for _, spent in results) / created * 1e6,
    }


def scenarioDrain(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    Background drain: 8 workers grab and complete pre-queued jobs.
    """
    total = int(100000 * scale)
    start, out = multiprocessing.Event(), multiprocessing.Queue()
    filler = spawn(_submitter, port, b"drain", total, 100, 500, start, out)
    start.set()
    out.get(timeout=600)
    joinAll([filler])
    start, out = multiprocessing.Event(), multiprocessing.Queue()
    processes = [spawn(_drainer, port, b"drain", start, out) for _ in range(8)]
    time.sleep(0.5)
    before = stats.times()
    began = time.perf_counter()
    start.set()
    handles: List[bytes] = []
    for _ in processes:
        handles.extend(out.get(timeout=600))
    elapsed = time.perf_counter() - began
    joinAll(processes)
    if len(handles) != total or len(set(handles)) != total or statusOf(port, b"drain")[0]:
        raise AssertionError("drain: %d jobs done, %d distinct, of %d" % (len(handles), len(set(handles)), total))
    return {"jobs/s": total / elapsed, **stats.perJob(before, total)}


def _foreground(port: int, stats: ServerStats, clients: int, workers: int, count: int, size: int, function: bytes):
    ready = multiprocessing.Queue()
    workerProcesses = [spawn(_echoWorker, port, function, ready) for _ in range(workers)]
    for _ in workerProcesses:
        ready.get(timeout=60)
    deadline = time.monotonic() + 30
    while statusOf(port, function)[2] < workers and time.monotonic() < deadline:
        time.sleep(0.05)
    start, out = multiprocessing.Event(), multiprocessing.Queue()
    processes = [spawn(_syncClient, port, function, count, size, i, start, out) for i in range(clients)]
    time.sleep(0.5)
    before = stats.times()
    began = time.perf_counter()
    start.set()
    latencies: List[float] = []
    for _ in processes:
        latencies.extend(out.get(timeout=600))
    elapsed = time.perf_counter() - began
    joinAll(processes)
    for process in workerProcesses:
        process.terminate()
        process.join(10)
    latencies.sort()
    total = len(latencies)
    if total != clients * count:
        raise AssertionError("foreground: %d results of %d" % (total, clients * count))
    return total, elapsed, latencies, stats.perJob(before, total)


def scenarioForeground(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    Foreground: 16 clients running synchronous jobs on 8 echo workers.
    """
    total, elapsed, latencies, cpu = _foreground(port, stats, 16, 8, int(1000 * scale), 100, b"echo")
    return {
        "jobs/s": total / elapsed,
        "p50 ms": latencies[total // 2] * 1000,
        "p99 ms": latencies[int(total * 0.99)] * 1000,
        **cpu,
    }


def scenarioEcho1M(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    1 MiB foreground echo: one client, one worker.
    """
    size = 1 << 20
    total, elapsed, _, _ = _foreground(port, stats, 1, 1, max(5, int(100 * scale)), size, b"big")
    return {"MB/s": total * size * 2 / elapsed / 1e6}


def scenarioWakeup(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    One job submitted while 5,000 workers sleep: submit to result.
    """
    count = 5000 if scale >= 1 else 1000
    ready, quit = multiprocessing.Queue(), multiprocessing.Queue()
    sleepers = spawn(_sleepers, port, b"wake", count, ready, quit)
    ready.get(timeout=120)
    deadline = time.monotonic() + 60
    while statusOf(port, b"wake")[2] < count and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    times = []
    with connect(port) as sock:
        reader = Reader(sock)
        for i in range(5):
            began = time.perf_counter()
            sock.sendall(packet(SUBMIT_JOB, b"wake", b"", b"%d" % i))
            while True:
                ptype, payload = reader.packet()
                if ptype == WORK_COMPLETE:
                    if not payload.endswith(b"\0woke"):
                        raise AssertionError("wake-up job result wrong")
                    break
            times.append(time.perf_counter() - began)
            time.sleep(0.3)
    status = []
    for _ in range(20):
        began = time.perf_counter()
        reply = admin(port, b"status\n")
        status.append(time.perf_counter() - began)
        if b"wake\t0\t0\t%d" % count not in reply:
            raise AssertionError("status with sleepers wrong: %r" % (reply[:200],))
    quit.put(True)
    sleepers.join(60)
    return {
        "wake ms (%d sleepers)" % count: statistics.median(times) * 1000,
        "status ms (%d workers)" % count: statistics.median(status) * 1000,
    }


def scenarioMemory(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    RSS per queued 100-byte background job, on a fresh server.
    """
    jobs = int(200000 * scale)
    before = stats.rss()
    start, out = multiprocessing.Event(), multiprocessing.Queue()
    filler = spawn(_submitter, port, b"mem", jobs, 100, 1000, start, out)
    start.set()
    out.get(timeout=600)
    joinAll([filler])
    return {"RSS B/queued job": (stats.rss() - before) / jobs}


def scenarioConnections(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    RSS per idle worker connection, on a fresh server (measured after other
    work, connections would fit in memory kept from it).
    """
    connections = 5000 if scale >= 1 else 1000
    before = stats.rss()
    ready, quit = multiprocessing.Queue(), multiprocessing.Queue()
    idle = spawn(_idle, port, connections, ready, quit)
    ready.get(timeout=120)
    deadline = time.monotonic() + 60
    while statusOf(port, b"idle")[2] < connections and time.monotonic() < deadline:
        time.sleep(0.1)
    perConnection = (stats.rss() - before) / connections
    quit.put(True)
    idle.join(60)
    return {"RSS B/idle connection": perConnection}


SCENARIOS = {
    "submit": scenarioSubmit,
    "drain": scenarioDrain,
    "foreground": scenarioForeground,
    "echo1m": scenarioEcho1M,
    "wakeup": scenarioWakeup,
    "memory": scenarioMemory,
    "connections": scenarioConnections,
}

# Metrics where smaller is better: the ratio is gearmand / ours.
SMALLER_IS_BETTER = ("ms", "RSS", "CPU")


# Scenarios that can run twice on one server: unless --cold, each server
# first runs them unmeasured at a quarter of the scale, so figures are a
# running server's (a JIT such as PyPy's has compiled the hot path by then).
WARMABLE = ("submit", "drain", "foreground", "echo1m")


def runScenario(name: str, server: str, scale: float, python: Optional[str], warmup: bool = False) -> Dict[str, float]:
    if server == "gearmand":
        process = startGearmand(None)
    else:
        process = startOurs(None, python=python) if python else startOurs(None)
    try:
        stats = ServerStats(process.pid)
        if warmup and name in WARMABLE:
            if name == "submit":
                scenarioSubmit(process.port, stats, scale / 4, b"warmup")
            else:
                SCENARIOS[name](process.port, stats, scale / 4)
        return SCENARIOS[name](process.port, stats, scale)
    finally:
        process.stop()


def queueBenchmark(runs: int, scale: float, python: Optional[str]) -> None:
    """
    Background submit throughput with each persistent queue, ours and
    gearmand's, in the same run.
    """
    import shutil
    import tempfile

    from tests.redisserver import RedisServer

    redis = RedisServer()
    directory = tempfile.mkdtemp(prefix="bench-queue-")
    configurations = [
        ("gearmand builtin", "gearmand", ()),
        ("gearmand libsqlite3", "gearmand", ("-q", "libsqlite3", "--libsqlite3-db", "{dir}/gearmand.db")),
        ("gearman_tw memory", "ours", ()),
        ("gearman_tw sqlite", "ours", ("--queue", "sqlite:{dir}/ours.db")),
        ("gearman_tw redis", "ours", ("--queue", "redis://127.0.0.1:%d/0?namespace=bench{run}" % redis.port)),
    ]
    results: Dict[str, List[float]] = {}
    try:
        for run in range(runs):
            for name, server, args in configurations:
                runDirectory = os.path.join(directory, "%s-%d" % (name.replace(" ", "-"), run))
                os.makedirs(runDirectory)
                formatted = [a.format(dir=runDirectory, run=run) for a in args]
                if server == "gearmand":
                    process = startGearmand(None, *formatted)
                else:
                    process = startOurs(None, *formatted, python=python)
                try:
                    value = scenarioSubmit(process.port, ServerStats(process.pid), scale)["jobs/s"]
                finally:
                    process.stop()
                results.setdefault(name, []).append(value)
                print("%-22s run %d: %10.0f jobs/s" % (name, run + 1, value), flush=True)
    finally:
        redis.stop()
        shutil.rmtree(directory, ignore_errors=True)
    memory = statistics.median(results["gearman_tw memory"])
    # Runs are taken back to back, so a ratio within one run is the least
    # disturbed by a noisy machine; both medians are shown.
    print("\n| queue | background submit jobs/s | vs gearman_tw memory | same-run ratio, median |")
    print("|---|---|---|---|")
    for name, _, _ in configurations:
        value = statistics.median(results[name])
        ratios = [ours / base for ours, base in zip(results[name], results["gearman_tw memory"])]
        print("| %s | %.0f | %.2f | %.2f |" % (name, value, value / memory, statistics.median(ratios)))


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "scenarios",
        nargs="*",
        default=list(SCENARIOS),
        help=", ".join(SCENARIOS) + "; or 'queues' alone for the persistent queues",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply job counts")
    parser.add_argument("--quick", action="store_true", help="--runs 1 --scale 0.2")
    parser.add_argument("--python", help="run our server under this interpreter (e.g. pypy3)")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="skip the warm-up: by default each server first runs %s once, "
        "unmeasured, at a quarter of the scale" % ", ".join(WARMABLE),
    )
    options = parser.parse_args(argv)
    if options.quick:
        options.runs, options.scale = 1, 0.2
    if options.scenarios == ["queues"]:
        queueBenchmark(options.runs, options.scale, options.python)
        return 0
    unknown = set(options.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error("unknown scenarios: %s" % ", ".join(sorted(unknown)))
    ours = "gearman_tw"
    if options.python:
        import subprocess

        implementation = subprocess.run(
            [options.python, "-c", "import platform; print(platform.python_implementation())"],
            stdout=subprocess.PIPE,
            check=True,
        ).stdout.decode().strip()
        ours += " (%s)" % (implementation,)
    rows = []
    for name in options.scenarios:
        results: Dict[str, Dict[str, List[float]]] = {"gearmand": {}, "ours": {}}
        for run in range(options.runs):
            for server in ("gearmand", "ours"):
                for metric, value in runScenario(name, server, options.scale, options.python, not options.cold).items():
                    results[server].setdefault(metric, []).append(value)
        for metric in results["gearmand"]:
            theirs = statistics.median(results["gearmand"][metric])
            mine = statistics.median(results["ours"][metric])
            smaller = any(word in metric for word in SMALLER_IS_BETTER)
            ratio = (theirs / mine if mine else float("inf")) if smaller else (mine / theirs if theirs else 0)
            rows.append((name, metric, theirs, mine, ratio))
            print("%-10s %-26s gearmand %12.2f   %s %12.2f   ratio %.2f" % (name, metric, theirs, ours, mine, ratio), flush=True)
    print()
    print("| scenario | metric | gearmand -t 0 | %s | ratio |" % (ours,))
    print("|---|---|---|---|---|")
    for name, metric, theirs, mine, ratio in rows:
        print("| %s | %s | %.2f | %.2f | %.2f |" % (name, metric, theirs, mine, ratio))
    print(
        "\nmedians of %d run(s), scale %.2f%s; ratio > 1 means gearman_tw is ahead"
        % (options.runs, options.scale, "" if options.cold else ", after a warm-up")
    )
    return 0


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    # The load processes this one forks build a 1 MiB payload per large job;
    # without this the generator, not the server, would set the pace of the
    # large-job scenarios.  The servers keep their own settings.
    keepFreedMemory(64 << 20)
    sys.exit(main(sys.argv[1:]))
