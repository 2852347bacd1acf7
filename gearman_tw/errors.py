# -*- test-case-name: tests.test_errors -*-
"""
Exceptions raised, and failures carried by Deferreds, in gearman_tw.
"""

from __future__ import annotations

from typing import Optional

from twisted.internet import error as _error


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


class JobFailed(GearmanError):
    """
    The job ended with WORK_FAIL.

    @ivar handle: the job handle.
    """

    def __init__(self, handle: bytes) -> None:
        super().__init__(handle)
        self.handle = handle


class JobException(GearmanError):
    """
    The job ended with WORK_EXCEPTION.

    @ivar handle: the job handle.
    @ivar data: the exception text the worker sent.
    """

    def __init__(self, handle: bytes, data: bytes) -> None:
        super().__init__(handle, data)
        self.handle = handle
        self.data = data


class ServerUnavailable(GearmanError):
    """
    No job server could take or finish the request.
    """


class ConnectionLost(GearmanError, _error.ConnectionLost):
    """
    The connection to a job server was lost with requests outstanding.
    """


class QueueError(GearmanError):
    """
    A persistent queue could not store, remove or replay a job.
    """


class JobTimeout(GearmanError, TimeoutError):
    """
    A job's result did not arrive in time.

    @ivar handle: the job handle, if the server had created the job.
    @ivar seconds: the time limit.
    """

    def __init__(self, handle: Optional[bytes], seconds: float) -> None:
        super().__init__(handle, seconds)
        self.handle = handle
        self.seconds = seconds
