"""
L{GearmanClient} against real job servers: ours and C gearmand, with workers
from the libgearman CLI or a scripted raw-packet worker.
"""

import os
import signal
import subprocess
import time
from typing import Any, Callable, Generator, List, Optional

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.trial.unittest import TestCase

from gearman_tw.client import HIGH, LOW, GearmanClient
from gearman_tw.errors import JobException, JobFailed, ServerUnavailable
from gearman_tw.protocol import REQ, RES, PacketParser, PacketType, encode
from tests.integration.servers import freePort, requireProgram, startGearmand, startOurs, stopProcess
from tests.mixins import TestCaseMixin


class ScriptedWorker(Protocol):
    """
    A raw-packet worker: for each job it grabs it calls C{script(job)}, which
    returns the packets to send (type, *args) for that job.
    """

    def __init__(self, function: bytes, script: Callable[[List[bytes]], list]) -> None:
        self.function = function
        self.script = script
        self.parser = PacketParser(magic=RES)
        self.seen: List[List[bytes]] = []
        self.grabs = 0

    def send(self, ptype: int, *args: bytes) -> None:
        assert self.transport is not None, "not connected"
        self.transport.write(encode(ptype, *args, magic=REQ))

    def connectionMade(self) -> None:
        self.send(PacketType.CAN_DO, self.function)
        self.grab()

    def grab(self) -> None:
        self.grabs += 1
        self.send(PacketType.GRAB_JOB_UNIQ)

    def dataReceived(self, data: bytes) -> None:
        for ptype, args, _ in self.parser.feed(data):
            if ptype == PacketType.JOB_ASSIGN_UNIQ:
                self.seen.append(args)
                for packet in self.script(args):
                    self.send(*packet)
                self.grab()
            elif ptype == PacketType.NO_JOB:
                self.send(PacketType.PRE_SLEEP)
            elif ptype == PacketType.NOOP:
                self.grab()


class ClientMixin(TestCaseMixin):
    """
    Client tests run against the server L{start} returns.
    """

    timeout = 60

    def start(self, *args: str):
        raise NotImplementedError()

    def setUp(self) -> None:
        self.server = self.start()

    def client(self, *servers, **kwargs) -> GearmanClient:
        addresses = servers or ("127.0.0.1:%d" % (self.server.port,),)
        client = GearmanClient(addresses, **kwargs)
        client.startService()
        self.addCleanup(client.stopService)
        return client

    def cliWorker(self, function: str, *command: str, port: Optional[int] = None):
        gearman = requireProgram("gearman")
        process = subprocess.Popen(
            [gearman, "-h", "127.0.0.1", "-p", str(port or self.server.port), "-w", "-f", function, "--", *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def stop() -> None:
            process.kill()
            process.wait(10)

        self.addCleanup(stop)
        return process

    @inlineCallbacks
    def scriptedWorker(self, function: bytes, script, port: Optional[int] = None):
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port or self.server.port)
        worker = yield connectProtocol(endpoint, ScriptedWorker(function, script))
        self.addCleanup(worker.transport.loseConnection)
        return worker

    @inlineCallbacks
    def test_foreground(self):
        """
        A foreground job run by the libgearman CLI worker returns its output.
        """
        self.cliWorker("rev", "rev")
        client = self.client()
        result = yield client.submitJob("rev", b"hello\n", timeout=30)
        self.assertEqual(result, b"olleh\n")

    @inlineCallbacks
    def test_events(self) -> Generator[Deferred[Any], Any, None]:
        """
        WORK_DATA, WORK_STATUS and WORK_WARNING reach the callbacks in order
        before the result.
        """
        yield self.scriptedWorker(
            b"stream",
            lambda job: [
                (PacketType.WORK_DATA, job[0], b"part1"),
                (PacketType.WORK_STATUS, job[0], b"1", b"2"),
                (PacketType.WORK_WARNING, job[0], b"careful"),
                (PacketType.WORK_DATA, job[0], b"part2"),
                (PacketType.WORK_COMPLETE, job[0], b"end:" + job[3]),
            ],
        )
        events: list = []
        client = self.client()
        task = client.submit(
            "stream",
            b"in",
            onData=lambda d: events.append(("data", d)),
            onWarning=lambda d: events.append(("warning", d)),
            onStatus=lambda n, d: events.append(("status", n, d)),
            timeout=30,
        )
        handle = yield task.whenCreated()
        self.assertTrue(handle.startswith(b"T:"))
        result = yield task.result
        self.assertEqual(result, b"end:in")
        self.assertEqual(
            events,
            [("data", b"part1"), ("status", 1, 2), ("warning", b"careful"), ("data", b"part2")],
        )

    @inlineCallbacks
    def test_exception(self):
        """
        A worker's WORK_EXCEPTION fails the result with L{JobException} and
        its text; with the exceptions option off it is a plain L{JobFailed}.
        """
        yield self.scriptedWorker(
            b"bad", lambda job: [(PacketType.WORK_EXCEPTION, job[0], b"it broke")]
        )
        client = self.client()
        failure = yield self.assertFailure(client.submitJob("bad", b"1", timeout=30), JobException)
        self.assertEqual(failure.data, b"it broke")
        plain = self.client(exceptions=False)
        yield self.assertFailure(plain.submitJob("bad", b"2", timeout=30), JobFailed)

    @inlineCallbacks
    def test_fail(self):
        """
        A CLI worker whose command fails makes the job fail.
        """
        self.cliWorker("false", "false")
        client = self.client()
        yield self.assertFailure(client.submitJob("false", b"x", timeout=30), JobFailed)

    @inlineCallbacks
    def test_backgroundAndStatus(self):
        """
        A background job's result is its handle; GET_STATUS and
        GET_STATUS_UNIQUE then know it as queued.
        """
        client = self.client()
        handle = yield client.submitJob("later", b"x", unique="bg-1", background=True)
        status = yield client.getStatus(handle)
        self.assertEqual(status, (True, False, 0, 0))
        unique = yield client.getStatusUnique("later", "bg-1")
        self.assertEqual(unique, (True, False, 0, 0, 0))
        unknown = yield client.getStatus(b"T:999")
        self.assertEqual(unknown, (False, False, 0, 0))

    @inlineCallbacks
    def test_priorities(self) -> Generator[Deferred[Any], Any, None]:
        """
        Queued background jobs are handed out HIGH, NORMAL, then LOW.
        """
        client = self.client()
        yield client.submitJob("prio", b"low", priority=LOW, background=True)
        yield client.submitJob("prio", b"normal", background=True)
        yield client.submitJob("prio", b"high", priority=HIGH, background=True)
        done: Deferred = Deferred()
        seen: List[bytes] = []

        def script(job):
            seen.append(job[3])
            if len(seen) == 3:
                reactor.callLater(0, done.callback, None)
            return [(PacketType.WORK_COMPLETE, job[0], b"")]

        yield self.scriptedWorker(b"prio", script)
        yield done
        self.assertEqual(seen, [b"high", b"normal", b"low"])

    @inlineCallbacks
    def test_coalescing(self) -> Generator[Deferred[Any], Any, None]:
        """
        Two clients submitting the same unique key get one run and both get
        its result.
        """
        release: Deferred = Deferred()
        held: List[bytes] = []

        def script(job):
            held.append(job[0])
            release.callback(None)
            return []

        worker = yield self.scriptedWorker(b"once", script)
        first = self.client().submit("once", b"a", unique="same", timeout=30)
        yield release
        second = self.client().submit("once", b"b", unique="same", timeout=30)
        handle = yield second.whenCreated()
        self.assertEqual(handle, held[0])
        worker.send(PacketType.WORK_COMPLETE, handle, b"shared")
        results = yield gatherResults([first.result, second.result])
        self.assertEqual(results, [b"shared", b"shared"])
        self.assertEqual(len(worker.seen), 1)

    @inlineCallbacks
    def test_epochInPast(self) -> Generator[Deferred[Any], Any, None]:
        """
        An epoch job due in the past runs at once.
        """
        client = self.client()
        done: Deferred = Deferred()

        def script(job: List[bytes]) -> list:
            done.callback(job[3])
            return [(PacketType.WORK_COMPLETE, job[0], b"")]

        yield self.scriptedWorker(b"epoch", script)
        handle = yield client.submitJob("epoch", b"due", when=int(time.time()) - 10)
        self.assertTrue(handle.startswith(b"T:"))
        self.assertEqual((yield done), b"due")

    @inlineCallbacks
    def test_batch(self):
        """
        A pipelined batch of 200 jobs returns every result in order.
        """
        yield self.scriptedWorker(
            b"double", lambda job: [(PacketType.WORK_COMPLETE, job[0], job[3] * 2)]
        )
        client = self.client()
        results = yield client.submitBatch([("double", b"%d" % i) for i in range(200)], timeout=60)
        self.assertEqual(results, [b"%d" % i * 2 for i in range(200)])

    @inlineCallbacks
    def test_echo(self):
        """
        echo() round-trips.
        """
        client = self.client()
        yield client.whenConnected()
        self.assertEqual((yield client.echo(b"ping")), b"ping")


    # Faults

    def sleep(self, seconds: float) -> Deferred:
        d: Deferred = Deferred()
        reactor.callLater(seconds, d.callback, None)
        return d

    @inlineCallbacks
    def test_hungServer(self):
        """
        Of two servers, one paused (SIGSTOP) mid-run: its connection is
        found hung by the heartbeat and dropped, its foreground jobs go to
        the other server, and every job completes there.
        """
        other = self.start()
        for server in (self.server, other):
            yield self.scriptedWorker(
                b"echo", lambda job: [(PacketType.WORK_COMPLETE, job[0], job[3])], port=server.port
            )
        client = self.client(
            "127.0.0.1:%d" % (self.server.port,),
            "127.0.0.1:%d" % (other.port,),
            heartbeat=0.3,
            heartbeatTimeout=0.5,
            connectTimeout=20,
        )
        for _ in range(100):
            if len(client.connectedServers()) == 2:
                break
            yield self.sleep(0.05)
        os.kill(self.server.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, self.server.pid, signal.SIGCONT)
        tasks = [client.submit("echo", b"job%d" % i, timeout=30) for i in range(10)]
        results = yield gatherResults([t.result for t in tasks])
        self.assertEqual(results, [b"job%d" % i for i in range(10)])
        survivor = "127.0.0.1:%d" % (other.port,)
        self.assertEqual({t.server for t in tasks}, {survivor})
        self.assertTrue(any(t.attempts == 2 for t in tasks))
        self.assertEqual(client.connectedServers(), [survivor])

    @inlineCallbacks
    def test_refusedNamesServer(self):
        """
        A submission with no server reachable fails after connectTimeout
        with an error naming the server and the refusal.
        """
        port = freePort()
        client = self.client("127.0.0.1:%d" % (port,), connectTimeout=1)
        task = client.submit("f", b"x")
        try:
            yield task.result
        except ServerUnavailable as e:
            self.assertEqual(
                str(e),
                "job (f) not submitted: no job server is connected (tried 127.0.0.1:%d: connection refused)" % (port,),
            )
        else:
            self.fail("no ServerUnavailable")
        self.assertIsNone(task.handle)

    @inlineCallbacks
    def test_callbackRaises(self):
        """
        A callback that raises for every WORK_DATA and WORK_STATUS leaves
        the connection up and the job run once.
        """
        worker = yield self.scriptedWorker(
            b"stream",
            lambda job: [
                (PacketType.WORK_DATA, job[0], b"d"),
                (PacketType.WORK_STATUS, job[0], b"1", b"2"),
                (PacketType.WORK_COMPLETE, job[0], b"done"),
            ],
        )
        client = self.client()

        def broken(*args):
            raise ValueError("user bug")

        results = yield gatherResults(
            [client.submitJob("stream", b"%d" % i, onData=broken, onStatus=broken, timeout=30) for i in range(5)]
        )
        self.assertEqual(results, [b"done"] * 5)
        self.assertEqual(len(worker.seen), 5)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 10)
        self.assertEqual(client._servers[0].reconnector.failures, 0)


class OursClientTests(ClientMixin, TestCase):
    def start(self, *args):
        return startOurs(self, *args)


class GearmandClientTests(ClientMixin, TestCase):
    def start(self, *args):
        return startGearmand(self, *args)


class FailoverTests(TestCase):
    """
    A client over two servers survives losing one of them.
    """

    timeout = 90

    @inlineCallbacks
    def test_killOneServer(self) -> Generator[Deferred[Any], Any, None]:
        """
        Two servers, each with a CLI worker; killing one mid-run, every job
        still completes (on the other).
        """
        servers = [startOurs(self), startGearmand(self)]
        gearman = requireProgram("gearman")
        workers = []
        for server in servers:
            process = subprocess.Popen(
                [gearman, "-h", "127.0.0.1", "-p", str(server.port)]
                + ["-w", "-f", "slow", "--", "sh", "-c", "sleep 0.05; cat"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            workers.append(process)
            self.addCleanup(stopProcess, process)
        client = GearmanClient(
            ["127.0.0.1:%d" % s.port for s in servers], connectTimeout=30
        )
        client.startService()
        self.addCleanup(client.stopService)
        yield client.whenConnected()
        while len(client.connectedServers()) < 2:
            d: Deferred = Deferred()
            reactor.callLater(0.05, d.callback, None)
            yield d
        tasks = [client.submit("slow", b"job%d" % i, timeout=60) for i in range(40)]
        d = Deferred()
        reactor.callLater(0.3, d.callback, None)
        yield d
        pending = [t for t in tasks if not t.done]
        servers[0].stop(signal.SIGKILL)
        results = yield gatherResults([t.result for t in tasks])
        self.assertEqual(results, [b"job%d" % i for i in range(40)])
        survivor = "127.0.0.1:%d" % (servers[1].port,)
        self.assertEqual({t.server for t in pending}, {survivor})
        self.assertTrue(any(t.attempts == 2 for t in pending))
