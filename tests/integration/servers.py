"""
Real job server processes for integration tests, and a blocking raw-socket
connection to talk to them byte for byte.

Both servers run on 127.0.0.1 at a free port: ours under C{twistd -n gearman}
(from this source tree), and C gearmand from Debian's C{gearman-job-server}.
In CI (C{$CI} set) a missing gearmand or libgearman tool fails the test
instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Sequence, Tuple

from twisted.trial.unittest import SkipTest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEARMAND = "/usr/sbin/gearmand"

#: The job handle prefix both servers are started with, so handles compare equal.
PREFIX = "T"

HEADER = struct.Struct(">4sII")

#: Runs twistd in the Python that runs this, importing from its path.
RUN_TWISTD = "from twisted.scripts.twistd import run; run()"


def requireProgram(path: str) -> str:
    """
    The full path of program C{path}; skip the test without it, or fail in CI.
    """
    found = path if os.path.isabs(path) and os.access(path, os.X_OK) else shutil.which(path)
    if not found:
        message = "%s is not installed (Debian packages: see the Makefile)" % (path,)
        if os.environ.get("CI"):
            raise AssertionError(message)
        raise SkipTest(message)
    return found


def freePort() -> int:
    """
    A TCP port on 127.0.0.1 that was free a moment ago.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def waitFor(predicate, timeout: float = 15.0):
    """
    Poll C{predicate} until it returns something true (returned), or return
    L{False} after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return False


def waitForPort(port: int, process: subprocess.Popen, timeout: float = 15.0) -> None:
    """
    Wait until something accepts connections on C{port}, or fail.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("server exited with status %s" % (process.returncode,))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on port %d after %ss" % (port, timeout))


def _stopped(pid: int) -> bool:
    """
    Whether every thread of process C{pid} is stopped (or it is gone).
    """
    try:
        tasks = os.listdir("/proc/%d/task" % (pid,))
    except FileNotFoundError:
        return True
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, task)) as f:
                # The state follows the command, which is in parentheses.
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            continue
        if state not in ("T", "t"):
            return False
    return True


def freeze(pids: Sequence[int], timeout: float = 5.0) -> None:
    """
    SIGSTOP the processes C{pids} and return once every thread of each has
    stopped: C{os.kill} returns before a thread running on another CPU
    does, and a test that then sends a request must find it frozen.
    """
    for pid in pids:
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            pass
    if not waitFor(lambda: all(_stopped(pid) for pid in pids), timeout):
        raise AssertionError("processes %r did not stop within %s s" % (list(pids), timeout))


def stopProcess(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """
    Kill C{process} (nothing if it has ended) and wait for it to end: for
    C{testCase.addCleanup(stopProcess, process)}.
    """
    process.kill()
    process.wait(timeout)


class ServerProcess:
    """
    A job server running as a child process on 127.0.0.1.

    @ivar port: its port.
    @ivar name: C{"gearman_tw"} or C{"gearmand"}.
    """

    def __init__(self, name: str, argv: List[str], port: int, logPath: str, wait: bool = True) -> None:
        self.name = name
        self.port = port
        self.logPath = logPath
        self._log = open(logPath, "wb")
        env = dict(os.environ, PYTHONPATH=REPO)
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        if not wait:
            return
        try:
            waitForPort(port, self.process)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def connect(self) -> "RawConnection":
        """
        A new raw connection to this server.
        """
        return RawConnection(self.port)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> Optional[int]:
        """
        Stop the process and return its exit status.
        """
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._log.close()
        return self.process.returncode

    def log(self) -> str:
        """
        What the server has printed so far.
        """
        with open(self.logPath, "rb") as f:
            return f.read().decode("utf-8", "replace")


def _start(name: str, argvForPort, testCase, tries: int = 3, wait: bool = True) -> ServerProcess:
    directory = tempfile.mkdtemp(prefix="gearman-test-")
    last: Optional[BaseException] = None
    for attempt in range(tries):
        port = freePort()
        try:
            server = ServerProcess(
                name, argvForPort(port, directory), port, os.path.join(directory, "log.%d" % attempt), wait
            )
        except AssertionError as e:
            last = e
            continue
        if testCase is not None:
            testCase.addCleanup(server.stop)
            testCase.addCleanup(shutil.rmtree, directory, True)
        return server
    raise AssertionError("could not start %s: %s" % (name, last))


def twistdArgv(*args: str, twistd: Sequence[str] = ()) -> List[str]:
    """
    The command line of twistd in the foreground with no pid file, then
    C{args}: a plugin name and its options, or C{-y FILE}.

    @param twistd: the command that runs twistd; by default this Python
        running L{RUN_TWISTD}, which imports from C{$PYTHONPATH} (L{REPO}
        for this tree).
    """
    return [*(twistd or (sys.executable, "-c", RUN_TWISTD)), "-n", "--pidfile=", *args]


def startOurs(
    testCase=None,
    *args: str,
    python: Optional[str] = None,
    twistdOptions: Sequence[str] = (),
    wait: bool = True,
) -> ServerProcess:
    """
    Start C{twistd -n gearman} from this tree with extra C{args}; stopped at
    C{testCase}'s cleanup.

    @param python: the interpreter to run it with; this one by default.
    @param twistdOptions: twistd's own options, before C{gearman}.
    @param wait: wait until it listens (not for a standby, which does not).
    """

    def argv(port: int, directory: str) -> List[str]:
        return twistdArgv(
            *twistdOptions,
            "gearman",
            "--port",
            str(port),
            "--listen",
            "127.0.0.1",
            "--job-handle-prefix",
            PREFIX,
            *args,
            twistd=(python, "-c", RUN_TWISTD) if python else (),
        )

    return _start("gearman_tw", argv, testCase, wait=wait)


def startGearmand(testCase=None, *args: str) -> ServerProcess:
    """
    Start C gearmand with extra C{args}; stopped at C{testCase}'s cleanup.
    """
    gearmand = requireProgram(GEARMAND)

    def argv(port: int, directory: str) -> List[str]:
        return [
            gearmand,
            "--listen",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            "0",
            "--log-file",
            "none",
            "--pid-file",
            os.path.join(directory, "gearmand.pid"),
            "--job-handle-prefix",
            PREFIX,
            *args,
        ]

    return _start("gearmand", argv, testCase)


def packet(ptype: int, *args: bytes, magic: bytes = b"\0REQ") -> bytes:
    """
    Encode a request packet.
    """
    payload = b"\0".join(args)
    return HEADER.pack(magic, ptype, len(payload)) + payload


class RawConnection:
    """
    A blocking connection that sends raw bytes and reads packets or lines,
    every read bounded by a timeout.
    """

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def sendPacket(self, ptype: int, *args: bytes) -> None:
        self.send(packet(ptype, *args))

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not data:
            raise EOFError("connection closed")
        self.buffer += data
        return True

    def readPacket(self, timeout: Optional[float] = None) -> Tuple[int, bytes]:
        """
        Read one binary packet: C{(type, payload)}.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.buffer) >= 12:
                magic, ptype, size = HEADER.unpack_from(self.buffer)
                if len(self.buffer) >= 12 + size:
                    payload = self.buffer[12 : 12 + size]
                    self.buffer = self.buffer[12 + size :]
                    return ptype, payload
            if not self._fill(deadline):
                raise TimeoutError("no packet; have %r" % (self.buffer,))

    def readPackets(self, count: int) -> List[Tuple[int, bytes]]:
        return [self.readPacket() for _ in range(count)]

    def sync(self, token: bytes = b"sync") -> List[Tuple[int, bytes]]:
        """
        Send ECHO_REQ and return every packet that arrives before its ECHO_RES.
        """
        self.sendPacket(16, token)
        packets: List[Tuple[int, bytes]] = []
        while True:
            ptype, payload = self.readPacket()
            if ptype == 17 and payload == token:
                return packets
            packets.append((ptype, payload))

    def quiet(self, wait: float = 0.2) -> bytes:
        """
        Whatever arrives within C{wait} seconds (for "no reply" checks).
        """
        deadline = time.monotonic() + wait
        try:
            while self._fill(deadline):
                pass
        except EOFError:
            pass
        data, self.buffer = self.buffer, b""
        return data

    def isClosed(self, wait: float = 2.0) -> bool:
        """
        Whether the server closes the connection within C{wait} seconds.
        """
        deadline = time.monotonic() + wait
        try:
            while self._fill(deadline):
                pass
        except (EOFError, ConnectionResetError):
            return True
        return False

    def admin(self, line: bytes) -> bytes:
        """
        Send one admin line and read its reply: up to a lone C{.} line for
        list commands, else one line.
        """
        self.send(line)
        deadline = time.monotonic() + self.timeout
        while True:
            if self.buffer.startswith(b".\n"):
                end = 2
                break
            index = self.buffer.find(b"\n.\n")
            if index >= 0 and not self.buffer.startswith((b"OK", b"ERR")):
                end = index + 3
                break
            if self.buffer.startswith((b"OK", b"ERR")) and b"\n" in self.buffer:
                end = self.buffer.index(b"\n") + 1
                break
            if not self._fill(deadline):
                raise TimeoutError("no admin reply; have %r" % (self.buffer,))
        reply, self.buffer = self.buffer[:end], self.buffer[end:]
        return reply


def run(argv: Sequence[str], input: bytes = b"", timeout: float = 30.0) -> subprocess.CompletedProcess:
    """
    Run a command-line peer (gearman, gearadmin, php, perl) to completion.
    """
    return subprocess.run(
        list(argv), input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout
    )
