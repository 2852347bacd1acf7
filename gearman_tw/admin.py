# -*- test-case-name: tests.test_admin -*-
"""
A Deferred-based client of the Gearman text admin protocol.

    admin = yield connectAdmin("127.0.0.1:4730", reactor=reactor, timeout=10)
    for row in (yield admin.status()):
        print(row.function, row.queued, row.running, row.workers)

Arguments that are wrong in type or value raise L{TypeError} or
L{ValueError} at once and send nothing; whatever happens on the wire
(refused connections, lost connections, timeouts, replies that make no
sense, C{ERR} replies) fails the returned Deferred.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import warnings
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Deque, List, Optional, Tuple, TypeVar, Union, cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IProtocol,
    IReactorTCP,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from gearman_tw.endpoints import clientEndpoint
from gearman_tw.errors import ConnectionLost, GearmanError, ProtocolError, ServerUnavailable, describeFailure
from gearman_tw.protocol import MAX_TEXT_LINE

T = TypeVar("T")

#: Where L{connectAdmin} connects by default.
DEFAULT_SERVER = "127.0.0.1:4730"

#: The largest C{maxqueue} limit: gearmand keeps it in a 32-bit int.
MAX_QUEUE_LIMIT = 2**31 - 1

_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class AdminError(GearmanError):
    """
    The server answered an admin command with C{ERR}.

    C{str()} reads like the reply: C{"ERR UNKNOWN_JOB"},
    C{"ERR INVALID_ARGUMENTS: An incomplete set..."}, or, for gearmand's
    replies without a code, the whole line (C{"ERR function not found"}).

    @ivar code: the error code, e.g. C{"UNKNOWN_JOB"} (the first word after
        C{ERR}, whatever it is).
    @ivar text: the rest of the line, with gearmand's C{+} for spaces undone.
    """

    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text

    def __str__(self) -> str:
        if _CODE.match(self.code):
            return "ERR %s: %s" % (self.code, self.text) if self.text else "ERR %s" % (self.code,)
        return " ".join(word for word in ("ERR", self.code, self.text) if word)


class AdminTimeout(GearmanError, TimeoutError):
    """
    An admin command got no reply in time.  The connection was closed,
    since a late reply could no longer be told from the next command's.

    @ivar command: the command line sent, e.g. C{"status"}.
    @ivar seconds: the time limit.
    """

    def __init__(self, command: str, seconds: float) -> None:
        super().__init__(command, seconds)
        self.command = command
        self.seconds = seconds

    def __str__(self) -> str:
        return "admin command %r got no reply within %g s" % (self.command, self.seconds)


class AdminProtocolError(ProtocolError):
    """
    The server sent something that is not an admin reply (a line that does
    not parse, a line too long, a line nobody asked for).  The connection
    was closed.

    @ivar command: the command whose reply it was, or L{None}.
    """

    def __init__(self, why: str, command: Optional[str] = None) -> None:
        super().__init__(None, why.encode("utf-8", "replace"))
        self.command = command

    def __str__(self) -> str:
        why = self.text.decode("utf-8", "replace")
        if self.command is None:
            return "bad admin reply: %s" % (why,)
        return "bad reply to admin command %r: %s" % (self.command, why)


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


@dataclass(frozen=True)
class JobResult:
    """
    What C{result} tells of a job (gearman_tw's own word): where a live one
    stands, or how it ended, kept per its function's policy.

    @ivar unique: its unique key, empty for none.
    @ivar outcome: C{"queued"} or C{"running"} for a live job; C{"complete"},
        C{"fail"} or C{"exception"} for one that ended.
    @ivar data: for a job that ended, its WORK_COMPLETE data, its
        WORK_EXCEPTION data, or why it failed; empty for a live one.
    @ivar finished: when it ended, and C{expires}: until when its result is
        kept (epoch seconds); L{None} for a live job.
    """

    function: bytes
    handle: bytes
    unique: bytes
    outcome: str
    data: bytes = b""
    finished: Optional[float] = None
    expires: Optional[float] = None

    @property
    def done(self) -> bool:
        """
        Whether the job has ended.
        """
        return self.outcome not in ("queued", "running")


# Reply parsers: each takes one reply line and raises ValueError when the
# line is not what the command's reply looks like.


def _int(value: bytes) -> int:
    if not value.strip().lstrip(b"-").isdigit():
        raise ValueError("not a number: %r" % (value,))
    return int(value)


def _flag(value: bytes) -> bool:
    if value not in (b"0", b"1"):
        raise ValueError("not 0 or 1: %r" % (value,))
    return value == b"1"


def _ok(line: bytes) -> None:
    if line != b"OK" and not line.startswith(b"OK "):
        raise ValueError("expected OK, got %r" % (line[:80],))
    return None


def _value(line: bytes) -> str:
    _ok(line)
    return line[3:].decode("utf-8", "replace")


def _cancelled(line: bytes) -> bool:
    _ok(line)
    return True


def _pid(line: bytes) -> int:
    _ok(line)
    return _int(line[3:])


def _split(line: bytes, fields: int) -> List[bytes]:
    parts = line.rsplit(b"\t", fields - 1)
    if len(parts) != fields:
        raise ValueError("expected %d tab-separated fields, got %r" % (fields, line[:80]))
    return parts


def _statusRow(line: bytes) -> FunctionStatus:
    name, total, running, workers = _split(line, 4)
    return FunctionStatus(name, _int(total), _int(running), _int(workers))


def _priorityRow(line: bytes) -> PriorityStatus:
    name, high, normal, low, workers = _split(line, 5)
    return PriorityStatus(name, _int(high), _int(normal), _int(low), _int(workers))


def _workerRow(line: bytes) -> Worker:
    head, colon, functions = line.partition(b" :")
    fields = head.split(b" ", 2)
    if not colon or len(fields) != 3:
        raise ValueError("expected 'FD IP ID : FUNCTIONS', got %r" % (line[:80],))
    fd, ip, clientId = fields
    return Worker(_int(fd), ip.decode("ascii", "replace"), clientId, tuple(functions.split()))


def _jobRow(line: bytes) -> QueuedJob:
    handle, retries, ignored, persisted = _split(line, 4)
    return QueuedJob(handle, _int(retries), _flag(ignored), _flag(persisted))


def _line(line: bytes) -> bytes:
    return line


def _jobResult(lines: List[bytes]) -> JobResult:
    fields: dict = {}
    data: List[bytes] = []
    for line in lines:
        key, _, value = line.partition(b" ")
        if key == b"data":
            data.append(value)
        else:
            fields[key] = value
    try:
        function, handle, unique, outcome = (fields[key] for key in (b"function", b"handle", b"unique", b"outcome"))
        encoded = b"".join(data)
        decoded = base64.b64decode(encoded, validate=True)
    except (KeyError, binascii.Error) as e:
        raise ValueError("not a job's result: %s" % (e,))
    times = [float(fields[key]) if key in fields else None for key in (b"finished", b"expires")]
    return JobResult(
        function, handle, b"" if unique == b"-" else unique, outcome.decode("ascii", "replace"), decoded, *times
    )


class _Command:
    """
    A command sent and not yet answered.

    @ivar line: the command line, for error messages.
    @ivar isList: the reply is lines ended by C{.}.
    @ivar row: parses each reply line; raises L{ValueError} on garbage.
    @ivar finish: makes the result of a list reply from its rows.
    @ivar rows: the parsed lines of a list reply so far.
    @ivar timer: the pending timeout, if any.
    @ivar cancelled: the caller cancelled it; its reply is read and dropped.
    """

    __slots__ = ("line", "isList", "row", "finish", "rows", "deferred", "timer", "cancelled")

    def __init__(
        self,
        line: str,
        isList: bool,
        row: Callable[[bytes], Any],
        finish: Callable[[List[Any]], Any],
    ) -> None:
        self.line = line
        self.isList = isList
        self.row = row
        self.finish = finish
        self.rows: List[Any] = []
        self.deferred: Deferred[Any] = Deferred(self._cancel)
        self.timer: Optional[IDelayedCall] = None
        self.cancelled = False

    def _cancel(self, deferred: Deferred[Any]) -> None:
        # The reply still comes, in its turn: keep the place in the queue.
        self.cancelled = True
        self.stopTimer()

    def stopTimer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def succeed(self, result: object) -> None:
        self.stopTimer()
        if not self.deferred.called:
            self.deferred.callback(result)

    def fail(self, error: Union[BaseException, Failure]) -> None:
        self.stopTimer()
        if not self.deferred.called:
            self.deferred.errback(error)


def _checkTimeout(timeout: Optional[float]) -> None:
    """
    @raise TypeError: C{timeout} is not L{None} or a number.
    @raise ValueError: C{timeout} is not a positive finite number.
    """
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number of seconds or None, not %s" % (type(timeout).__name__,))
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError("timeout must be a positive number of seconds, not %r" % (timeout,))


def _word(value: Union[bytes, str], what: str) -> bytes:
    """
    One argument word of an admin command.

    @param what: what it is, for messages: C{"cancelJob() handle"}.
    @raise TypeError: C{value} is not L{bytes} or L{str}.
    @raise ValueError: C{value} is empty or holds a space, a line break or
        a NUL (the server splits commands on spaces and ends them at line
        breaks), or is a L{str} that UTF-8 cannot encode.
    """
    if isinstance(value, str):
        try:
            word = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError("%s is not encodable as UTF-8: %r" % (what, value)) from e
    elif isinstance(value, bytes):
        word = value
    else:
        raise TypeError("%s must be bytes or str, not %s" % (what, type(value).__name__))
    if not word:
        raise ValueError("%s must not be empty" % (what,))
    for bad in (b" ", b"\n", b"\r", b"\0"):
        if bad in word:
            raise ValueError("%s must be one word without spaces, line breaks or NULs: %r" % (what, value))
    return word


def _limit(value: Optional[int], what: str) -> Optional[int]:
    """
    @raise TypeError: C{value} is not L{None} or an L{int}.
    @raise ValueError: C{value} is negative or above L{MAX_QUEUE_LIMIT}.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("maxQueue() %s must be an int or None, not %s" % (what, type(value).__name__))
    if not 0 <= value <= MAX_QUEUE_LIMIT:
        raise ValueError("maxQueue() %s must be from 0 to %d, not %d" % (what, MAX_QUEUE_LIMIT, value))
    return value


class GearmanAdminClient(LineOnlyReceiver):
    """
    One connection speaking the admin text protocol; commands may be
    pipelined and are answered in order.

    Once the connection is closed (by L{close}, a timeout, a bad reply or
    the network), every unanswered command and every later one fails with
    L{ConnectionLost}.  Cancelling a command's Deferred fails it with
    L{CancelledError}; its reply is still read, and dropped.

    @ivar timeout: seconds each command may wait for its reply before it
        fails with L{AdminTimeout} and the connection is closed; L{None}
        for no limit.
    @ivar clock: what times commands.
    """

    log = Logger()
    delimiter = b"\n"
    #: The longest reply line accepted (a C{workers} line lists every
    #: function of a worker); a longer one closes the connection.
    MAX_LENGTH = 16 * 1024 * 1024

    def __init__(self, timeout: Optional[float] = None, clock: Optional[IReactorTime] = None) -> None:
        """
        @param timeout: see L{timeout}.
        @param clock: the reactor's clock by default.
        @raise TypeError: C{timeout} is not a number or L{None}.
        @raise ValueError: C{timeout} is not positive.
        """
        _checkTimeout(timeout)
        if clock is None and timeout is not None:
            from twisted.internet import reactor as _reactor

            clock = _reactor  # type: ignore[assignment]
        self.timeout = timeout
        self.clock = clock
        self._pending: Deque[_Command] = deque()
        self._closed = False
        self._why = "not connected to the job server"

    def command(
        self, line: bytes, isList: bool, parse: Callable[[List[bytes]], T]
    ) -> "Deferred[T]":
        """
        Send one command line and fire with C{parse} of its reply lines.

        @param isList: the reply is a list of lines ended by C{.}.
        @param parse: makes the result from the reply lines; if it raises
            L{ValueError}, the command fails with L{AdminProtocolError} and
            the connection is closed.
        @raise TypeError: C{line} is not L{bytes}.
        @raise ValueError: C{line} is empty, longer than the server accepts,
            or not one line.
        """
        if not isinstance(line, bytes):
            raise TypeError("command() line must be bytes, not %s" % (type(line).__name__,))
        if not line or b"\n" in line or b"\r" in line or b"\0" in line:
            raise ValueError("admin commands are one non-empty line: %r" % (line[:80],))
        if not callable(parse):
            raise TypeError("command() parse must be callable")
        if isList:
            return self._send(line, True, _line, parse)
        return self._send(line, False, lambda reply: parse([reply]), _line)  # type: ignore[arg-type]

    def _send(
        self,
        line: bytes,
        isList: bool,
        row: Callable[[bytes], Any],
        finish: Callable[[List[Any]], Any],
    ) -> "Deferred[Any]":
        if len(line) + 2 > MAX_TEXT_LINE:
            raise ValueError(
                "admin command of %d bytes; job servers accept %d" % (len(line), MAX_TEXT_LINE - 2)
            )
        command = _Command(line.decode("utf-8", "replace"), isList, row, finish)
        if self._closed or self.transport is None:
            command.fail(ConnectionLost(self._why))
            return command.deferred
        self._pending.append(command)
        if self.timeout is not None and self.clock is not None:
            command.timer = self.clock.callLater(self.timeout, self._timedOut, command, self.timeout)
        self.transport.write(line + b"\r\n")
        return command.deferred

    # Receiving

    def dataReceived(self, data: bytes) -> None:
        if not self._closed:
            super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if self._closed:
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if not self._pending:
            self._badReply(AdminProtocolError("a line no command asked for: %r" % (line[:80],)))
            return
        command = self._pending[0]
        if not command.rows and (line == b"ERR" or line.startswith(b"ERR ")):
            self._pending.popleft()
            words = line.split(b" ", 2)
            code = words[1].decode("utf-8", "replace") if len(words) > 1 else ""
            text = words[2].replace(b"+", b" ").decode("utf-8", "replace") if len(words) > 2 else ""
            command.fail(AdminError(code, text))
            return
        try:
            if command.isList and line == b".":
                self._pending.popleft()
                result = command.finish(command.rows)
            elif command.isList:
                command.rows.append(command.row(line))
                return
            else:
                self._pending.popleft()
                result = command.row(line)
        except ValueError as e:
            self._badReply(AdminProtocolError(str(e), command.line), command)
            return
        except Exception:
            self._badReply(Failure(), command)
            return
        if not command.cancelled:
            command.succeed(result)

    def lineLengthExceeded(self, line: bytes) -> None:  # type: ignore[override]
        command = self._pending[0] if self._pending else None
        error = AdminProtocolError(
            "a reply line longer than %d bytes" % (self.MAX_LENGTH,),
            command.line if command is not None else None,
        )
        self._badReply(error, command)

    def _badReply(self, error: Union[BaseException, Failure], command: Optional[_Command] = None) -> None:
        """
        Fail C{command} with C{error}, and close the connection: the reply
        stream can no longer be trusted.
        """
        self.log.error("Closing the admin connection: {error}", error=error)
        if command is not None:
            if command in self._pending:
                self._pending.remove(command)
            command.fail(error)
        text = error.getErrorMessage() if isinstance(error, Failure) else str(error)
        self._abandon("admin connection closed after %s" % (text,), abort=True)

    def _timedOut(self, command: _Command, seconds: float) -> None:
        command.timer = None
        if command not in self._pending:
            return
        self._pending.remove(command)
        error = AdminTimeout(command.line, seconds)
        self.log.warn("Closing the admin connection: {error}", error=error)
        command.fail(error)
        self._abandon("admin connection closed after %s" % (error,), abort=True)

    # Closing

    def _abandon(self, why: str, abort: bool) -> None:
        """
        Refuse further commands, fail the unanswered ones with
        L{ConnectionLost}, and close the transport.
        """
        if self._closed:
            return
        self._closed = True
        self._why = why
        self._failAll(why)
        transport = self.transport
        if transport is not None:
            # Aborting drops what the server may still send; not every
            # transport can.
            stop = getattr(transport, "abortConnection", None) if abort else None
            (stop or transport.loseConnection)()

    def _failAll(self, why: str) -> None:
        pending, self._pending = self._pending, deque()
        for command in pending:
            command.fail(ConnectionLost(why))

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if not self._closed:
            self._closed = True
            why = "admin connection to the job server lost"
            if reason is not None:
                why = "%s: %s" % (why, describeFailure(reason))
            self._why = why
        self._failAll(self._why)

    def close(self) -> None:
        """
        Close the connection; unanswered commands fail with
        L{ConnectionLost}.  Closing again does nothing.
        """
        self._abandon("admin connection closed by the client", abort=False)

    # Commands

    def status(self) -> "Deferred[List[FunctionStatus]]":
        """
        C{status}: every function with its total, running and worker counts.
        """
        return self._send(b"status", True, _statusRow, list)

    def priorityStatus(self) -> "Deferred[List[PriorityStatus]]":
        """
        C{prioritystatus}: queued jobs per function and priority.
        """
        return self._send(b"prioritystatus", True, _priorityRow, list)

    def workers(self) -> "Deferred[List[Worker]]":
        """
        C{workers}: every connection and the functions it can do.
        """
        return self._send(b"workers", True, _workerRow, list)

    def showJobs(self) -> "Deferred[List[QueuedJob]]":
        """
        C{show jobs}: every queued or running job.
        """
        return self._send(b"show jobs", True, _jobRow, list)

    def showUniqueJobs(self) -> "Deferred[List[bytes]]":
        """
        C{show unique jobs}: the unique key of every job.
        """
        return self._send(b"show unique jobs", True, _line, list)

    def version(self) -> "Deferred[str]":
        """
        C{version}: the server's version string.
        """
        return self._send(b"version", False, _value, list)

    def verbose(self) -> "Deferred[str]":
        """
        C{verbose}: the server's log level name.
        """
        return self._send(b"verbose", False, _value, list)

    def getpid(self) -> "Deferred[int]":
        """
        C{getpid}: the server's process id.
        """
        return self._send(b"getpid", False, _pid, list)

    def cancelJob(self, handle: Union[bytes, str]) -> "Deferred[bool]":
        """
        C{cancel job}: fires with L{True}, or L{False} for an unknown job.

        @raise TypeError: C{handle} is not L{bytes} or L{str}.
        @raise ValueError: C{handle} is not one word.
        """

        def unknown(failure: Failure) -> bool:
            failure.trap(AdminError)
            if failure.value.code != "UNKNOWN_JOB":  # type: ignore[union-attr]
                failure.raiseException()
            return False

        line = b"cancel job " + _word(handle, "cancelJob() handle")
        d = self._send(line, False, _cancelled, list)
        return d.addErrback(unknown)

    def result(self, handle: Union[bytes, str]) -> "Deferred[Optional[JobResult]]":
        """
        C{result HANDLE}: where the job stands, or its stored result; fires
        with L{None} for a job the server neither runs nor keeps a result
        of.

        @raise TypeError: C{handle} is not L{bytes} or L{str}.
        @raise ValueError: C{handle} is not one word.
        """
        return self._result(b"result " + _word(handle, "result() handle"))

    def resultUnique(self, unique: Union[bytes, str]) -> "Deferred[Optional[JobResult]]":
        """
        C{result unique UNIQUE}: the same for the newest job with C{unique}.

        @raise TypeError: C{unique} is not L{bytes} or L{str}.
        @raise ValueError: C{unique} is not one word.
        """
        return self._result(b"result unique " + _word(unique, "resultUnique() unique"))

    def _result(self, line: bytes) -> "Deferred[Optional[JobResult]]":
        def unknown(failure: Failure) -> None:
            failure.trap(AdminError)
            if failure.value.code != "UNKNOWN_JOB":  # type: ignore[union-attr]
                failure.raiseException()
            return None

        d = self._send(line, True, _line, _jobResult)
        return d.addErrback(unknown)  # type: ignore[no-any-return]

    def createFunction(self, name: Union[bytes, str]) -> "Deferred[None]":
        """
        C{create function}.

        @raise TypeError: C{name} is not L{bytes} or L{str}.
        @raise ValueError: C{name} is not one word.
        """
        line = b"create function " + _word(name, "createFunction() name")
        return self._send(line, False, _ok, list)

    def dropFunction(self, name: Union[bytes, str]) -> "Deferred[None]":
        """
        C{drop function}: fails with L{AdminError} if the function is unknown
        or busy.

        @raise TypeError: C{name} is not L{bytes} or L{str}.
        @raise ValueError: C{name} is not one word.
        """
        line = b"drop function " + _word(name, "dropFunction() name")
        return self._send(line, False, _ok, list)

    def maxQueue(
        self,
        name: Union[bytes, str],
        high: Optional[int] = None,
        normal: Optional[int] = None,
        low: Optional[int] = None,
    ) -> "Deferred[None]":
        """
        C{maxqueue}: with only C{high}, one limit for every priority; with
        C{high} and C{normal}, LOW unlimited; with none, no limits.

        @raise TypeError: C{name} is not L{bytes} or L{str}, or a limit is
            not an L{int} or L{None}.
        @raise ValueError: C{name} is not one word, a limit is negative or
            above L{MAX_QUEUE_LIMIT}, or a limit is given after one left
            out (C{normal} without C{high}, C{low} without C{normal}).
        """
        word = _word(name, "maxQueue() name")
        limits = [_limit(high, "high"), _limit(normal, "normal"), _limit(low, "low")]
        given = [n for n in limits if n is not None]
        if limits[: len(given)] != given:
            raise ValueError("maxQueue() limits go in order: normal needs high, low needs normal")
        line = b" ".join([b"maxqueue", word] + [b"%d" % (n,) for n in given])
        return self._send(line, False, _ok, list)

    def shutdown(self, graceful: bool = False) -> "Deferred[None]":
        """
        C{shutdown [graceful]} (gearman_tw with --admin-shutdown, or old
        gearmand).

        @raise TypeError: C{graceful} is not a L{bool}.
        """
        if not isinstance(graceful, bool):
            raise TypeError("shutdown() graceful must be a bool, not %s" % (type(graceful).__name__,))
        return self._send(b"shutdown graceful" if graceful else b"shutdown", False, _ok, list)


def _isReactor(value: object) -> bool:
    return (
        not isinstance(value, str)
        and not IStreamClientEndpoint.providedBy(value)
        and (IReactorTCP.providedBy(value) or IReactorTime.providedBy(value))
    )


def connectAdmin(
    server: Union[str, IStreamClientEndpoint] = DEFAULT_SERVER,
    reactor: Any = None,
    timeout: Optional[float] = None,
) -> "Deferred[GearmanAdminClient]":
    """
    Connect to a job server's admin protocol.

    The old form C{connectAdmin(reactor, server)} still works, with a
    L{DeprecationWarning}.

    @param server: C{host:port} or an endpoint description, as for
        L{gearman_tw.client.GearmanClient}, or an endpoint object.
    @param reactor: the reactor to connect and time with (it must provide
        L{IReactorTCP} or L{IReactorTime}); the global one by default.
    @param timeout: seconds the connection attempt, and then each command,
        may take (see L{GearmanAdminClient.timeout}); L{None} for no limit.
    @return: fires with a connected L{GearmanAdminClient}, or fails with
        L{ServerUnavailable} naming the server and why it could not be
        reached.  Cancelling it stops the attempt (the name's resolution
        or the connection) and fails it with L{CancelledError}.
    @raise TypeError: C{server}, C{reactor} or C{timeout} is of the wrong
        type.
    @raise ValueError: C{server} is not a job server address, or
        C{timeout} is not positive.
    """
    if _isReactor(server):
        warnings.warn(
            "connectAdmin(reactor, server) is deprecated; "
            "use connectAdmin(server, reactor=reactor)",
            DeprecationWarning,
            stacklevel=2,
        )
        server, reactor = (DEFAULT_SERVER if reactor is None else reactor), server
    if not isinstance(server, str) and not IStreamClientEndpoint.providedBy(server):
        raise TypeError(
            "connectAdmin() server must be a 'host:port' str or an endpoint, not %s"
            % (type(server).__name__,)
        )
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    elif not (IReactorTCP.providedBy(reactor) or IReactorTime.providedBy(reactor)):
        raise TypeError("connectAdmin() reactor must be a reactor, not %s" % (type(reactor).__name__,))
    _checkTimeout(timeout)
    endpoint, name = clientEndpoint(reactor, server)
    factory = Factory.forProtocol(partial(GearmanAdminClient, timeout, reactor))  # type: ignore[arg-type]
    timer: Optional[IDelayedCall] = None
    # Why the attempt was given up: "cancelled", or the timeout's message.
    stopped: List[str] = []

    def stop(why: str) -> None:
        stopped.append(why)
        connecting.cancel()

    # The caller's Deferred, apart from the endpoint's: an endpoint may
    # report a cancellation as something else (HostnameEndpoint, while it
    # resolves the name, as a failed lookup).  Cancelling the endpoint's
    # Deferred fires it, so done() fires this one at once.
    d: Deferred[GearmanAdminClient] = Deferred(lambda _: stop("cancelled"))
    connecting = endpoint.connect(factory)
    if timeout is not None:
        timer = reactor.callLater(timeout, stop, "no connection within %g s" % (timeout,))

    def done(result: Union[IProtocol, Failure]) -> None:
        if timer is not None and timer.active():
            timer.cancel()
        if not isinstance(result, Failure):
            d.callback(cast(GearmanAdminClient, result))
        elif stopped == ["cancelled"]:
            d.errback(CancelledError())
        else:
            why = stopped[0] if stopped else describeFailure(result)
            error = ServerUnavailable("cannot connect to the job server for admin commands", [(name, why)])
            error.__cause__ = result.value
            d.errback(error)

    connecting.addBoth(done)
    return d
