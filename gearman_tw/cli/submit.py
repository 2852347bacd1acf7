# -*- test-case-name: tests.integration.test_cli -*-
"""
C{gearman-tw submit}: jobs made of the arguments, of standard input, or
of each of its lines, submitted to one function or to each of several,
their results printed in order as they come.
"""

from __future__ import annotations

import os
import threading
from typing import Any, BinaryIO, Callable, Generator, Iterator, Optional

from twisted.internet.defer import Deferred, TimeoutError, inlineCallbacks, succeed
from twisted.python.failure import Failure

from gearman_tw.cli.messages import CannotReach, cannotReach, explain
from gearman_tw.cli.options import Invocation
from gearman_tw.errors import ConnectionLost, GearmanError, ServerUnavailable

# What the client waits for a server when -t does not say.
CONNECT_TIMEOUT = 10.0


def inThread(reactor: Any, read: Callable[[], bytes]) -> "Deferred[bytes]":
    """
    Call C{read} in a daemon thread of its own: a read from a terminal
    that never returns does not keep the process from exiting, as it
    would in the reactor's thread pool.
    """
    d: Deferred[bytes] = Deferred()

    def work() -> None:
        try:
            result = read()
        except BaseException:
            reactor.callFromThread(d.errback, Failure())
        else:
            reactor.callFromThread(d.callback, result)

    threading.Thread(target=work, name="gearman-tw-stdin", daemon=True).start()
    return d


def jobData(reactor: Any, options: Any, stdin: BinaryIO) -> Callable[[], "Deferred[Optional[bytes]]"]:
    """
    What gives each job's data in turn, then L{None}: the arguments (as
    the bytes they were given as), one empty job (C{-s}), each line of
    standard input (C{-n}, C{-N} without its newline) or all of it.
    """
    items: Iterator[bytes]
    if options.args:
        items = iter([os.fsencode(arg) for arg in options.args])
    elif options.no_input:
        items = iter([b""])
    elif options.lines or options.lines_stripped:
        strip = options.lines_stripped

        def line(data: bytes) -> Optional[bytes]:
            if not data:
                return None
            return data[:-1] if strip and data.endswith(b"\n") else data

        return lambda: inThread(reactor, stdin.readline).addCallback(line)
    else:
        items = iter([stdin.read()])
    return lambda: succeed(next(items, None))


def connected(reactor: Any, client: Any, seconds: float) -> "Deferred[None]":
    """
    Wait until a server of C{client} is ready; fail with L{CannotReach} as
    soon as every server has failed (a refused connection fails at once),
    or after C{seconds}.
    """
    d = client.whenConnected(failFast=True)
    d.addTimeout(seconds, reactor)

    def why(failure: Failure) -> None:
        if failure.check(ServerUnavailable):
            raise cannotReach(failure.value)  # type: ignore[arg-type]
        if failure.check(TimeoutError):
            raise CannotReach([(name, "not connected within %g s" % (seconds,)) for name in client.servers])
        failure.raiseException()

    return d.addErrback(why)  # type: ignore[no-any-return]


@inlineCallbacks
def submit(
    reactor: Any, invocation: Invocation, stdin: BinaryIO, stdout: BinaryIO, stderr: BinaryIO
) -> Generator[Any, Any, None]:
    """
    Run C{gearman-tw submit}: each job's data goes to each function; a job
    that fails is reported and the others still run (the exit status is
    then 1); a server that cannot be reached ends it at once.
    """
    from gearman_tw.client import GearmanClient

    options = invocation.options
    limit = options.timeout / 1000.0 if options.timeout else None
    functions = [os.fsencode(name) for name in options.functions]
    prefix = options.prefix

    def writer(stream: BinaryIO, function: bytes, suffix: bytes = b"") -> Callable[[bytes], None]:
        def write(data: bytes) -> None:
            stream.write((function + b": " if prefix else b"") + data + suffix)
            stream.flush()

        return write

    def status(function: bytes) -> Callable[[int, int], None]:
        write = writer(stderr, function)
        return lambda numerator, denominator: write(
            b"%d%% Complete\n" % (numerator * 100 // denominator if denominator else 0,)
        )

    nextData = jobData(reactor, options, stdin)
    client = GearmanClient(invocation.servers, reactor=reactor, connectTimeout=CONNECT_TIMEOUT)
    client.startService()
    failed = False
    try:
        yield connected(reactor, client, limit or CONNECT_TIMEOUT)
        while True:
            data = yield nextData()
            if data is None:
                break
            tasks = [
                (
                    function,
                    client.submit(
                        function,
                        data,
                        unique=options.unique,
                        priority=options.priority,
                        background=options.background or options.at is not None,
                        when=options.at,
                        timeout=limit,
                        onData=writer(stdout, function),
                        onWarning=writer(stderr, function),
                        onStatus=status(function),
                    ),
                )
                for function in functions
            ]
            for function, task in tasks:
                try:
                    result = yield task.result
                except (ServerUnavailable, ConnectionLost):
                    raise
                except GearmanError as e:
                    failed = True
                    name = function + b": " if prefix else b""
                    stderr.write(b"gearman-tw: " + name + explain(e).encode("utf-8", "replace") + b"\n")
                    stderr.flush()
                    continue
                writer(stdout, function, b"\n" if task.background else b"")(result)
    finally:
        yield client.stopService()
    if failed:
        raise SystemExit(1)
