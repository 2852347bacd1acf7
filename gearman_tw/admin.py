# -*- test-case-name: tests.test_admin -*-
"""
A Deferred-based client of the Gearman text admin protocol.

    admin = yield connectAdmin(reactor, "127.0.0.1:4730")
    for row in (yield admin.status()):
        print(row.function, row.queued, row.running, row.workers)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional, Tuple, TypeVar, Union

from twisted.internet.defer import Deferred, fail
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from gearman_tw.endpoints import clientEndpoint
from gearman_tw.errors import ConnectionLost, GearmanError

T = TypeVar("T")


class AdminError(GearmanError):
    """
    The server answered an admin command with C{ERR}.

    @ivar code: the error code, e.g. C{"UNKNOWN_JOB"}.
    @ivar text: the rest of the line, with gearmand's C{+} for spaces undone.
    """

    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text


@dataclass(frozen=True)
class FunctionStatus:
    """
    A row of C{status}: C{total} is queued plus running, as gearmand counts.
    """

    function: bytes
    total: int
    running: int
    workers: int

    @property
    def queued(self) -> int:
        """
        Jobs waiting for a worker.
        """
        return self.total - self.running


@dataclass(frozen=True)
class PriorityStatus:
    """
    A row of C{prioritystatus}: queued jobs per priority.
    """

    function: bytes
    high: int
    normal: int
    low: int
    workers: int


@dataclass(frozen=True)
class Worker:
    """
    A row of C{workers}: one connection (worker, client or admin).
    """

    fd: int
    ip: str
    clientId: bytes
    functions: Tuple[bytes, ...]


@dataclass(frozen=True)
class QueuedJob:
    """
    A row of C{show jobs}.
    """

    handle: bytes
    retries: int
    ignored: bool
    persisted: bool


def _int(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


def _ok(lines: List[bytes]) -> None:
    return None


def _value(lines: List[bytes]) -> str:
    return lines[0][3:].decode("utf-8", "replace")


def _status(lines: List[bytes]) -> List[FunctionStatus]:
    rows = []
    for line in lines:
        name, total, running, workers = line.rsplit(b"\t", 3)
        rows.append(FunctionStatus(name, _int(total), _int(running), _int(workers)))
    return rows


def _priorityStatus(lines: List[bytes]) -> List[PriorityStatus]:
    rows = []
    for line in lines:
        name, high, normal, low, workers = line.rsplit(b"\t", 4)
        rows.append(PriorityStatus(name, _int(high), _int(normal), _int(low), _int(workers)))
    return rows


def _workers(lines: List[bytes]) -> List[Worker]:
    rows = []
    for line in lines:
        head, _, functions = line.partition(b" :")
        fd, ip, clientId = head.split(b" ", 2)
        names = tuple(functions.split()) if functions else ()
        rows.append(Worker(_int(fd), ip.decode("ascii", "replace"), clientId, names))
    return rows


def _jobs(lines: List[bytes]) -> List[QueuedJob]:
    rows = []
    for line in lines:
        handle, retries, ignored, persisted = line.rsplit(b"\t", 3)
        rows.append(QueuedJob(handle, _int(retries), ignored == b"1", persisted == b"1"))
    return rows


class GearmanAdminClient(LineOnlyReceiver):
    """
    One connection speaking the admin text protocol; commands may be
    pipelined and are answered in order.
    """

    delimiter = b"\n"
    MAX_LENGTH = 16 * 1024 * 1024

    def __init__(self) -> None:
        self._pending: Deque[Tuple[bool, Callable[[List[bytes]], object], Deferred[object]]] = deque()
        self._lines: List[bytes] = []

    def command(
        self, line: bytes, isList: bool, parse: Callable[[List[bytes]], T]
    ) -> "Deferred[T]":
        """
        Send one command line and fire with C{parse} of its reply lines.

        @param isList: the reply is a list of lines ended by C{.}.
        """
        if b"\n" in line or b"\r" in line:
            return fail(ValueError("admin commands are one line"))
        d: Deferred[T] = Deferred()
        self._pending.append((isList, parse, d))  # type: ignore[arg-type]
        self.transport.write(line + b"\r\n")  # type: ignore[union-attr]
        return d

    def lineReceived(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not self._pending:
            return
        isList, parse, d = self._pending[0]
        if not self._lines and line.startswith(b"ERR"):
            self._pending.popleft()
            words = line.split(b" ", 2)
            code = words[1].decode("utf-8", "replace") if len(words) > 1 else ""
            text = words[2].replace(b"+", b" ").decode("utf-8", "replace") if len(words) > 2 else ""
            d.errback(AdminError(code, text))
            return
        if isList:
            if line != b".":
                self._lines.append(line)
                return
            lines, self._lines = self._lines, []
        else:
            lines = [line]
        self._pending.popleft()
        try:
            result = parse(lines)
        except ValueError as e:
            d.errback(GearmanError("unparseable admin reply: %s" % (e,)))
        else:
            d.callback(result)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        while self._pending:
            self._pending.popleft()[2].errback(ConnectionLost("admin connection lost"))

    def close(self) -> None:
        """
        Close the connection.
        """
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _words(
        self, words: List[Union[bytes, str]], parse: Callable[[List[bytes]], T]
    ) -> "Deferred[T]":
        try:
            line = b" ".join(_word(w) for w in words)
        except ValueError as e:
            return fail(e)
        return self.command(line, False, parse)

    # Commands

    def status(self) -> "Deferred[List[FunctionStatus]]":
        """
        C{status}: every function with its total, running and worker counts.
        """
        return self.command(b"status", True, _status)

    def priorityStatus(self) -> "Deferred[List[PriorityStatus]]":
        """
        C{prioritystatus}: queued jobs per function and priority.
        """
        return self.command(b"prioritystatus", True, _priorityStatus)

    def workers(self) -> "Deferred[List[Worker]]":
        """
        C{workers}: every connection and the functions it can do.
        """
        return self.command(b"workers", True, _workers)

    def showJobs(self) -> "Deferred[List[QueuedJob]]":
        """
        C{show jobs}: every queued or running job.
        """
        return self.command(b"show jobs", True, _jobs)

    def showUniqueJobs(self) -> "Deferred[List[bytes]]":
        """
        C{show unique jobs}: the unique key of every job.
        """
        return self.command(b"show unique jobs", True, list)

    def version(self) -> "Deferred[str]":
        """
        C{version}: the server's version string.
        """
        return self.command(b"version", False, _value)

    def verbose(self) -> "Deferred[str]":
        """
        C{verbose}: the server's log level name.
        """
        return self.command(b"verbose", False, _value)

    def getpid(self) -> "Deferred[int]":
        """
        C{getpid}: the server's process id.
        """
        return self.command(b"getpid", False, lambda lines: int(_value(lines)))

    def cancelJob(self, handle: Union[bytes, str]) -> "Deferred[bool]":
        """
        C{cancel job}: fires with L{True}, or L{False} for an unknown job.
        """

        def unknown(failure: Failure) -> bool:
            failure.trap(AdminError)
            if failure.value.code != "UNKNOWN_JOB":  # type: ignore[union-attr]
                failure.raiseException()
            return False

        d = self._words([b"cancel", b"job", handle], lambda lines: True)
        return d.addErrback(unknown)

    def createFunction(self, name: Union[bytes, str]) -> "Deferred[None]":
        """
        C{create function}.
        """
        return self._words([b"create", b"function", name], _ok)

    def dropFunction(self, name: Union[bytes, str]) -> "Deferred[None]":
        """
        C{drop function}: fails with L{AdminError} if the function is unknown
        or busy.
        """
        return self._words([b"drop", b"function", name], _ok)

    def maxQueue(
        self,
        name: Union[bytes, str],
        high: Optional[int] = None,
        normal: Optional[int] = None,
        low: Optional[int] = None,
    ) -> "Deferred[None]":
        """
        C{maxqueue}: with only C{high}, one limit for every priority; with
        none, no limits.
        """
        words: List[Union[bytes, str]] = [b"maxqueue", name]
        words.extend(b"%d" % (n,) for n in (high, normal, low) if n is not None)
        return self._words(words, _ok)

    def shutdown(self, graceful: bool = False) -> "Deferred[None]":
        """
        C{shutdown [graceful]} (gearman_tw with --admin-shutdown, or old
        gearmand).
        """
        return self.command(b"shutdown graceful" if graceful else b"shutdown", False, _ok)


def _word(value: Union[bytes, str]) -> bytes:
    word = value.encode("utf-8") if isinstance(value, str) else value
    if not word or b" " in word or b"\n" in word or b"\r" in word:
        raise ValueError("admin arguments are single non-empty words")
    return word


def connectAdmin(reactor: object, server: str = "127.0.0.1:4730") -> "Deferred[GearmanAdminClient]":
    """
    Connect to a job server's admin protocol.

    @param server: C{host:port} or an endpoint description, as for
        L{gearman_tw.client.GearmanClient}.
    """
    endpoint, _ = clientEndpoint(reactor, server)
    return endpoint.connect(Factory.forProtocol(GearmanAdminClient))  # type: ignore[return-value]
