# -*- test-case-name: tests.test_cli -*-
"""
The admin commands of C{gearman-tw}: each asks every job server given, at
once, and reports each one's answer, as a table, a value or JSON.  A
server that cannot answer is reported on standard error and the others
still are; the exit status is then 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Generator, List, Optional, Sequence, TextIO, Tuple

from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks, maybeDeferred
from twisted.python.failure import Failure

from gearman_tw.cli.messages import cannotReach, explain
from gearman_tw.cli.options import Invocation
from gearman_tw.errors import ServerUnavailable

#: Seconds to connect, and for each reply, when C{-t} does not say.
DEFAULT_TIMEOUT = 10.0

TABLES = frozenset(("status", "priority-status", "workers", "jobs", "unique-jobs"))
VALUES = {"version": "VERSION", "verbose": "VERBOSE", "getpid": "PID"}


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


@dataclass
class Answer:
    """
    What one server answered: C{result}, or C{error}, a line saying why not.
    """

    server: str
    result: Any = None
    error: Optional[str] = None


def ask(admin: Any, command: str, options: Any) -> "Deferred[Any]":
    """
    Send C{command}'s admin command on a connection.
    """
    args = options.args
    if command == "status":
        return admin.status()  # type: ignore[no-any-return]
    if command == "priority-status":
        return admin.priorityStatus()  # type: ignore[no-any-return]
    if command == "workers":
        return admin.workers()  # type: ignore[no-any-return]
    if command == "jobs":
        return admin.showJobs()  # type: ignore[no-any-return]
    if command == "unique-jobs":
        return admin.showUniqueJobs()  # type: ignore[no-any-return]
    if command == "version":
        return admin.version()  # type: ignore[no-any-return]
    if command == "verbose":
        return admin.verbose()  # type: ignore[no-any-return]
    if command == "getpid":
        return admin.getpid()  # type: ignore[no-any-return]
    if command == "cancel":
        return admin.cancelJob(args[0])  # type: ignore[no-any-return]
    if command == "create-function":
        return admin.createFunction(args[0])  # type: ignore[no-any-return]
    if command == "drop-function":
        return admin.dropFunction(args[0])  # type: ignore[no-any-return]
    if command == "maxqueue":
        return admin.maxQueue(args[0], *options.limits)  # type: ignore[no-any-return]
    if command == "shutdown":
        return admin.shutdown(options.graceful)  # type: ignore[no-any-return]
    raise ValueError("not an admin command: %r" % (command,))


def rows(command: str, result: Any) -> Tuple[List[str], List[List[str]]]:
    """
    The header and rows of a listing command's table.
    """
    if command == "status":
        return ["FUNCTION", "QUEUED", "RUNNING", "WORKERS"], [
            [_text(r.function), str(r.queued), str(r.running), str(r.workers)] for r in result
        ]
    if command == "priority-status":
        return ["FUNCTION", "HIGH", "NORMAL", "LOW", "WORKERS"], [
            [_text(r.function), str(r.high), str(r.normal), str(r.low), str(r.workers)] for r in result
        ]
    if command == "workers":
        return ["FD", "ADDRESS", "CLIENT ID", "FUNCTIONS"], [
            [str(r.fd), r.ip, _text(r.clientId), " ".join(_text(f) for f in r.functions)] for r in result
        ]
    if command == "jobs":
        return ["HANDLE", "RETRIES", "IGNORED", "PERSISTED"], [
            [_text(r.handle), str(r.retries), "yes" if r.ignored else "no", "yes" if r.persisted else "no"]
            for r in result
        ]
    if command == "unique-jobs":
        return ["UNIQUE"], [[_text(key)] for key in result]
    raise ValueError("not a listing: %r" % (command,))


def jsonable(command: str, result: Any) -> Any:
    """
    C{result} as JSON values: rows become objects named as in
    L{gearman_tw.admin}, bytes become text.
    """
    if command == "status":
        return [
            {
                "function": _text(r.function),
                "queued": r.queued,
                "running": r.running,
                "workers": r.workers,
                "total": r.total,
            }
            for r in result
        ]
    if command == "priority-status":
        return [
            {"function": _text(r.function), "high": r.high, "normal": r.normal, "low": r.low, "workers": r.workers}
            for r in result
        ]
    if command == "workers":
        return [
            {"fd": r.fd, "ip": r.ip, "clientId": _text(r.clientId), "functions": [_text(f) for f in r.functions]}
            for r in result
        ]
    if command == "jobs":
        return [
            {"handle": _text(r.handle), "retries": r.retries, "ignored": r.ignored, "persisted": r.persisted}
            for r in result
        ]
    if command == "unique-jobs":
        return [_text(key) for key in result]
    return result


def table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """
    Write C{rows} in columns as wide as their widest cell.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")


def why(server: str, failure: Failure) -> str:
    """
    One line saying why C{server} gave no answer.
    """
    if failure.check(ServerUnavailable):
        return str(cannotReach(failure.value))  # type: ignore[arg-type]
    return "%s: %s" % (server, explain(failure.value))  # type: ignore[arg-type]


def askServer(
    reactor: Any, server: str, command: str, options: Any, timeout: float, connect: Callable[..., "Deferred[Any]"]
) -> "Deferred[Answer]":
    """
    Connect to C{server}, send the command, close: fires with its
    L{Answer}, never fails.
    """
    d = maybeDeferred(connect, server, reactor=reactor, timeout=timeout)

    def asked(admin: Any) -> "Deferred[Any]":
        def close(result: object) -> object:
            admin.close()
            return result

        return maybeDeferred(ask, admin, command, options).addBoth(close)

    d.addCallback(asked)
    return d.addCallbacks(lambda result: Answer(server, result=result), lambda f: Answer(server, error=why(server, f)))


def report(command: str, answers: Sequence[Answer], options: Any, out: TextIO, err: TextIO) -> int:
    """
    Print the answers; return the exit status.
    """
    many = len(answers) > 1
    status = 0
    for answer in answers:
        if answer.error is not None:
            err.write("gearman-tw: %s\n" % (answer.error,))
            status = 1
    good = [a for a in answers if a.error is None]
    if options.json:
        documents = [
            {"server": a.server, "error": a.error}
            if a.error is not None
            else {"server": a.server, "result": jsonable(command, a.result)}
            for a in answers
        ]
        out.write(json.dumps(documents, indent=2) + "\n")
    elif command in TABLES:
        lines: List[List[str]] = []
        for answer in good:
            header, body = rows(command, answer.result)
            if not lines:
                lines.append((["SERVER"] if many else []) + header)
            lines += [([answer.server] if many else []) + row for row in body]
        if lines:
            table(lines, out)
    elif command in VALUES:
        if many:
            table([["SERVER", VALUES[command]]] + [[a.server, str(a.result)] for a in good], out)
        else:
            for answer in good:
                out.write("%s\n" % (answer.result,))
    elif command == "cancel":
        for answer in good:
            if answer.result:
                out.write("%scancelled %s\n" % (answer.server + ": " if many else "", options.args[0]))
    if command == "cancel" and good and not any(a.result for a in good):
        err.write("gearman-tw: no such job: %s\n" % (options.args[0],))
        status = 1
    out.flush()
    return status


@inlineCallbacks
def admin(
    reactor: Any,
    invocation: Invocation,
    out: TextIO,
    err: TextIO,
    connect: Optional[Callable[..., "Deferred[Any]"]] = None,
) -> Generator[Any, Any, None]:
    """
    Run an admin command against every server; raise L{SystemExit} with
    status 1 if any could not answer.

    @param connect: makes admin connections, as
        L{gearman_tw.admin.connectAdmin} (the default) does.
    """
    if connect is None:
        from gearman_tw.admin import connectAdmin as connect
    options = invocation.options
    timeout = options.timeout / 1000.0 if options.timeout else DEFAULT_TIMEOUT
    asked = [askServer(reactor, s, invocation.command, options, timeout, connect) for s in invocation.servers]  # type: ignore[arg-type]
    results = yield DeferredList(asked)
    status = report(invocation.command, [answer for _, answer in results], options, out, err)
    if status:
        raise SystemExit(status)
