"""
A throwaway Redis Sentinel setup for tests: a master, its replicas and
three sentinels, each a process on a free loopback port, with their
configuration and data in a temporary directory and fast failover settings
(the master is down after L{DOWN_AFTER} ms without an answer).

Every wait is bounded; the helpers block (they are short on loopback).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from tests.integration.servers import freePort, requireProgram

#: The name the sentinels monitor the master under.
SERVICE = "gearman"

#: Milliseconds without an answer before a sentinel finds the master down.
DOWN_AFTER = 1000

#: Milliseconds a failover may take (and twice this before a new attempt).
FAILOVER_TIMEOUT = 3000


class ReplyError(Exception):
    """
    Redis answered with an error.
    """


def _read(reader: Any) -> Any:
    """
    One RESP reply from a file-like C{reader}: bytes, an int, None, a list,
    or a L{ReplyError} (returned, not raised, inside arrays).
    """
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed in the middle of a reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        return ReplyError(rest.decode("utf-8", "replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        return reader.read(size + 2)[:-2]
    if kind == b"*":
        size = int(rest)
        if size < 0:
            return None
        return [_read(reader) for _ in range(size)]
    raise ConnectionError("not a RESP reply: %r" % (line,))


def call(port: int, *arguments: Any, password: Optional[str] = None, timeout: float = 5.0) -> Any:
    """
    Run one command on the Redis (or sentinel) at C{port} over a blocking
    connection of its own, after an AUTH with C{password} if given.

    @raise ReplyError: Redis answered with an error.
    @raise OSError: it could not be reached, or did not answer in time.
    """
    commands = [arguments] if password is None else [("AUTH", password), arguments]
    data = b""
    for command in commands:
        encoded = [a if isinstance(a, bytes) else str(a).encode("utf-8") for a in command]
        data += b"*%d\r\n" % (len(encoded),) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in encoded)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(data)
        reader = connection.makefile("rb")
        replies = [_read(reader) for _ in commands]
    for reply in replies:
        if isinstance(reply, ReplyError):
            raise reply
    return replies[-1]


def _pairs(reply: List[Any]) -> Dict[str, str]:
    """
    A flat [key, value, ...] reply (SENTINEL MASTER) as a dict of str.
    """
    return {bytes(reply[i]).decode("utf-8"): bytes(reply[i + 1]).decode("utf-8") for i in range(0, len(reply) - 1, 2)}


def _quoted(text: str) -> str:
    """
    C{text} as a double-quoted string of a Redis configuration file.
    """
    return '"%s"' % (text.replace("\\", "\\\\").replace('"', '\\"'),)


def _waitUntil(what: str, predicate: Any, timeout: float) -> Any:
    """
    Poll C{predicate} every 50 ms until it returns something true (returned);
    after C{timeout} seconds raise L{AssertionError} naming C{what}.
    Exceptions of the predicate count as false.
    """
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while True:
        try:
            value = predicate()
        except (OSError, ReplyError) as e:
            last, value = e, None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %g s (last error: %s)" % (what, timeout, last))
        time.sleep(0.05)


class RedisNode:
    """
    One redis-server (the master or a replica) with append-only persistence
    in a directory of its own.

    @ivar port: its port, kept over restarts.
    """

    def __init__(self, binary: str, directory: str, password: Optional[str]) -> None:
        self.binary = binary
        self.port = freePort()
        self.directory = os.path.join(directory, "redis-%d" % (self.port,))
        os.mkdir(self.directory)
        self.password = password
        self.process: Optional[subprocess.Popen] = None

    def start(self, replicaOf: Optional[int] = None) -> None:
        """
        Start (or restart) it, as a replica of the node at port
        C{replicaOf} if given; wait until it answers.
        """
        argv = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", self.directory,
            "--logfile", os.path.join(self.directory, "log"),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--repl-diskless-sync", "yes",
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip
        if self.password is not None:
            argv += ["--requirepass", self.password, "--masterauth", self.password]
        if replicaOf is not None:
            argv += ["--replicaof", "127.0.0.1", str(replicaOf)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _waitUntil("redis-server on port %d starts" % (self.port,), lambda: self.call("PING") == b"PONG", 15)

    def call(self, *arguments: Any) -> Any:
        return call(self.port, *arguments, password=self.password)

    def role(self) -> bytes:
        """
        C{b"master"} or C{b"slave"}.
        """
        return bytes(self.call("ROLE")[0])

    def replicas(self) -> List[int]:
        """
        The ports of the replicas online with it (as a master: ROLE lists
        only those).
        """
        reply = self.call("ROLE")
        return [int(replica[1]) for replica in reply[2]] if reply[0] == b"master" else []

    def linked(self) -> bool:
        """
        Whether it is a replica in sync with its master.
        """
        reply = self.call("ROLE")
        return reply[0] == b"slave" and reply[3] == b"connected"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            assert self.process is not None
            os.kill(self.process.pid, sig)

    def kill(self) -> None:
        """
        kill -9 it, keeping its data; wait until it is gone.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)


class Sentinel:
    """
    One redis-sentinel process, its configuration file (which it rewrites)
    in the cluster's directory.
    """

    def __init__(
        self,
        binary: List[str],
        directory: str,
        masterPort: int,
        quorum: int,
        password: Optional[str],
        sentinelPassword: Optional[str],
    ) -> None:
        self.port = freePort()
        self.password = sentinelPassword
        self.directory = os.path.join(directory, "sentinel-%d" % (self.port,))
        os.mkdir(self.directory)
        self.config = os.path.join(self.directory, "sentinel.conf")
        lines = [
            "port %d" % (self.port,),
            "bind 127.0.0.1",
            "protected-mode no",
            "daemonize no",
            "dir %s" % (self.directory,),
            "logfile %s" % (os.path.join(self.directory, "log"),),
            "sentinel monitor %s 127.0.0.1 %d %d" % (SERVICE, masterPort, quorum),
            "sentinel down-after-milliseconds %s %d" % (SERVICE, DOWN_AFTER),
            "sentinel failover-timeout %s %d" % (SERVICE, FAILOVER_TIMEOUT),
            "sentinel parallel-syncs %s 1" % (SERVICE,),
        ]
        if password is not None:
            lines.append("sentinel auth-pass %s %s" % (SERVICE, _quoted(password)))
        if sentinelPassword is not None:
            quoted = _quoted(sentinelPassword)
            lines += ["requirepass %s" % (quoted,), "sentinel sentinel-pass %s" % (quoted,)]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.process = subprocess.Popen([*binary, self.config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _waitUntil("sentinel on port %d starts" % (self.port,), lambda: self.call("PING") == b"PONG", 15)

    def call(self, *arguments: Any) -> Any:
        return call(self.port, *arguments, password=self.password)

    def masterPort(self) -> int:
        """
        The port of the master this sentinel names now.
        """
        return int(self.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)[1])

    def state(self) -> Dict[str, str]:
        """
        What it knows of the master (SENTINEL MASTER).
        """
        return _pairs(self.call("SENTINEL", "MASTER", SERVICE))

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """
        kill -9 it; wait until it is gone.
        """
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class SentinelCluster:
    """
    A master, C{replicas} replicas of it and C{sentinels} sentinels
    watching it as L{SERVICE} (quorum: a majority).

    @ivar master: the node the sentinels name as master (as this helper
        last saw it: L{waitForFailover} updates it).
    @ivar replicas: the other nodes, dead ones included.
    """

    def __init__(
        self,
        replicas: int = 1,
        sentinels: int = 3,
        password: Optional[str] = None,
        sentinelPassword: Optional[str] = None,
    ) -> None:
        binary = requireProgram("redis-server")
        sentinelBinary = requireProgram("redis-sentinel") if shutil.which("redis-sentinel") else None
        self.directory = tempfile.mkdtemp(prefix="redis-sentinel-test-")
        self.password = password
        self.sentinelPassword = sentinelPassword
        self.sentinels: List[Sentinel] = []
        self.killedAt: Optional[float] = None
        self._ready = False
        try:
            self.master = RedisNode(binary, self.directory, password)
            self.master.start()
            self.replicas = [RedisNode(binary, self.directory, password) for _ in range(replicas)]
            for replica in self.replicas:
                replica.start(replicaOf=self.master.port)
            # Sentinels learn of the replicas from the master's INFO: wait
            # for them to be there first.
            _waitUntil("the replicas connect", lambda: len(self.master.replicas()) == replicas, 15)
            _waitUntil("the replicas sync", lambda: all(r.linked() for r in self.replicas), 15)
            command = [sentinelBinary] if sentinelBinary else [binary, "--sentinel"]
            for _ in range(sentinels):
                self.sentinels.append(
                    Sentinel(
                        command,
                        self.directory,
                        self.master.port,
                        sentinels // 2 + 1,
                        password,
                        sentinelPassword,
                    )
                )
        except BaseException:
            self.stop()
            raise

    def url(self, database: int = 0, **parameters: Any) -> str:
        """
        The C{redis+sentinel://} URL of this cluster's master, with
        C{parameters} as its query.
        """
        userinfo = "" if self.password is None else ":%s@" % (quote(self.password, safe=""),)
        hosts = ",".join("127.0.0.1:%d" % (s.port,) for s in self.sentinels)
        query = "&".join("%s=%s" % item for item in parameters.items())
        return "redis+sentinel://%s%s/%s/%d%s" % (userinfo, hosts, SERVICE, database, "?" + query if query else "")

    def command(self, *arguments: Any) -> Any:
        """
        Run one command on the master.
        """
        return self.master.call(*arguments)

    def waitUntilReady(self, timeout: float = 20.0) -> None:
        """
        Wait until every sentinel knows the others and every live replica,
        as a failover needs.
        """
        if self._ready:
            return
        others, live = len(self.sentinels) - 1, len([r for r in self.replicas if r.running()])

        def ready() -> bool:
            for sentinel in self.sentinels:
                if not sentinel.running():
                    continue
                state = sentinel.state()
                if int(state["num-other-sentinels"]) < others or int(state["num-slaves"]) < live:
                    return False
            return True

        _waitUntil("the sentinels know each other and the replicas", ready, timeout)
        self._ready = True

    def killMaster(self) -> None:
        """
        kill -9 the master, once the sentinels are ready to fail over
        (L{waitUntilReady}); C{killedAt} is when (C{time.monotonic()}).
        """
        self.waitUntilReady()
        self.killedAt = time.monotonic()
        self.master.kill()

    def waitForFailover(self, timeout: float = 30.0) -> float:
        """
        Wait until every live sentinel names a new master and that node is
        a master; make it L{master}.

        @return: the seconds from L{killMaster} to then.
        """
        old = self.master

        def promoted() -> Optional[RedisNode]:
            ports = {s.masterPort() for s in self.sentinels if s.running()}
            if len(ports) != 1:
                return None
            [port] = ports
            for node in self.replicas:
                if node.port == port and node.running() and node.role() == b"master":
                    return node
            return None

        node = _waitUntil("the sentinels promote a replica", promoted, timeout)
        self.replicas = [r for r in self.replicas if r is not node] + [old]
        self.master = node
        self._ready = False
        return time.monotonic() - (self.killedAt or time.monotonic())

    def restartAsReplica(self, node: RedisNode, timeout: float = 15.0) -> None:
        """
        Start a dead node again as a replica of the master (as its operator
        would), and wait until it is in sync.
        """
        node.start(replicaOf=self.master.port)
        _waitUntil("the restarted node syncs", lambda: node.linked() and node.port in self.master.replicas(), timeout)

    def logs(self) -> str:
        """
        What every process logged, for a failing test's message.
        """
        texts = []
        for root, _, files in os.walk(self.directory):
            for name in files:
                if name == "log":
                    with open(os.path.join(root, name), "rb") as f:
                        texts.append("== %s\n%s" % (root, f.read().decode("utf-8", "replace")))
        return "\n".join(texts)

    def stop(self) -> None:
        """
        Kill every process and delete the directory.
        """
        for sentinel in self.sentinels:
            sentinel.kill()
        for node in [getattr(self, "master", None), *getattr(self, "replicas", [])]:
            if node is not None:
                node.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
