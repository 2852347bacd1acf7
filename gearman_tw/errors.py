# -*- test-case-name: tests.test_errors -*-
"""
Exceptions raised, and failures carried by Deferreds, in gearman_tw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence, Tuple

from twisted.internet import error as _error

if TYPE_CHECKING:
    from twisted.python.failure import Failure


class GearmanError(Exception):
    """
    Base class of every gearman_tw error.
    """


class ProtocolError(GearmanError):
    """
    A peer sent bytes that are not valid Gearman.

    @ivar code: the ERROR packet code to send before closing the connection,
        or L{None} to close without a word (as gearmand does for bad magic).
    @ivar text: a human-readable description.
    """

    def __init__(self, code: Optional[bytes], text: bytes) -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text


def _text(value: Optional[bytes]) -> str:
    return "" if value is None else value.decode("utf-8", "replace")


def describeJob(handle: Optional[bytes], function: Optional[bytes]) -> str:
    """
    "job H:x:1 (reverse)", or as much of it as is known, for messages.
    """
    words = ["job"]
    if handle:
        words.append(_text(handle))
    if function:
        words.append("(%s)" % (_text(function),))
    return " ".join(words)


class ServerError(GearmanError):
    """
    A job server answered with an ERROR packet.

    @ivar code: the error code, e.g. C{b"QUEUE_ERROR"}.
    @ivar text: the server's message.
    """

    def __init__(self, code: bytes, text: bytes) -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text

    def __str__(self) -> str:
        return "job server error %s: %s" % (_text(self.code), _text(self.text))


class JobFailed(GearmanError):
    """
    The job ended with WORK_FAIL.

    A worker's function may raise it (C{raise JobFailed()}) to end its job
    with WORK_FAIL.

    @ivar handle: the job handle, where known.
    @ivar function: the function name, where known.
    """

    def __init__(self, handle: Optional[bytes] = None, function: Optional[bytes] = None) -> None:
        super().__init__(handle, function)
        self.handle = handle
        self.function = function

    def __str__(self) -> str:
        return "%s failed" % (describeJob(self.handle, self.function),)


class JobException(GearmanError):
    """
    The job ended with WORK_EXCEPTION.

    @ivar handle: the job handle.
    @ivar data: the exception data the worker sent.
    @ivar function: the function name, where known.
    """

    def __init__(self, handle: bytes, data: bytes, function: Optional[bytes] = None) -> None:
        super().__init__(handle, data, function)
        self.handle = handle
        self.data = data
        self.function = function

    def __str__(self) -> str:
        return "%s raised: %s" % (describeJob(self.handle, self.function), _text(self.data))


class ServerUnavailable(GearmanError):
    """
    No job server could take or finish the request.

    @ivar message: what could not be done.
    @ivar servers: C{(server, reason)} for each server tried: why it could
        not take the request (C{"connection refused"}, C{"timed out"}, ...).
    """

    def __init__(self, message: str, servers: Sequence[Tuple[str, str]] = ()) -> None:
        super().__init__(message, tuple(servers))
        self.message = message
        self.servers = tuple(servers)

    def __str__(self) -> str:
        if not self.servers:
            return self.message
        tried = "; ".join("%s: %s" % (name, reason) for name, reason in self.servers)
        return "%s (tried %s)" % (self.message, tried)


class ConnectionLost(GearmanError, _error.ConnectionLost):
    """
    The connection to a job server was lost with requests outstanding.
    """

    def __str__(self) -> str:
        return " ".join(str(arg) for arg in self.args) or "connection to the job server lost"


class QueueError(GearmanError):
    """
    A persistent queue could not store, remove or replay a job.
    """


class JobTimeout(GearmanError, TimeoutError):
    """
    A job's result did not arrive in time.

    @ivar handle: the job handle, if the server had created the job.
    @ivar seconds: the time limit.
    @ivar function: the function name, where known.
    """

    def __init__(self, handle: Optional[bytes], seconds: float, function: Optional[bytes] = None) -> None:
        super().__init__(handle, seconds, function)
        self.handle = handle
        self.seconds = seconds
        self.function = function

    def __str__(self) -> str:
        what = describeJob(self.handle, self.function)
        if self.handle is None:
            return "%s was not created within %g s" % (what, self.seconds)
        return "%s did not finish within %g s" % (what, self.seconds)


def describeFailure(failure: "Failure") -> str:
    """
    A short human-readable reason for a failed or lost connection:
    C{"connection refused"}, C{"timed out"}, C{"TLS failure: ..."}.
    """
    value = failure.value
    if isinstance(value, _error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(value, (_error.TimeoutError, _error.UserError)) or isinstance(value, TimeoutError):
        return "timed out"
    if isinstance(value, _error.DNSLookupError):
        return "host name not found"
    if isinstance(value, _error.ConnectionDone):
        return "connection closed by the job server"
    if type(value).__module__.startswith("OpenSSL"):
        # pyOpenSSL's errors carry [(library, function, reason), ...].
        details = value.args[0] if value.args else None
        if isinstance(details, list) and all(isinstance(d, tuple) and d for d in details):
            return "TLS failure: %s" % (", ".join(str(d[-1]) for d in details),)
        return "TLS failure: %s" % (value,)
    if isinstance(value, _error.ConnectionLost):
        return "connection lost"
    text = str(value)
    return text if text else type(value).__name__
