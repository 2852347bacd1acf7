# -*- test-case-name: tests.integration.test_cli -*-
"""
C{gearman-tw worker}: serve functions by running a command for each job,
as libgearman's C{gearman -w} does, or by printing each job's data when no
command is given.
"""

from __future__ import annotations

import os
import shlex
import shutil
from typing import Any, BinaryIO, Callable, List, Optional, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from gearman_tw.cli.options import Invocation, UsageError
from gearman_tw.errors import JobFailed

#: Seconds a command killed for its time limit has to end on SIGTERM
#: before it gets SIGKILL.
KILL_GRACE = 5.0


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


class CommandRun(ProcessProtocol):
    """
    One run of the command for one job: the job's data on its standard
    input, its standard output the result (or, with C{lines}, each line
    sent to the clients as WORK_DATA as it comes), its standard error
    passed on to ours.  A non-zero exit, a signal or the time limit fails
    the job, after sending what it printed (as C{gearman -w} does), and
    says so in the log.

    @ivar finished: fires with the result, or fails with L{JobFailed}.
    """

    log = Logger()

    def __init__(
        self,
        job: Any,
        argv: Sequence[str],
        stderr: BinaryIO,
        reactor: Any,
        lines: Optional[bool] = None,
        limit: Optional[float] = None,
    ) -> None:
        """
        @param lines: L{None} to collect the output; L{True} to send it line
            by line without the newlines, L{False} with them.
        @param limit: seconds before the command is killed.
        """
        self.job = job
        self.argv = list(argv)
        self.stderr = stderr
        self.reactor = reactor
        self.lines = lines
        self.limit = limit
        self.output: List[bytes] = []
        self.pending = b""
        self.timedOut = False
        self.timer: Optional[IDelayedCall] = None
        self.finished: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.job.data)  # type: ignore[union-attr]
        self.transport.closeStdin()  # type: ignore[union-attr]
        if self.limit is not None:
            self.timer = self.reactor.callLater(self.limit, self._kill, "TERM")

    def _kill(self, signal: str) -> None:
        self.timedOut = True
        try:
            self.transport.signalProcess(signal)  # type: ignore[union-attr]
        except Exception:
            # It has ended meanwhile.
            return
        if signal == "TERM":
            self.timer = self.reactor.callLater(KILL_GRACE, self._kill, "KILL")

    def outReceived(self, data: bytes) -> None:
        if self.lines is None:
            self.output.append(data)
            return
        self.pending += data
        while b"\n" in self.pending:
            line, _, self.pending = self.pending.partition(b"\n")
            self.job.sendData(line if self.lines else line + b"\n")

    def errReceived(self, data: bytes) -> None:
        self.stderr.write(data)
        self.stderr.flush()

    def processEnded(self, reason: Failure) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        if self.pending:
            self.job.sendData(self.pending)
            self.pending = b""
        output = b"".join(self.output)
        if reason.check(ProcessDone) and not self.timedOut:
            self.finished.callback(output)
            return
        if output:
            self.job.sendData(output)
        if self.timedOut:
            why = "was killed after its time limit of %g s" % (self.limit or 0,)
        elif isinstance(reason.value, ProcessTerminated) and reason.value.signal is not None:
            why = "was killed by signal %d" % (reason.value.signal,)
        elif isinstance(reason.value, ProcessTerminated):
            why = "exited with status %s" % (reason.value.exitCode,)
        else:
            why = "ended: %s" % (reason.getErrorMessage(),)
        self.log.warn(
            "Job {handle} ({function}) failed: {command} {why}",
            handle=_text(self.job.handle),
            function=_text(self.job.function),
            command=_shorten(shlex.join(self.argv)),
            why=why,
        )
        self.finished.errback(JobFailed(self.job.handle, self.job.function))


def commandFunction(
    reactor: Any,
    argv: Sequence[str],
    stderr: Optional[BinaryIO] = None,
    lines: Optional[bool] = None,
    limit: Optional[float] = None,
) -> Callable[[Any], "Deferred[Any]"]:
    """
    A worker function that runs C{argv} for each job (see L{CommandRun}).
    The command's environment has C{GEARMAN_FUNCTION}, C{GEARMAN_HANDLE}
    and C{GEARMAN_UNIQUE} set to the job's.
    """
    import sys

    errors = stderr if stderr is not None else sys.stderr.buffer

    # The Deferred fires with bytes; Deferred[bytes] is not a
    # Deferred[bytes | str | None], which GearmanWorker.register asks for.
    def run(job: Any) -> "Deferred[Any]":
        command = CommandRun(job, argv, errors, reactor, lines, limit)
        env = dict(
            os.environ,
            GEARMAN_FUNCTION=os.fsdecode(job.function),
            GEARMAN_HANDLE=os.fsdecode(job.handle),
            GEARMAN_UNIQUE=os.fsdecode(job.unique),
        )
        reactor.spawnProcess(command, argv[0], list(argv), env=env)
        return command.finished

    return run


def printFunction(stdout: BinaryIO) -> Callable[[Any], bytes]:
    """
    A worker function that writes each job's data to C{stdout} and
    returns an empty result (C{gearman -w} without a command).
    """

    def run(job: Any) -> bytes:
        stdout.write(job.data)
        stdout.flush()
        return b""

    return run


def _findCommand(name: str) -> None:
    """
    @raise UsageError: C{name} is not a command that can be run.
    """
    if os.sep in name:
        if not (os.path.isfile(name) and os.access(name, os.X_OK)):
            raise UsageError("worker: cannot run %s: no such executable file" % (name,))
    elif shutil.which(name) is None:
        raise UsageError("worker: command not found: %s" % (name,))


def worker(reactor: Any, invocation: Invocation, stdout: BinaryIO, stderr: BinaryIO) -> "Deferred[None]":
    """
    Run C{gearman-tw worker} until the process is stopped, or until C{-c}
    jobs have run.
    """
    from gearman_tw.worker import GearmanWorker

    options = invocation.options
    argv = options.args
    if argv:
        _findCommand(argv[0])
        lines = None
        if options.lines or options.lines_stripped:
            lines = bool(options.lines_stripped)
        limit = options.timeout / 1000.0 if options.timeout else None
        function = commandFunction(reactor, argv, stderr, lines, limit)
    else:
        function = printFunction(stdout)  # type: ignore[assignment]
    service = GearmanWorker(
        invocation.servers, concurrency=options.concurrency, clientId=options.client_id, reactor=reactor
    )
    done: Deferred[None] = Deferred()
    count = options.count
    started = [0]

    def stop() -> None:
        reactor.removeSystemEventTrigger(trigger)
        service.stopService().addCallback(lambda _: None if done.called else done.callback(None))

    def counted(job: Any) -> Any:
        started[0] += 1
        if started[0] == count:
            # No more jobs: stop asking once this one has started.
            reactor.callLater(0, stop)
        return function(job)

    for name in options.functions:
        service.register(os.fsencode(name), counted if count else function)
    service.startService()
    trigger = reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    return done
