"""
The gearman_tw benchmark: our server against C gearmand, same run, same
machine, every result verified.

    python benchmarks/bench.py                 # every scenario, 3 runs each
    python benchmarks/bench.py --runs 5 submit drain
    python benchmarks/bench.py --quick         # smaller counts, one run
    python benchmarks/bench.py --cold          # no warm-up run first
    python benchmarks/bench.py queues          # persistent queues: submit, drain

The load of the throughput scenarios (submit, drain, foreground,
libgearman, echo1m) comes from a load generator in C, benchmarks/loadgen.c,
built here on first use (it needs a C compiler and Debian's
libgearman-dev: see L{BUILD_PACKAGES}): one process, its raw-socket
clients and workers in one thread, and for the libgearman scenario one
thread per libgearman worker.  It checks every result, so a fast wrong
server does not score, and reports its own CPU time, shown next to the
server's so that a reader can see the load is not what sets the pace.
Figures are medians over the runs; the last column is ours divided by
gearmand's (for times, CPU and memory, gearmand's divided by ours), so
above 1.0 means faster or leaner than gearmand; the load's own figures
have no ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import select
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple, cast

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tests.integration.servers import startGearmand, startOurs  # noqa: E402

HEADER = struct.Struct(">4sII")
REQ, RES = b"\0REQ", b"\0RES"

CAN_DO, PRE_SLEEP, NOOP, SUBMIT_JOB = 1, 4, 6, 7
ECHO_REQ, ECHO_RES = 16, 17
GRAB_JOB, NO_JOB, JOB_ASSIGN, WORK_COMPLETE = 9, 10, 11, 13


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
        the server's own part (user time) and the kernel's (system time,
        mostly moving packets over loopback TCP).
        """
        user, system = self.times()
        return {
            "server CPU us/job": (user + system - sum(before)) / jobs * 1e6,
            "server user CPU us/job": (user - before[0]) / jobs * 1e6,
            "server system CPU us/job": (system - before[1]) / jobs * 1e6,
        }

    def rss(self) -> int:
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


# The C load generator.

LOADGEN_SOURCE = os.path.join(HERE, "loadgen.c")
BUILD = os.path.join(HERE, "build")
LOADGEN = os.path.join(BUILD, "loadgen")

#: Debian packages that building the load generator needs: a C compiler and
#: libgearman's headers (the library itself, libgearman8, comes with them).
BUILD_PACKAGES = ("gcc", "libgearman-dev")


class LoadGeneratorError(AssertionError):
    """
    The load generator could not be built, or its run failed: a result was
    wrong or missing, or the server went away.
    """


def buildLoadGenerator(compiler: Optional[str] = None) -> str:
    """
    Compile L{LOADGEN_SOURCE} into L{BUILD} unless the binary there is
    newer, and return the binary's path.  The binary is written under
    another name and renamed into place, so runs started at the same time
    never execute half a file.

    @param compiler: the C compiler; C{$CC}, else C{cc}, by default.
    @raise LoadGeneratorError: if it does not compile.
    """
    if os.path.exists(LOADGEN) and os.path.getmtime(LOADGEN) >= os.path.getmtime(LOADGEN_SOURCE):
        return LOADGEN
    os.makedirs(os.path.dirname(LOADGEN), exist_ok=True)
    temporary = "%s.%d.tmp" % (LOADGEN, os.getpid())
    command = [
        compiler or os.environ.get("CC", "cc"),
        "-O2",
        "-g",
        "-Wall",
        "-Wextra",
        "-std=gnu11",
        "-pthread",
        "-o",
        temporary,
        LOADGEN_SOURCE,
        "-lgearman",
    ]
    try:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    except OSError as e:
        raise LoadGeneratorError("cannot run %s (Debian packages: %s): %s" % (command[0], " ".join(BUILD_PACKAGES), e))
    if result.returncode != 0:
        raise LoadGeneratorError(
            "building the load generator failed (Debian packages: %s):\n%s"
            % (" ".join(BUILD_PACKAGES), result.stdout.decode(errors="replace")[-3000:])
        )
    os.replace(temporary, LOADGEN)
    return LOADGEN


class LoadGenerator:
    """
    One run of the C load generator (L{LOADGEN_SOURCE}, whose comment tells
    its modes): started, it connects and gets ready; L{go} starts the
    measured part; L{result} waits for its figures.

    @ivar process: the running generator.
    """

    def __init__(self, mode: str, port: int, timeout: float = 300, **options: object) -> None:
        argv = [buildLoadGenerator(), mode, "--port", str(port), "--timeout", str(timeout)]
        for name, value in options.items():
            argv += ["--" + name, str(value)]
        self.timeout = timeout
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._buffer = b""

    def _fail(self, message: str) -> LoadGeneratorError:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        assert self.process.stderr is not None
        said = self.process.stderr.read().decode(errors="replace").strip()
        self.close()
        return LoadGeneratorError("%s: %s" % (message, said))

    def _line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([descriptor], [], [], left)[0]:
                raise self._fail("the load generator said nothing for %ss" % (timeout,))
            data = os.read(descriptor, 4096)
            if not data:
                self.process.wait(10)
                raise self._fail("the load generator failed (exit %s)" % (self.process.returncode,))
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def ready(self, timeout: float = 120) -> None:
        """
        Wait until it is connected and set up.
        """
        line = self._line(timeout)
        if line != "ready":
            raise self._fail("expected 'ready', got %r" % (line,))

    def go(self) -> None:
        """
        Start the measured part.
        """
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def result(self) -> Dict[str, float]:
        """
        Its figures, once it has checked every result: C{jobs}, C{seconds}
        (wall time), C{user} and C{system} (its CPU seconds over that time),
        C{p50_ms} and C{p99_ms} (latency of synchronous jobs).  Then
        L{finish}.
        """
        line = self._line(self.timeout + 10)
        words = line.split()
        if not words or words[0] != "result":
            raise self._fail("expected a result, got %r" % (line,))
        return {key: float(value) for key, value in (word.split("=", 1) for word in words[1:])}

    def finish(self) -> None:
        """
        Wait for it to exit, and fail unless it exits cleanly.
        """
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            raise self._fail("the load generator did not exit")
        if self.process.returncode != 0:
            raise self._fail("the load generator failed (exit %s)" % (self.process.returncode,))
        self.close()

    def close(self) -> None:
        """
        Make sure it has exited.
        """
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def runLoad(
    port: int, stats: ServerStats, mode: str, database: Optional[ServerStats] = None, **options: object
) -> Dict[str, float]:
    """
    Run the load generator in C{mode} with C{options} and measure: jobs per
    second, the server's CPU time per job (all, user, system) and its share
    of a core, the load's CPU time per job (all, user) and its share of a
    core, and latency percentiles where the mode has them.

    @param database: the database server the server's queue uses, if any:
        its CPU time per job too.
    """
    load = LoadGenerator(mode, port, 300, **options)
    try:
        load.ready()
        before = stats.times()
        databaseBefore = database.times() if database is not None else (0.0, 0.0)
        load.go()
        result = load.result()
        serverCPU = stats.perJob(before, int(result["jobs"]))
        if database is not None:
            serverCPU["database CPU us/job"] = (sum(database.times()) - sum(databaseBefore)) / result["jobs"] * 1e6
        load.finish()
    finally:
        load.close()
    jobs, seconds = result["jobs"], result["seconds"]
    loadCPU = result["user"] + result["system"]
    metrics = {"jobs/s": jobs / seconds}
    metrics.update(serverCPU)
    metrics["server share of a core"] = serverCPU["server CPU us/job"] * jobs / 1e6 / seconds
    metrics["load CPU us/job"] = loadCPU / jobs * 1e6
    metrics["load user CPU us/job"] = result["user"] / jobs * 1e6
    metrics["load share of a core"] = loadCPU / seconds
    if result.get("p99_ms"):
        metrics["p50 ms"] = result["p50_ms"]
        metrics["p99 ms"] = result["p99_ms"]
    return metrics


# Python load for the scenarios that are not about throughput.


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
            sock = cast(socket.socket, key.fileobj)
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


def waitReady(ready, what: str, timeout: float = 120) -> None:
    """
    Wait for a load process to say it is ready on C{ready}, or fail.
    """
    try:
        ready.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError("%s not connected after %ss" % (what, timeout))


# Scenarios: each returns {metric: value}.


def scenarioSubmit(port: int, stats: ServerStats, scale: float, function: bytes = b"bench") -> Dict[str, float]:
    """
    Background submit: 4 clients pipelining 100-byte jobs, 500 at a time.
    Every submission gets its JOB_CREATED, every handle is new, and the
    server's status counts them all queued.
    """
    clients, count = 4, max(100, int(50000 * scale))
    metrics = runLoad(
        port, stats, "submit", function=function.decode(), clients=clients, jobs=count, size=100, window=500
    )
    queued = statusOf(port, function)[0]
    if queued != clients * count:
        raise AssertionError("submit: the server has %d of %d jobs queued" % (queued, clients * count))
    return metrics


def scenarioDrain(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    Background drain: 8 workers grab and complete pre-queued 100-byte jobs;
    every job is handed out exactly once with its data intact, and none is
    left queued.
    """
    metrics = runLoad(port, stats, "drain", function="drain", workers=8, jobs=max(100, int(100000 * scale)), size=100)
    left = statusOf(port, b"drain")
    if left[:2] != (0, 0):
        raise AssertionError("drain: %d jobs still queued, %d running" % left[:2])
    return metrics


def scenarioForeground(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    Foreground: 16 clients running synchronous 100-byte jobs on 8 raw echo
    workers (GRAB_JOB_UNIQ, PRE_SLEEP, NOOP); each result must be the job's
    data.
    """
    return runLoad(
        port, stats, "foreground", function="echo", clients=16, workers=8, jobs=max(10, int(3000 * scale)), size=100
    )


def scenarioLibgearman(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    The foreground scenario with libgearman's workers: 8 threads each in a
    C{gearman_worker_work} loop (GRAB_JOB_ALL, PRE_SLEEP), as PHP and the
    C{gearman} tool's workers run.
    """
    return runLoad(
        port, stats, "libgearman", function="lib", clients=16, workers=8, jobs=max(10, int(3000 * scale)), size=100
    )


def scenarioEcho1M(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    1 MiB foreground jobs: one client, one raw echo worker.
    """
    size = 1 << 20
    metrics = runLoad(port, stats, "foreground", function="big", jobs=max(5, int(400 * scale)), size=size)
    # Each job carries its MiB twice through the server: in and out.
    return {"MB/s": metrics["jobs/s"] * size * 2 / 1e6, **metrics}


def scenarioWakeup(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    One job submitted while 5,000 workers sleep: submit to result.
    """
    count = 5000 if scale >= 1 else 1000
    ready: "multiprocessing.Queue[bool]" = multiprocessing.Queue()
    quit: "multiprocessing.Queue[bool]" = multiprocessing.Queue()
    sleepers = spawn(_sleepers, port, b"wake", count, ready, quit)
    waitReady(ready, "wakeup: %d sleeping workers" % (count,))
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
    load = LoadGenerator("submit", port, function="mem", clients=1, jobs=jobs, size=100, window=1000)
    try:
        load.ready()
        load.go()
        load.result()
        load.finish()
    finally:
        load.close()
    return {"RSS B/queued job": (stats.rss() - before) / jobs}


def scenarioConnections(port: int, stats: ServerStats, scale: float) -> Dict[str, float]:
    """
    RSS per idle worker connection, on a fresh server (measured after other
    work, connections would fit in memory kept from it).
    """
    connections = 5000 if scale >= 1 else 1000
    before = stats.rss()
    ready: "multiprocessing.Queue[bool]" = multiprocessing.Queue()
    quit: "multiprocessing.Queue[bool]" = multiprocessing.Queue()
    idle = spawn(_idle, port, connections, ready, quit)
    waitReady(ready, "connections: %d idle workers" % (connections,))
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
    "libgearman": scenarioLibgearman,
    "echo1m": scenarioEcho1M,
    "wakeup": scenarioWakeup,
    "memory": scenarioMemory,
    "connections": scenarioConnections,
}

# Metrics where smaller is better: the ratio is gearmand / ours.
SMALLER_IS_BETTER = ("ms", "RSS", "CPU")


def ratioOf(metric: str, theirs: float, mine: float) -> Optional[float]:
    """
    How far ahead of gearmand we are on C{metric} (above 1: ahead), or
    L{None} where a ratio means nothing: the load's own costs, and the
    share of a core a server used (neither more nor less is better).
    """
    if metric.startswith("load") or "share" in metric:
        return None
    if any(word in metric for word in SMALLER_IS_BETTER):
        return theirs / mine if mine else float("inf")
    return mine / theirs if theirs else 0.0


# Scenarios that can run twice on one server: unless --cold, each server
# first runs them unmeasured at a quarter of the scale, so figures are a
# running server's (a JIT such as PyPy's has compiled the hot path by then).
WARMABLE = ("submit", "drain", "foreground", "libgearman", "echo1m")


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


# The persistent queues: `bench.py queues`.


def descendants(pid: int) -> List[int]:
    """
    The processes started by C{pid}, and by them, and so on (a database
    server's workers: PostgreSQL's backends), from /proc.
    """
    parents: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % (entry,), "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found.extend(children)
        todo.extend(children)
    return found


class ProcessTreeStats(ServerStats):
    """
    CPU seconds of a process and all its descendants (those alive when
    read: a database server's connections outlive a measurement).
    """

    def times(self) -> Tuple[float, float]:
        user = system = 0.0
        for pid in [self.pid, *descendants(self.pid)]:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            user += int(fields[11]) / self.tick
            system += int(fields[12]) / self.tick
        return user, system


class QueueSetup:
    """
    One job server with one persistent queue, as the queue benchmark runs
    it.

    @ivar name: what the table calls it, e.g. C{"gearmand libsqlite3"}.
    @ivar server: C{"gearmand"} or C{"ours"}.
    @ivar database: the database server it needs (a key of the servers
        L{startDatabases} gives), or L{None}.
    @ivar durability: what makes a job stored before its JOB_CREATED, for
        the table.
    @ivar perCommit: whether it commits each job on its own (gearmand's
        queues), so that a run gets L{SLOW_JOBS} jobs, not L{FAST_JOBS}.
    @ivar arguments: its command-line options, given the database servers,
        a directory of its own and a tag unique to the run and phase.
    @ivar unique: whether its load gives each job a unique key of its own:
        gearmand's libpq, MySQL and redis queues key their jobs by unique
        key and function, so they cannot hold two jobs with the empty key.
        (Only there: gearmand's unique-key table slows as it fills, 24,000
        submissions/s at 200,000 queued jobs against 850,000 without keys.)
    @ivar plugin: the name of the gearmand queue plugin it needs.
    """

    def __init__(
        self,
        name: str,
        server: str,
        durability: str,
        arguments: Callable[[Dict[str, object], str, str], List[str]],
        database: Optional[str] = None,
        perCommit: bool = False,
        plugin: Optional[str] = None,
        unique: bool = False,
    ) -> None:
        self.name = name
        self.server = server
        self.durability = durability
        self.arguments = arguments
        self.database = database
        self.perCommit = perCommit
        self.plugin = plugin
        self.unique = unique


def _redisPort(servers: Dict[str, object]) -> int:
    return servers["redis"].port  # type: ignore[attr-defined, no-any-return]


def _postgres(servers: Dict[str, object]) -> object:
    return servers["postgresql"]


def _mysql(servers: Dict[str, object]) -> object:
    return servers["mysql"]


def _gearmandPostgres(servers: Dict[str, object], directory: str, tag: str) -> List[str]:
    server = servers["postgresql"]
    conninfo = "host=127.0.0.1 port=%d user=gearman dbname=gearman" % (server.port,)  # type: ignore[attr-defined]
    return ["-q", "Postgres", "--libpq-conninfo", conninfo, "--libpq-table", "gd_" + tag]


def _gearmandRedis(servers: Dict[str, object], directory: str, tag: str) -> List[str]:
    port = str(_redisPort(servers))
    return ["-q", "redis", "--redis-server", "127.0.0.1", "--redis-port", port, "--redis-prefix", "gd_%s_" % (tag,)]


def _gearmandMySQL(servers: Dict[str, object], directory: str, tag: str) -> List[str]:
    from tests import mysqlserver

    server = servers["mysql"]
    return [
        "-q", "MySQL",
        "--mysql-host", "127.0.0.1",
        "--mysql-port", str(server.port),  # type: ignore[attr-defined]
        "--mysql-user", mysqlserver.USER,
        "--mysql-password", mysqlserver.PASSWORD,
        "--mysql-db", mysqlserver.DATABASE,
        "--mysql-table", "gd_" + tag,
    ]  # fmt: skip


#: Background submit and drain jobs per run for our queues and gearmand's
#: builtin one (as the submit and drain scenarios), at scale 1.
FAST_JOBS = (200000, 100000)

#: The same for gearmand's persistent queues, which commit every job on
#: its own (one fsync each): a few hundred to a few thousand jobs/s.
SLOW_JOBS = (1000, 1000)

SQLITE_DURABILITY = "synchronous=FULL (fsync per commit)"
REDIS_DURABILITY = "appendonly, appendfsync always"
POSTGRES_DURABILITY = "fsync on, synchronous_commit on"
MYSQL_DURABILITY = "InnoDB, innodb_flush_log_at_trx_commit=1"

QUEUE_SETUPS = [
    QueueSetup("gearmand builtin", "gearmand", "none (memory)", lambda s, d, t: []),
    QueueSetup(
        "gearmand libsqlite3",
        "gearmand",
        SQLITE_DURABILITY + ", rollback journal",
        lambda s, d, t: ["-q", "libsqlite3", "--libsqlite3-db", os.path.join(d, "gearmand.db")],
        perCommit=True,
        plugin="libsqlite3",
    ),
    QueueSetup(
        "gearmand Postgres",
        "gearmand",
        POSTGRES_DURABILITY,
        _gearmandPostgres,
        database="postgresql",
        perCommit=True,
        plugin="Postgres",
        unique=True,
    ),
    QueueSetup(
        "gearmand MySQL",
        "gearmand",
        MYSQL_DURABILITY,
        _gearmandMySQL,
        database="mysql",
        perCommit=True,
        plugin="MySQL",
        unique=True,
    ),
    QueueSetup(
        "gearmand redis",
        "gearmand",
        REDIS_DURABILITY,
        _gearmandRedis,
        database="redis",
        perCommit=True,
        plugin="redis",
        unique=True,
    ),
    QueueSetup("gearman_tw memory", "ours", "none (memory)", lambda s, d, t: []),
    QueueSetup(
        "gearman_tw sqlite",
        "ours",
        SQLITE_DURABILITY + ", WAL",
        lambda s, d, t: ["--queue", "sqlite:" + os.path.join(d, "ours.db")],
    ),
    QueueSetup(
        "gearman_tw redis",
        "ours",
        REDIS_DURABILITY,
        lambda s, d, t: ["--queue", "redis://127.0.0.1:%d/0?namespace=bench_%s" % (_redisPort(s), t)],
        database="redis",
    ),
    QueueSetup(
        "gearman_tw postgresql",
        "ours",
        POSTGRES_DURABILITY,
        lambda s, d, t: ["--queue", _postgres(s).url(table="ours_" + t, gearmand_table="")],  # type: ignore[attr-defined]
        database="postgresql",
    ),
    QueueSetup(
        "gearman_tw mysql",
        "ours",
        MYSQL_DURABILITY,
        lambda s, d, t: ["--queue", _mysql(s).url(table="ours_" + t)],  # type: ignore[attr-defined]
        database="mysql",
    ),
]

#: The baselines of the ratios.
GEARMAND_SQLITE, OURS_MEMORY = "gearmand libsqlite3", "gearman_tw memory"


def gearmandQueues() -> List[str]:
    """
    The persistent queue plugins this machine's gearmand was built with:
    those whose option sections C{gearmand --help} shows.
    """
    from tests.integration.servers import GEARMAND

    result = subprocess.run([GEARMAND, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    sections = {line.strip()[:-1] for line in result.stdout.decode(errors="replace").splitlines() if line.endswith(":")}
    return [name for name in ("libsqlite3", "Postgres", "MySQL", "redis") if name in sections]


def startDatabases(needed: List[str]) -> Tuple[Dict[str, object], Dict[str, str]]:
    """
    Start a throwaway server (tests/*server.py: temporary directory, free
    loopback port, durable settings) for each database in C{needed}.

    @return: the servers by name, and why each one that could not start
        did not.
    """
    from twisted.trial.unittest import SkipTest

    servers: Dict[str, object] = {}
    missing: Dict[str, str] = {}
    for name in needed:
        try:
            if name == "redis":
                from tests.redisserver import RedisServer

                servers[name] = RedisServer()
            elif name == "postgresql":
                from tests.pgserver import PostgresServer

                servers[name] = PostgresServer()
            elif name == "mysql":
                from tests.mysqlserver import MariaDBServer

                servers[name] = MariaDBServer()
        except (SkipTest, AssertionError, ImportError) as e:
            missing[name] = str(e)
    return servers, missing


def databaseProcess(server: object) -> Optional[int]:
    """
    The pid of a database server from L{startDatabases}.
    """
    process = getattr(server, "process", None)
    return process.pid if process is not None else None


def measureQueue(
    port: int,
    stats: ServerStats,
    database: Optional[ServerStats],
    phase: str,
    jobs: int,
    function: str,
    unique: bool = False,
) -> Dict[str, float]:
    """
    One measured phase on a fresh server: C{"submit"} (4 clients pipelining
    100-byte background jobs, 500 at a time: a JOB_CREATED means the job is
    stored) or C{"drain"} (8 workers taking and completing C{jobs} jobs
    queued, and stored, before the measurement), checked as the submit and
    drain scenarios check theirs.  With C{unique} each job has a unique key
    of its own (C{loadgen --unique}).
    """
    if phase == "submit":
        clients = 4
        metrics = runLoad(
            port, stats, "submit", database=database, function=function, clients=clients, jobs=jobs // clients,
            size=100, window=500, unique=int(unique),
        )  # fmt: skip
        queued = statusOf(port, function.encode())[0]
        if queued != jobs // clients * clients:
            raise AssertionError("submit: the server has %d of %d jobs queued" % (queued, jobs))
    else:
        metrics = runLoad(
            port, stats, "drain", database=database, function=function, workers=8, jobs=jobs, size=100,
            unique=int(unique),
        )  # fmt: skip
        left = statusOf(port, function.encode())
        if left[:2] != (0, 0):
            raise AssertionError("drain: %d jobs still queued, %d running" % left[:2])
    return metrics


#: What the queue table shows of each phase.
QUEUE_METRICS = (
    "jobs/s",
    "server CPU us/job",
    "server user CPU us/job",
    "database CPU us/job",
    "load CPU us/job",
    "load user CPU us/job",
    "server share of a core",
)


def queueBenchmark(
    runs: int, scale: float, python: Optional[str], only: Optional[List[str]] = None
) -> Dict[str, Dict[str, List[float]]]:
    """
    Background submit and drain throughput with every persistent queue,
    ours and gearmand's (those it was built with), in the same run; each
    phase on a fresh server, configurations taken in turn within each run.
    Prints a table: medians, ratios to gearmand's libsqlite3 queue and to
    our memory queue, CPU per job of the server, of the database server
    and of the load.  With C{only}, just the configurations whose names
    contain one of its words (and the two baselines).

    @return: each configuration's figures per run, by C{"phase metric"}.
    """
    import shutil
    import tempfile

    plugins = gearmandQueues()
    setups = [s for s in QUEUE_SETUPS if s.plugin is None or s.plugin in plugins]
    for setup in QUEUE_SETUPS:
        if setup not in setups:
            print("%s: left out, gearmand has no %s queue" % (setup.name, setup.plugin), flush=True)
    if only:
        baselines = (GEARMAND_SQLITE, OURS_MEMORY)
        setups = [s for s in setups if s.name in baselines or any(word in s.name for word in only)]
    servers, missing = startDatabases(sorted({s.database for s in setups if s.database}))
    for name, reason in missing.items():
        print("%s: not installed, its queues left out (%s)" % (name, reason), flush=True)
    setups = [s for s in setups if s.database is None or s.database in servers]
    directory = tempfile.mkdtemp(prefix="bench-queue-")
    results: Dict[str, Dict[str, List[float]]] = {}
    try:
        for run in range(runs):
            for setup in setups:
                for phase, fast, slow in zip(("submit", "drain"), FAST_JOBS, SLOW_JOBS):
                    jobs = max(100, int((slow if setup.perCommit else fast) * scale))
                    tag = "r%d_%s" % (run + 1, phase)
                    runDirectory = os.path.join(directory, "%s-%s" % (setup.name.replace(" ", "-"), tag))
                    os.makedirs(runDirectory)
                    arguments = setup.arguments(servers, runDirectory, tag)
                    if setup.server == "gearmand":
                        process = startGearmand(None, *arguments)
                    else:
                        process = startOurs(None, *arguments, python=python)
                    database = None
                    if setup.database is not None:
                        pid = databaseProcess(servers[setup.database])
                        database = ProcessTreeStats(pid) if pid is not None else None
                    try:
                        metrics = measureQueue(
                            process.port, ServerStats(process.pid), database, phase, jobs, phase, setup.unique
                        )
                    finally:
                        process.stop()
                        if setup.database == "redis":
                            # So that no phase pays for rewriting the
                            # append-only file of those before.
                            servers["redis"].empty()  # type: ignore[attr-defined]
                    figures = results.setdefault(setup.name, {})
                    figures.setdefault(phase + " jobs", []).append(jobs)
                    for metric in QUEUE_METRICS:
                        if metric in metrics:
                            figures.setdefault("%s %s" % (phase, metric), []).append(metrics[metric])
                    print(
                        "%-22s run %d %-6s %7d jobs %10.0f jobs/s  server %.2f us/job%s  load %.2f us/job"
                        % (
                            setup.name, run + 1, phase, jobs, metrics["jobs/s"], metrics["server CPU us/job"],
                            "  database %.2f us/job" % metrics["database CPU us/job"] if database else "",
                            metrics["load CPU us/job"],
                        ),
                        flush=True,
                    )  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()  # type: ignore[attr-defined]
        shutil.rmtree(directory, ignore_errors=True)
    print()
    for line in queueTable(setups, results, runs, scale):
        print(line)
    return results


def queueTable(
    setups: List[QueueSetup], results: Dict[str, Dict[str, List[float]]], runs: int, scale: float
) -> List[str]:
    """
    The queue benchmark's table, in Markdown, from its figures per run.
    Each ratio is of the medians; in brackets, the median of the ratios
    within each run (taken minutes apart at most, so the least disturbed
    by a machine whose speed drifts).
    """

    def median(name: str, key: str) -> Optional[float]:
        values = results.get(name, {}).get(key)
        return statistics.median(values) if values else None

    def ratio(name: str, base: str, phase: str) -> str:
        mine, theirs = median(name, phase + " jobs/s"), median(base, phase + " jobs/s")
        if mine is None or not theirs:
            return "-"
        withinRuns = statistics.median(
            a / b for a, b in zip(results[name][phase + " jobs/s"], results[base][phase + " jobs/s"])
        )
        shown = "{:,.0f}".format(mine / theirs) if mine / theirs >= 10 else "%.2f" % (mine / theirs,)
        return "%s (%.2f)" % (shown, withinRuns) if base == OURS_MEMORY else shown

    def pair(name: str, metric: str, user: Optional[str] = None) -> str:
        shown = []
        for phase in ("submit", "drain"):
            value = median(name, "%s %s" % (phase, metric))
            if value is None:
                shown.append("-")
                continue
            part = median(name, "%s %s" % (phase, user)) if user else None
            shown.append("%.2f" % value + (" (%.2f)" % part if part is not None else ""))
        return " / ".join(shown)

    lines = [
        "| queue | durability | jobs per run, submit / drain | submit jobs/s | vs gearmand libsqlite3 "
        "| vs gearman_tw memory | drain jobs/s | vs gearmand libsqlite3 | vs gearman_tw memory "
        "| server CPU us/job (user), submit / drain | database server CPU us/job | load CPU us/job (user) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for setup in setups:
        name = setup.name
        jobs = " / ".join("{:,}".format(int(median(name, p + " jobs") or 0)) for p in ("submit", "drain"))
        lines.append(
            "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |"
            % (
                name, setup.durability, jobs,
                "{:,.0f}".format(median(name, "submit jobs/s") or 0), ratio(name, GEARMAND_SQLITE, "submit"),
                ratio(name, OURS_MEMORY, "submit"),
                "{:,.0f}".format(median(name, "drain jobs/s") or 0), ratio(name, GEARMAND_SQLITE, "drain"),
                ratio(name, OURS_MEMORY, "drain"),
                pair(name, "server CPU us/job", "server user CPU us/job"),
                pair(name, "database CPU us/job") if setup.database else "-",
                pair(name, "load CPU us/job", "load user CPU us/job"),
            )
        )  # fmt: skip
    lines.append(
        "\nmedians of %d run(s), scale %.2f, no warm-up; each phase on a fresh server and a fresh table; "
        "vs gearman_tw memory: ratio of the medians (median of the ratios within each run)" % (runs, scale)
    )
    return lines


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
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        help="queues: only the configurations whose names contain one of these comma-separated words"
        " (with the baselines), e.g. --only 'tw redis'",
    )
    options = parser.parse_args(argv)
    if options.quick:
        options.runs, options.scale = 1, 0.2
    if options.scenarios == ["queues"]:
        queueBenchmark(options.runs, options.scale, options.python, options.only)
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
        for _ in range(options.runs):
            for server in ("gearmand", "ours"):
                for metric, value in runScenario(name, server, options.scale, options.python, not options.cold).items():
                    results[server].setdefault(metric, []).append(value)
        for metric in results["gearmand"]:
            theirs = statistics.median(results["gearmand"][metric])
            mine = statistics.median(results["ours"][metric])
            ratio = ratioOf(metric, theirs, mine)
            shown = "-" if ratio is None else "%.2f" % (ratio,)
            rows.append((name, metric, theirs, mine, shown))
            print(
                "%-10s %-26s gearmand %12.2f   %s %12.2f   ratio %s" % (name, metric, theirs, ours, mine, shown),
                flush=True,
            )
    print()
    print("| scenario | metric | gearmand -t 0 | %s | ratio |" % (ours,))
    print("|---|---|---|---|---|")
    for name, metric, theirs, mine, shown in rows:
        print("| %s | %s | %.2f | %.2f | %s |" % (name, metric, theirs, mine, shown))
    print(
        "\nmedians of %d run(s), scale %.2f%s; ratio > 1 means gearman_tw is ahead"
        % (options.runs, options.scale, "" if options.cold else ", after a warm-up")
    )
    return 0


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    sys.exit(main(sys.argv[1:]))
