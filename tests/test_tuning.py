"""
Tests for L{gearman_tw.server.tuning}: C{twistd gearman}'s process-wide
settings, and that the server and the SQLite queue change none of them.
"""

import gc
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any, Generator, List

from twisted.internet import reactor as globalReactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gearman_tw.protocol import PacketType, encode
from gearman_tw.queues.sqlite import SQLiteQueue
from gearman_tw.server import tuning
from gearman_tw.server.factory import GearmanServerFactory
from gearman_tw.server.jobs import JobServer
from gearman_tw.server.service import GearmanService
from gearman_tw.server.tuning import ProcessTuning


class ProcessTuningTests(SynchronousTestCase):
    """
    Tests for L{ProcessTuning}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.factory = GearmanServerFactory(JobServer(self.reactor, handlePrefix=b"H"))
        self.server = GearmanService(self.factory, [TCP4ServerEndpoint(self.reactor, 4730)], self.reactor)
        for number in (signal.SIGUSR1, signal.SIGHUP):
            self.addCleanup(signal.signal, number, signal.getsignal(number))
        threshold = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *threshold)
        self.addCleanup(gc.unfreeze)
        self.addCleanup(sys.setswitchinterval, sys.getswitchinterval())

    def start(self, **kwargs: Any) -> ProcessTuning:
        """
        Start a tuning for C{self.server} and then the server, as
        C{twistd gearman}'s service tree does.
        """
        tuned = ProcessTuning(self.server, self.reactor, **kwargs)
        tuned.startService()
        self.server.startService()
        return tuned

    def stop(self, tuned: ProcessTuning) -> None:
        """
        Stop the server and then the tuning, as C{twistd gearman}'s service
        tree does, and let them finish.
        """
        stopped = self.server.stopService()
        restored = tuned.stopService()
        self.successResultOf(stopped)
        self.successResultOf(restored)

    def test_signals(self) -> None:
        """
        SIGUSR1 stops the server gracefully; SIGHUP does whatever SIGUSR1 did
        before (twistd's log rotation), then calls the C{onHangup} hooks in
        the reactor thread.
        """
        rotated: List[int] = []

        def rotate(signum: int, frame: Any) -> None:
            rotated.append(signum)

        signal.signal(signal.SIGUSR1, rotate)
        hooks: List[str] = []
        called: List[str] = []

        def callFromThread(f: Any, *args: Any) -> None:
            called.append(f.__name__)
            self.reactor.callLater(0, f, *args)

        self.reactor.callFromThread = callFromThread  # type: ignore[attr-defined]
        tuned = self.start(onHangup=[lambda: hooks.append("reload")])
        self.assertEqual(signal.getsignal(signal.SIGUSR1), tuned._onSignal)
        onHangup = signal.getsignal(signal.SIGHUP)
        assert callable(onHangup)
        onHangup(signal.SIGHUP, None)
        self.assertEqual(rotated, [signal.SIGHUP])
        self.assertEqual(hooks, [])
        self.reactor.advance(0)
        self.assertEqual(hooks, ["reload"])
        self.reactor.running = True
        onSignal = signal.getsignal(signal.SIGUSR1)
        assert callable(onSignal)
        onSignal(signal.SIGUSR1, None)
        self.reactor.advance(0)
        self.assertEqual(called, ["<lambda>", "shutdown"])
        self.assertEqual(self.server.ports, [])
        self.reactor.advance(0.1)
        self.assertTrue(self.reactor.hasStopped)

    def test_signalsRestored(self) -> None:
        """
        The signal handlers stay while the server drains, and are put back
        once it has stopped.
        """
        before = signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGUSR1)
        tuned = self.start()
        worker = self.factory.buildProtocol(None)
        assert worker is not None
        worker.makeConnection(StringTransport())
        worker.dataReceived(encode(PacketType.CAN_DO, b"f", magic=b"\0REQ"))
        worker.dataReceived(encode(PacketType.SUBMIT_JOB_BG, b"f", b"", b"x", magic=b"\0REQ"))
        worker.dataReceived(encode(PacketType.GRAB_JOB, magic=b"\0REQ"))
        stopped = self.server.stopService()
        restored = tuned.stopService()
        self.assertNoResult(restored)
        self.assertEqual(signal.getsignal(signal.SIGUSR1), tuned._onSignal)
        self.reactor.advance(self.server.drainTimeout)
        worker.connectionLost(Failure(ConnectionDone()))
        self.successResultOf(stopped)
        self.successResultOf(restored)
        self.assertEqual((signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGUSR1)), before)

    def test_gcThreshold(self) -> None:
        """
        With a gcThreshold, starting sets the young-generation threshold and
        freezes start-up objects; stopping puts the threshold back.  Without
        one nothing changes.
        """
        before = gc.get_threshold()
        tuned = self.start()
        self.assertEqual(gc.get_threshold(), before)
        self.stop(tuned)
        tuned = self.start(gcThreshold=12345)
        self.assertEqual(gc.get_threshold(), (12345,) + before[1:])
        self.assertGreater(gc.get_freeze_count(), 0)
        self.stop(tuned)
        self.assertEqual(gc.get_threshold(), before)
        self.assertEqual(gc.get_freeze_count(), 0)

    def test_keepFreedMemory(self) -> None:
        """
        With keepFreedMemory, starting passes it to the allocator settings;
        without, the allocator is left alone.
        """
        calls: List[int] = []
        self.patch(tuning, "keepFreedMemory", calls.append)
        self.stop(self.start())
        self.assertEqual(calls, [])
        self.stop(self.start(keepFreedMemory=1 << 20))
        self.assertEqual(calls, [1 << 20])

    def test_switchInterval(self) -> None:
        """
        With a switchInterval, the interpreter's switch interval is at most
        that while the server runs, and is put back once it has stopped;
        C{None} leaves it alone.
        """
        sys.setswitchinterval(0.005)
        tuned = self.start(switchInterval=0.0001)
        self.assertAlmostEqual(sys.getswitchinterval(), 0.0001)
        self.stop(tuned)
        self.assertAlmostEqual(sys.getswitchinterval(), 0.005)
        tuned = self.start(switchInterval=0.01)
        self.assertAlmostEqual(sys.getswitchinterval(), 0.005)
        self.stop(tuned)
        tuned = self.start()
        self.assertAlmostEqual(sys.getswitchinterval(), 0.005)
        self.stop(tuned)


class ExitStatusTests(SynchronousTestCase):
    """
    Tests for L{tuning.exitWithErrorAtExit}.
    """

    def test_exitStatus(self) -> None:
        """
        The process ends normally (its output flushed) but with the status
        given.
        """
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from gearman_tw.server.tuning import exitWithErrorAtExit; "
                "exitWithErrorAtExit(3); print('finished', end='')",
            ],
            stdout=subprocess.PIPE,
            timeout=60,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        self.assertEqual((result.returncode, result.stdout), (3, b"finished"))


class SQLiteQueueProcessStateTests(TestCase):
    """
    L{SQLiteQueue} changes nothing process-wide.
    """

    @inlineCallbacks
    def test_switchIntervalUntouched(self) -> Generator[Deferred[Any], Any, None]:
        """
        Opening and closing the queue leaves the switch interval alone; the
        queue only says which one it works best with.
        """
        calls: List[float] = []
        self.patch(sys, "setswitchinterval", calls.append)
        path = os.path.join(tempfile.mkdtemp(), "queue.db")
        queue = SQLiteQueue(path, reactor=globalReactor, switchInterval=0.0001)
        self.assertEqual(queue.switchInterval, 0.0001)
        yield queue.open()
        yield queue.close()
        self.assertEqual(calls, [])
