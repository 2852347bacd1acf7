# -*- test-case-name: tests.test_cli,tests.integration.test_cli -*-
"""
C{gearman-tw}: submit jobs, run a command as a worker, and query job
servers, with the flags of libgearman's C{gearman} and C{gearadmin}::

    echo hello | gearman-tw submit reverse
    gearman-tw submit -b -I -f resize photo.jpg
    gearman-tw worker -f reverse -- rev
    gearman-tw -h gearman-1 -h gearman-2 status
    gearman-tw top

The modules: L{options} reads the command line, L{submit}, L{worker},
L{admin} and L{top} run the commands, L{messages} says what went wrong.
"""

from __future__ import annotations

import os
import sys
from typing import Any, BinaryIO, Optional, TextIO

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure

from gearman_tw.cli.messages import StateLog, explain, sentence
from gearman_tw.cli.options import HelpRequested, Invocation, UsageError, parse
from gearman_tw.cli.worker import commandFunction

__all__ = ["main", "run", "commandFunction"]


def _binary(stream: Any) -> BinaryIO:
    return getattr(stream, "buffer", stream)  # type: ignore[no-any-return]


def _logLevel(invocation: Invocation) -> Optional[LogLevel]:
    """
    How much of the library's log a command prints: a worker says when
    its servers come and go; the others only with C{-v}.
    """
    if invocation.command == "top":
        return None
    if invocation.options.verbose:
        return LogLevel.info
    if invocation.command == "worker":
        return LogLevel.info
    return None


def _pidfile(reactor: Any, path: Optional[str]) -> None:
    if not path:
        return
    with open(path, "w") as f:
        f.write("%d\n" % (os.getpid(),))

    def remove() -> None:
        try:
            os.remove(path)
        except OSError:
            pass

    reactor.addSystemEventTrigger("after", "shutdown", remove)


def _run(reactor: Any, invocation: Invocation, stdin: BinaryIO, stdout: BinaryIO, out: TextIO, err: TextIO) -> Any:
    command = invocation.command
    if command == "submit":
        from gearman_tw.cli.submit import submit

        _pidfile(reactor, invocation.options.pidfile)
        return submit(reactor, invocation, stdin, stdout, _binary(err))
    if command == "worker":
        from gearman_tw.cli.worker import worker

        _pidfile(reactor, invocation.options.pidfile)
        return worker(reactor, invocation, stdout, _binary(err))
    if command == "top":
        from gearman_tw.cli.top import top

        return top(reactor, invocation)
    from gearman_tw.cli.admin import admin

    return admin(reactor, invocation, out, err)


def main(
    reactor: Any,
    *argv: str,
    stdin: Optional[BinaryIO] = None,
    stdout: Optional[BinaryIO] = None,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
) -> "Deferred[Any]":
    """
    Run C{gearman-tw} with C{argv}; for L{twisted.internet.task.react}.

    Fails with L{SystemExit}: status 2 for a wrong command line, 1 for
    anything that went wrong after, each said in one line on C{err}.
    """
    binaryIn = stdin if stdin is not None else sys.stdin.buffer
    binaryOut = stdout if stdout is not None else sys.stdout.buffer
    textOut = out if out is not None else sys.stdout
    textErr = err if err is not None else sys.stderr
    try:
        invocation = parse(argv)
    except HelpRequested as e:
        textOut.write(e.text)
        return succeed(None)
    except UsageError as e:
        textErr.write("gearman-tw: %s\n" % (e,))
        return fail(SystemExit(2))
    for note in invocation.notes:
        textErr.write("gearman-tw: %s\n" % (note,))
    log = StateLog(textErr, _logLevel(invocation))
    globalLogPublisher.addObserver(log)

    def explained(failure: Failure) -> None:
        error = failure.value
        if isinstance(error, SystemExit):
            failure.raiseException()
        if isinstance(error, UsageError):
            textErr.write("gearman-tw: %s\n" % (error,))
            raise SystemExit(2)
        if not isinstance(error, Exception):
            failure.raiseException()
        textErr.write("gearman-tw: %s\n" % (sentence(explain(error)),))
        raise SystemExit(1)

    def unobserve(result: object) -> object:
        globalLogPublisher.removeObserver(log)
        return result

    # maybeDeferred: an argument error raised at once is explained too.
    d = maybeDeferred(_run, reactor, invocation, binaryIn, binaryOut, textOut, textErr)
    return d.addErrback(explained).addBoth(unobserve)


def run() -> None:
    """
    The console entry point.
    """
    from twisted.internet.task import react

    react(main, sys.argv[1:])
