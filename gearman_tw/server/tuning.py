# -*- test-case-name: tests.test_tuning -*-
"""
What C{twistd gearman} changes about its process: signal handlers, the
garbage collector's settings, the C allocator's, the interpreter's switch
interval, and the exit status after a failed start.

L{GearmanService} and the persistent queues change none of these, so an
application that embeds them keeps its own settings; C{twistd gearman}
(L{gearman_tw.tap.makeService}) adds a L{ProcessTuning} to its service tree.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple

from twisted.application.service import Service
from twisted.internet.defer import Deferred

from gearman_tw.server.allocator import keepFreedMemory

if TYPE_CHECKING:
    from gearman_tw.server.service import GearmanService


def exitWithErrorAtExit(status: int = 1) -> None:
    """
    Make the process exit with C{status} when it ends: C{twistd} stops the
    reactor, removes its pid file and returns normally, so a failure after
    start-up would otherwise exit with 0.  This runs at interpreter exit,
    after twistd's own clean-up (threads have been joined by then); it
    flushes standard output and error and skips the rest of interpreter
    finalisation.
    """

    def exitNow() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)

    atexit.register(exitNow)


class ProcessTuning(Service):
    """
    Applies C{twistd gearman}'s process-wide settings when started, and
    restores those it can once the job server has stopped.

    Add it to the service tree before the L{GearmanService} it serves, so
    that it starts first (the switch interval is short before the queue
    opens) and stops last (signals keep their meaning, and the switch
    interval stays short, while the server drains).

    @ivar server: the job server the signals stop.
    """

    def __init__(
        self,
        server: GearmanService,
        reactor: Any,
        gcThreshold: int = 0,
        keepFreedMemory: int = 0,
        switchInterval: Optional[float] = None,
        onHangup: Sequence[Callable[[], object]] = (),
    ) -> None:
        """
        @param server: SIGUSR1 stops it gracefully (L{GearmanService.shutdown}),
            as gearmand does.
        @param reactor: the reactor signal handlers hand their work to.
        @param gcThreshold: let this many young objects pile up between
            garbage collections (0: leave Python's setting), and freeze what
            start-up made.  Python's default of 700 makes a server holding
            many queued jobs spend much of its time collecting.
        @param keepFreedMemory: let the C allocator keep this many bytes of
            freed memory for reuse (see L{gearman_tw.server.allocator}); 0
            leaves its settings.  This one is not restored.
        @param switchInterval: keep the interpreter's switch interval
            (C{sys.setswitchinterval}) at most this many seconds; C{None}
            leaves it alone.  An SQLite queue's database thread needs the GIL
            back after every SQLite call; with the default 5 ms it waits that
            long behind the reactor's Python code each time, and commits (so
            JOB_CREATED replies) take several times longer than their work.
        @param onHangup: called (in the reactor thread) on each SIGHUP, after
            the log file is reopened: reloading the access policy, say.
        """
        self.server = server
        self.reactor = reactor
        self.gcThreshold = gcThreshold
        self.keepFreedMemory = keepFreedMemory
        self.switchInterval = switchInterval
        self.onHangup = list(onHangup)
        self._rotate: Optional[Callable[[int, Any], object]] = None
        self._savedSignals: List[Tuple[int, Any]] = []
        self._savedThreshold: Optional[Tuple[int, int, int]] = None
        self._savedSwitchInterval: Optional[float] = None

    def startService(self) -> None:
        """
        Install the signal handlers and apply the settings.
        """
        super().startService()
        if hasattr(signal, "SIGUSR1"):
            # gearmand's SIGUSR1 is a graceful stop; twistd's (installed with
            # --logfile) rotates the log, so that moves to SIGHUP, which
            # gearmand uses to reopen its log.
            rotate = signal.getsignal(signal.SIGUSR1)
            self._rotate = rotate if callable(rotate) else None
            for number, handler in ((signal.SIGHUP, self._onHangup), (signal.SIGUSR1, self._onSignal)):
                self._savedSignals.append((number, signal.getsignal(number)))
                signal.signal(number, handler)
        if self.gcThreshold and hasattr(gc, "freeze"):
            # CPython only: PyPy's collector is generational in other ways.
            self._savedThreshold = gc.get_threshold()
            _, second, third = self._savedThreshold
            gc.set_threshold(self.gcThreshold, second, third)
            gc.freeze()
        if self.keepFreedMemory:
            keepFreedMemory(self.keepFreedMemory)
        if self.switchInterval is not None:
            self._savedSwitchInterval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._savedSwitchInterval, self.switchInterval))

    def stopService(self) -> Deferred[None]:
        """
        Once the server has stopped, put back the signal handlers, the
        garbage collector's settings and the switch interval (the C
        allocator's settings cannot be read, so they stay).
        """
        super().stopService()
        d = self.server.whenStopped()
        d.addCallback(lambda _: self._restore())
        return d

    def _restore(self) -> None:
        for number, handler in reversed(self._savedSignals):
            if handler is not None:
                signal.signal(number, handler)
        self._savedSignals = []
        self._rotate = None
        if self._savedThreshold is not None:
            gc.unfreeze()
            gc.set_threshold(*self._savedThreshold)
            self._savedThreshold = None
        if self._savedSwitchInterval is not None:
            sys.setswitchinterval(self._savedSwitchInterval)
            self._savedSwitchInterval = None

    def _onHangup(self, signum: int, frame: Any) -> None:
        if self._rotate is not None:
            self._rotate(signum, frame)
        callFromThread = getattr(self.reactor, "callFromThread", None)
        for hook in self.onHangup:
            if callFromThread is not None:
                callFromThread(hook)
            else:
                hook()

    def _onSignal(self, signum: int, frame: Any) -> None:
        callFromThread = getattr(self.reactor, "callFromThread", None)
        if callFromThread is not None:
            callFromThread(self.server.shutdown, True)
