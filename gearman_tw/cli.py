# -*- test-case-name: tests.integration.test_cli -*-
"""
C{gearman-tw}: submit jobs, run a command as a worker, and query job servers::

    echo hello | gearman-tw submit reverse
    gearman-tw submit --background --priority high resize photo.jpg
    gearman-tw worker reverse -- rev
    gearman-tw status
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, BinaryIO, Callable, List, Optional, Sequence, TextIO

from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from twisted.internet.error import ProcessDone
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from gearman_tw._version import __version__
from gearman_tw.errors import GearmanError, JobException, JobFailed, ServerError


class _Command(ProcessProtocol):
    """
    Runs one command with the job's data on stdin, collecting stdout.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.output: List[bytes] = []
        self.finished: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.data)  # type: ignore[union-attr]
        self.transport.closeStdin()  # type: ignore[union-attr]

    def outReceived(self, data: bytes) -> None:
        self.output.append(data)

    def processEnded(self, reason: Failure) -> None:
        if reason.check(ProcessDone):
            self.finished.callback(b"".join(self.output))
        else:
            self.finished.errback(JobFailed(b""))


def commandFunction(reactor: Any, argv: Sequence[str]) -> Callable[[Any], Deferred[Any]]:
    """
    A worker function that runs C{argv} for each job: the job's data on its
    stdin, its stdout the result; a non-zero exit fails the job.
    """

    # The Deferred fires with bytes; Deferred[bytes] is not a
    # Deferred[bytes | str | None], which GearmanWorker.register asks for.
    def run(job: Any) -> Deferred[Any]:
        command = _Command(job.data)
        reactor.spawnProcess(command, argv[0], list(argv), env=None)
        return command.finished

    return run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gearman-tw", description="Submit Gearman jobs, run workers and query job servers."
    )
    parser.add_argument("--version", action="version", version="gearman-tw " + __version__)
    parser.add_argument(
        "-s",
        "--server",
        action="append",
        help="job server HOST[:PORT] or endpoint description, e.g. "
        "tls:host=H:port=4730:trustRoots=ca.pem, which verifies the server's certificate "
        "(repeatable; default 127.0.0.1:4730)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    submit = commands.add_parser("submit", help="submit a job and print its result")
    submit.add_argument("function")
    submit.add_argument("data", nargs="?", help="the workload (default: read stdin)")
    submit.add_argument("-b", "--background", action="store_true", help="do not wait for the result")
    submit.add_argument("-p", "--priority", choices=["high", "normal", "low"], default="normal")
    submit.add_argument("-u", "--unique", help="unique key (jobs with equal keys run once)")
    submit.add_argument("--at", type=int, metavar="EPOCH", help="run a background job at this time")
    submit.add_argument("-t", "--timeout", type=float, help="seconds to wait for the result")

    worker = commands.add_parser("worker", help="run a command for each job of a function")
    worker.add_argument("function")
    worker.add_argument("argv", nargs="+", metavar="COMMAND", help="the command and its arguments")
    worker.add_argument("-c", "--concurrency", type=int, default=1)
    worker.add_argument("--client-id")

    commands.add_parser("status", help="functions with queued, running and worker counts")
    commands.add_parser("priority-status", help="queued jobs per priority")
    commands.add_parser("workers", help="connections and their functions")
    commands.add_parser("jobs", help="queued and running jobs")
    commands.add_parser("version", help="the server's version")
    commands.add_parser("getpid", help="the server's process id")
    cancel = commands.add_parser("cancel", help="cancel a job")
    cancel.add_argument("handle")
    create = commands.add_parser("create-function", help="create a function")
    create.add_argument("name")
    drop = commands.add_parser("drop-function", help="drop an idle function")
    drop.add_argument("name")
    maxqueue = commands.add_parser("maxqueue", help="set a function's queue limits")
    maxqueue.add_argument("name")
    maxqueue.add_argument("limits", nargs="*", type=int, metavar="N", help="ALL, or HIGH NORMAL [LOW]")
    return parser


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _table(rows: List[List[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")


@inlineCallbacks
def _admin(reactor: Any, options: argparse.Namespace, out: TextIO) -> Any:
    from gearman_tw.admin import connectAdmin

    admin = yield connectAdmin(options.server[0], reactor=reactor)
    try:
        command = options.command
        if command == "status":
            rows = yield admin.status()
            table = [["FUNCTION", "QUEUED", "RUNNING", "WORKERS"]]
            table += [[_text(r.function), str(r.queued), str(r.running), str(r.workers)] for r in rows]
            _table(table, out)
        elif command == "priority-status":
            rows = yield admin.priorityStatus()
            table = [["FUNCTION", "HIGH", "NORMAL", "LOW", "WORKERS"]]
            table += [
                [_text(r.function), str(r.high), str(r.normal), str(r.low), str(r.workers)] for r in rows
            ]
            _table(table, out)
        elif command == "workers":
            rows = yield admin.workers()
            table = [["FD", "ADDRESS", "CLIENT ID", "FUNCTIONS"]]
            table += [
                [str(r.fd), r.ip, _text(r.clientId), " ".join(_text(f) for f in r.functions)] for r in rows
            ]
            _table(table, out)
        elif command == "jobs":
            rows = yield admin.showJobs()
            table = [["HANDLE", "RETRIES", "IGNORED", "BACKGROUND"]]
            table += [
                [_text(r.handle), str(r.retries), "yes" if r.ignored else "no", "yes" if r.persisted else "no"]
                for r in rows
            ]
            _table(table, out)
        elif command == "version":
            out.write((yield admin.version()) + "\n")
        elif command == "getpid":
            out.write("%d\n" % ((yield admin.getpid()),))
        elif command == "cancel":
            if not (yield admin.cancelJob(options.handle)):
                raise GearmanError("no such job: %s" % (options.handle,))
            out.write("cancelled %s\n" % (options.handle,))
        elif command == "create-function":
            yield admin.createFunction(options.name)
        elif command == "drop-function":
            yield admin.dropFunction(options.name)
        elif command == "maxqueue":
            if len(options.limits) > 3:
                raise GearmanError("maxqueue takes at most three limits")
            yield admin.maxQueue(options.name, *options.limits)
    finally:
        admin.close()


@inlineCallbacks
def _submit(reactor: Any, options: argparse.Namespace, stdin: BinaryIO, out: BinaryIO) -> Any:
    from gearman_tw.client import GearmanClient

    data = options.data.encode("utf-8") if options.data is not None else stdin.read()
    client = GearmanClient(options.server, reactor=reactor, connectTimeout=10)
    client.startService()
    try:
        task = client.submit(
            options.function,
            data,
            unique=options.unique,
            priority=options.priority,
            background=options.background or options.at is not None,
            when=options.at,
            timeout=options.timeout,
            onData=out.write,
        )
        result = yield task.result
        if task.background:
            out.write(b"%s\n" % (result,))
        else:
            out.write(result)
        out.flush()
    finally:
        yield client.stopService()


def _worker(reactor: Any, options: argparse.Namespace) -> Deferred[None]:
    from gearman_tw.worker import GearmanWorker

    worker = GearmanWorker(
        options.server, concurrency=options.concurrency, clientId=options.client_id, reactor=reactor
    )
    worker.register(options.function, commandFunction(reactor, options.argv))
    worker.startService()
    done: Deferred[None] = Deferred()
    reactor.addSystemEventTrigger("before", "shutdown", worker.stopService)
    return done


def main(
    reactor: Any,
    *argv: str,
    stdin: Optional[BinaryIO] = None,
    stdout: Optional[BinaryIO] = None,
    out: Optional[TextIO] = None,
) -> Deferred[Any]:
    """
    Run C{gearman-tw} with C{argv}; for L{twisted.internet.task.react}.
    """
    options = _parser().parse_args(list(argv))
    if not options.server:
        options.server = ["127.0.0.1:4730"]
    binaryIn = stdin if stdin is not None else sys.stdin.buffer
    binaryOut = stdout if stdout is not None else sys.stdout.buffer
    textOut = out if out is not None else sys.stdout
    # maybeDeferred: an argument error raised at once is explained too.
    if options.command == "submit":
        d = maybeDeferred(_submit, reactor, options, binaryIn, binaryOut)
    elif options.command == "worker":
        d = maybeDeferred(_worker, reactor, options)
    else:
        d = maybeDeferred(_admin, reactor, options, textOut)
    return d.addErrback(_explain)


def _explain(failure: Failure) -> None:
    error = failure.value
    if isinstance(error, JobException):
        message = "job raised: %s" % (_text(error.data),)
    elif isinstance(error, JobFailed):
        message = "job failed"
    elif isinstance(error, ServerError):
        message = "server error %s: %s" % (_text(error.code), _text(error.text))
    elif isinstance(error, Exception):
        message = str(error) or type(error).__name__
    else:
        failure.raiseException()
    sys.stderr.write("gearman-tw: %s\n" % (message,))
    raise SystemExit(1)


def run() -> None:
    """
    The console entry point.
    """
    from twisted.internet.task import react

    react(main, sys.argv[1:])
